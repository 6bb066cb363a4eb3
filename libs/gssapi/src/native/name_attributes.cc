// See name_attributes.h. MIT exposes the PAC of a ticket as attributes of the acceptor's source
// name through its mspac authdata plugin: `urn:mspac:logon-info`, `urn:mspac:upn-dns-info`, ...
// (src/lib/krb5/krb/pac.c, mspac_get_attribute_types). An Active Directory ticket always carries a
// PAC; an MIT 1.20 KDC adds one without logon information.
#include <string.h>

#include "name_attributes.h"

namespace fwgss {

// Bounds: a PAC is at most a few tens of kB (it travels inside a token of at most 64 kB), and
// nobody has hundreds of attributes. Past these limits the rest is dropped, never read.
static const size_t kMaxAttributes = 64;
static const size_t kMaxValuesPerAttribute = 16;
static const size_t kMaxTotalBytes = 256 * 1024;
static const char kMspacPrefix[] = "urn:mspac:";

void ReadNameAttributes(gss_name_t name, NameAttributes& out) {
  if (name == GSS_C_NO_NAME) return;
  OM_uint32 minor = 0;
  int isMn = 0;
  gss_OID mech = GSS_C_NO_OID;
  gss_buffer_set_t names = GSS_C_NO_BUFFER_SET;
  if (GSS_ERROR(gss_inquire_name(&minor, name, &isMn, &mech, &names)) || names == GSS_C_NO_BUFFER_SET) return;
  size_t total = 0;
  for (size_t i = 0; i < names->count && out.list.size() < kMaxAttributes; i++) {
    gss_buffer_t attr = &names->elements[i];
    NameAttribute a;
    a.name.assign(static_cast<const char*>(attr->value), attr->length);
    const bool mspac = a.name.compare(0, sizeof(kMspacPrefix) - 1, kMspacPrefix) == 0;
    int more = -1;
    for (size_t n = 0; mspac && more != 0 && n < kMaxValuesPerAttribute; n++) {
      int authenticated = 0, complete = 0;
      gss_buffer_desc value = GSS_C_EMPTY_BUFFER, display = GSS_C_EMPTY_BUFFER;
      OM_uint32 major = gss_get_name_attribute(&minor, name, attr, &authenticated, &complete, &value, &display, &more);
      if (GSS_ERROR(major)) break;
      a.authenticated = authenticated != 0;
      a.complete = complete != 0;
      if (value.length > 0 && total + value.length <= kMaxTotalBytes) {
        const uint8_t* p = static_cast<const uint8_t*>(value.value);
        a.values.emplace_back(p, p + value.length);
        total += value.length;
      }
      gss_release_buffer(&minor, &value);
      gss_release_buffer(&minor, &display);
    }
    out.list.push_back(std::move(a));
  }
  gss_release_buffer_set(&minor, &names);
}

Napi::Value NameAttributesToJs(Napi::Env env, const NameAttributes& attrs) {
  Napi::Array list = Napi::Array::New(env, attrs.list.size());
  for (size_t i = 0; i < attrs.list.size(); i++) {
    const NameAttribute& a = attrs.list[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", a.name);
    o.Set("authenticated", a.authenticated);
    o.Set("complete", a.complete);
    Napi::Array values = Napi::Array::New(env, a.values.size());
    for (size_t v = 0; v < a.values.size(); v++) {
      values.Set(static_cast<uint32_t>(v), Napi::Buffer<uint8_t>::Copy(env, a.values[v].data(), a.values[v].size()));
    }
    o.Set("values", values);
    list.Set(static_cast<uint32_t>(i), o);
  }
  return list;
}

}  // namespace fwgss
