// com_err.h has no C++ guard and krb5.h includes it outside its extern "C" block, so
// error_message() would be declared with C++ linkage (an undefined, mangled symbol at load).
// Include it first, as C; its include guard keeps krb5.h from declaring it again.
extern "C" {
#include <et/com_err.h>
}

#include "common.h"

#include <string.h>
#include <sys/time.h>

namespace fwgss {

std::atomic<int> gPendingWorkers{0};

// 1.3.6.1.5.5.2 (RFC 4178)
gss_OID_desc kSpnegoOid = {6, const_cast<char*>("\x2b\x06\x01\x05\x05\x02")};
// 1.2.840.113554.1.2.2.5 (IAKERB, RFC draft; MIT implements it inside the krb5 mechanism)
static gss_OID_desc kIakerbOid = {6, const_cast<char*>("\x2b\x06\x01\x05\x02\x05")};

static bool OidEqual(gss_const_OID a, gss_const_OID b) {
  return a != nullptr && b != nullptr && a->length == b->length &&
         memcmp(a->elements, b->elements, a->length) == 0;
}

bool IsKrb5Mech(gss_const_OID oid) {
  // gss_mech_krb5_wrong is the OID old Microsoft clients put in SPNEGO; it is still Kerberos.
  return OidEqual(oid, gss_mech_krb5) || OidEqual(oid, gss_mech_krb5_old) ||
         OidEqual(oid, gss_mech_krb5_wrong) || OidEqual(oid, &kIakerbOid);
}

static std::string DisplayStatus(OM_uint32 code, int type) {
  std::string out;
  OM_uint32 msgCtx = 0;
  do {
    OM_uint32 minor = 0;
    gss_buffer_desc buf = GSS_C_EMPTY_BUFFER;
    OM_uint32 major = gss_display_status(&minor, code, type, gss_mech_krb5, &msgCtx, &buf);
    if (GSS_ERROR(major)) break;
    if (!out.empty()) out += "; ";
    out.append(static_cast<const char*>(buf.value), buf.length);
    gss_release_buffer(&minor, &buf);
  } while (msgCtx != 0);
  return out;
}

// A code of libkrb5's own com_err table (krb5_err.h). MIT's mechglue hands krb5 minor codes
// through unchanged, so such a minor status is the krb5 error itself; codes remapped after
// passing through SPNEGO are small numbers and never fall in this range.
static bool IsKrb5TableCode(OM_uint32 minor) {
  krb5_error_code c = static_cast<krb5_error_code>(minor);
  return c >= ERROR_TABLE_BASE_krb5 && c < ERROR_TABLE_BASE_krb5 + 256;
}

// Codes the TypeScript side maps to a typed error. A remapped (SPNEGO) minor status is
// recognised when its text is exactly the library's message for one of them; anything else
// stays unknown (0) and the TypeScript side falls back to matching the text.
static const krb5_error_code kKnownCodes[] = {
    KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN, KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN, KRB5KDC_ERR_BADOPTION,
    KRB5KDC_ERR_PREAUTH_FAILED,      KRB5KDC_ERR_KEY_EXP,             KRB5KDC_ERR_CLIENT_REVOKED,
    KRB5KRB_AP_ERR_BAD_INTEGRITY,    KRB5KRB_AP_ERR_TKT_EXPIRED,      KRB5KRB_AP_ERR_REPEAT,
    KRB5KRB_AP_ERR_SKEW,             KRB5KRB_AP_ERR_MODIFIED,         KRB5KRB_AP_ERR_BADKEYVER,
    KRB5KRB_AP_ERR_NOKEY,            KRB5_KDC_UNREACH,                KRB5_REALM_CANT_RESOLVE,
};

void CaptureGss(Failure& f, const char* routine, OM_uint32 major, OM_uint32 minor) {
  f.failed = true;
  f.major = major;
  f.minor = minor;
  f.routine = routine;
  f.majorText = DisplayStatus(major, GSS_C_GSS_CODE);
  if (minor != 0) {
    f.minorText = DisplayStatus(minor, GSS_C_MECH_CODE);
    f.minorKind = "krb5";
    if (IsKrb5TableCode(minor)) {
      f.krb5Code = static_cast<krb5_error_code>(minor);
    } else {
      for (krb5_error_code c : kKnownCodes) {
        if (f.minorText == error_message(c)) {
          f.krb5Code = c;
          break;
        }
      }
    }
  }
}

void CaptureKrb5(Failure& f, krb5_context ctx, const char* routine, krb5_error_code code) {
  f.failed = true;
  f.major = GSS_S_FAILURE;
  f.minor = static_cast<OM_uint32>(code);
  f.routine = routine;
  f.majorText = "Unspecified GSS failure.  Minor code may provide more information";
  if (ctx != nullptr) {
    const char* msg = krb5_get_error_message(ctx, code);
    f.minorText = msg;
    krb5_free_error_message(ctx, msg);
  } else {
    f.minorText = "Kerberos error " + std::to_string(code);
  }
  f.minorKind = "krb5";
  f.krb5Code = code;
}

void CaptureErrno(Failure& f, const char* routine, int err, const std::string& what) {
  f.failed = true;
  f.major = GSS_S_CRED_UNAVAIL;
  f.minor = static_cast<OM_uint32>(err);
  f.routine = routine;
  f.majorText = "No credentials were supplied, or the credentials were unavailable or inaccessible";
  char buf[256];
  f.minorText = what + ": " + strerror_r(err, buf, sizeof buf);
  f.minorKind = "errno";
}

void CaptureMessage(Failure& f, const char* routine, OM_uint32 major, const std::string& text) {
  f.failed = true;
  f.major = major;
  f.minor = 0;
  f.routine = routine;
  f.majorText = DisplayStatus(major, GSS_C_GSS_CODE);
  f.minorText = text;
  f.minorKind = "none";
}

Napi::Value FailureToJs(Napi::Env env, const Failure& f) {
  std::string message = f.routine + ": " + f.majorText;
  if (!f.minorText.empty()) message += " (" + f.minorText + ")";
  Napi::Error e = Napi::Error::New(env, message);
  Napi::Object o = e.Value();
  o.Set("code", "ERR_GSS_NATIVE");
  o.Set("major", Napi::Number::New(env, f.major));
  o.Set("minor", Napi::Number::New(env, f.minor));
  o.Set("routine", f.routine);
  o.Set("majorText", f.majorText);
  o.Set("minorText", f.minorText);
  o.Set("minorKind", f.minorKind);
  o.Set("krb5Code", f.krb5Code != 0 ? Napi::Number::New(env, static_cast<OM_uint32>(f.krb5Code)) : env.Null());
  return o;
}

void ThrowUsage(Napi::Env env, const char* code, const std::string& message) {
  Napi::TypeError e = Napi::TypeError::New(env, message);
  e.Set("code", code);
  throw e;
}

std::string OidToString(gss_const_OID oid) {
  if (oid == GSS_C_NO_OID) return "";
  OM_uint32 minor = 0;
  gss_buffer_desc buf = GSS_C_EMPTY_BUFFER;
  if (GSS_ERROR(gss_oid_to_str(&minor, const_cast<gss_OID>(oid), &buf))) return "";
  // MIT renders "{ 1 2 840 113554 1 2 2 }"; callers want dotted form.
  std::string raw(static_cast<const char*>(buf.value), buf.length);
  gss_release_buffer(&minor, &buf);
  std::string out;
  for (char c : raw) {
    if (c >= '0' && c <= '9') out += c;
    else if (c == ' ' && !out.empty() && out.back() != '.') out += '.';
  }
  while (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

std::string DisplayName(gss_name_t name) {
  if (name == GSS_C_NO_NAME) return "";
  OM_uint32 minor = 0;
  gss_buffer_desc buf = GSS_C_EMPTY_BUFFER;
  if (GSS_ERROR(gss_display_name(&minor, name, &buf, nullptr))) return "";
  std::string s(static_cast<const char*>(buf.value), buf.length);
  gss_release_buffer(&minor, &buf);
  return s;
}

void Wipe(void* p, size_t n) {
  if (p != nullptr && n > 0) explicit_bzero(p, n);
}

// ---------------------------------------------------------------- registry

krb5_context Registry::MainContext() {
  if (kctx == nullptr && krb5_init_context(&kctx) != 0) kctx = nullptr;
  return kctx;
}

bool Registry::DestroyCacheWith(krb5_context ctx, const std::string& name, std::string* error) {
  krb5_ccache cc = nullptr;
  krb5_error_code code = krb5_cc_resolve(ctx, name.c_str(), &cc);
  // Resolving a MEMORY name creates an empty cache, so "existed" means "had a principal".
  bool existed = false;
  if (code == 0) {
    krb5_principal p = nullptr;
    if (krb5_cc_get_principal(ctx, cc, &p) == 0) {
      existed = true;
      krb5_free_principal(ctx, p);
    }
    code = krb5_cc_destroy(ctx, cc);  // frees `cc` on success and on failure
    if (!existed && code == KRB5_FCC_NOFILE) code = 0;
  }
  if (code != 0) {
    if (error) {
      const char* msg = krb5_get_error_message(ctx, code);
      *error = msg;
      krb5_free_error_message(ctx, msg);
    }
    return false;
  }
  return existed;
}

bool Registry::DestroyCache(const std::string& name, std::string* error) {
  caches.erase(name);
  krb5_context ctx = MainContext();
  if (ctx == nullptr) {
    if (error) *error = "krb5_init_context failed";
    return false;
  }
  return DestroyCacheWith(ctx, name, error);
}

// krb5_cc_destroy of a FILE cache is file I/O (and of a MEMORY cache takes a process-wide
// lock), so it runs on the libuv pool like every other Kerberos call.
class DestroyCacheWorker : public Napi::AsyncWorker {
 public:
  DestroyCacheWorker(Napi::Env env, std::shared_ptr<Registry> r, std::string name, std::vector<napi_deferred> waiters)
      : Napi::AsyncWorker(env, "fwgss"), registry_(std::move(r)), name_(std::move(name)), waiters_(std::move(waiters)) {
    gPendingWorkers++;
  }
  ~DestroyCacheWorker() override { gPendingWorkers--; }

 protected:
  void Execute() override {
    krb5_context ctx = nullptr;
    if (krb5_init_context(&ctx) != 0) return;
    existed_ = Registry::DestroyCacheWith(ctx, name_, nullptr);
    krb5_free_context(ctx);
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    for (napi_deferred d : waiters_) napi_resolve_deferred(env, d, Napi::Boolean::New(env, existed_));
  }

 private:
  std::shared_ptr<Registry> registry_;  // keeps the registry alive until we are done
  std::string name_;
  std::vector<napi_deferred> waiters_;
  bool existed_ = false;
};

void Registry::ScheduleDestroy(const std::string& name, napi_deferred deferred) {
  caches.erase(name);
  auto& waiters = pendingDestroys[name];
  if (deferred != nullptr) waiters.push_back(deferred);
  auto it = cacheUsers.find(name);
  if (it != cacheUsers.end() && it->second > 0) return;  // UnuseCache starts it
  std::vector<napi_deferred> ws = std::move(waiters);
  pendingDestroys.erase(name);
  if (tornDown || env == nullptr) {
    DestroyCache(name, nullptr);
    return;  // at teardown nobody can await a promise any more
  }
  // Keep ourselves alive while the worker runs: the Instance may go first at teardown.
  auto* w = new DestroyCacheWorker(Napi::Env(env), shared_from_this(), name, std::move(ws));
  w->Queue();
}

void Registry::UseCache(const std::string& name) { cacheUsers[name]++; }

void Registry::UnuseCache(const std::string& name) {
  auto it = cacheUsers.find(name);
  if (it == cacheUsers.end()) return;
  if (--it->second > 0) return;
  cacheUsers.erase(it);
  if (pendingDestroys.count(name) != 0) ScheduleDestroy(name, nullptr);
}

void Registry::TearDown() {
  if (tornDown) return;
  tornDown = true;
  // Copy: ReleaseNow() erases from the sets we iterate.
  std::set<CredState*> credsCopy = creds;
  for (CredState* c : credsCopy) {
    c->disposed = true;
    // A credential a worker still uses is left to the worker (the process is ending anyway).
    if (c->inflight == 0) c->ReleaseNow();
  }
  std::set<std::string> cachesCopy = caches;
  for (const auto& p : pendingDestroys) cachesCopy.insert(p.first);
  for (const std::string& name : cachesCopy) DestroyCache(name, nullptr);
  caches.clear();
  pendingDestroys.clear();
}

Registry::~Registry() {
  if (kctx != nullptr) krb5_free_context(kctx);
}

// ---------------------------------------------------------------- credential state

CredState::CredState(std::shared_ptr<Registry> r, gss_cred_id_t c) : cred(c), registry(std::move(r)) {
  registry->creds.insert(this);
}

CredState::~CredState() {
  ReleaseNow();
  registry->creds.erase(this);
}

void CredState::ReleaseNow() {
  if (cred != GSS_C_NO_CREDENTIAL) {
    OM_uint32 minor = 0;
    gss_release_cred(&minor, &cred);
    cred = GSS_C_NO_CREDENTIAL;
  }
  // dispose() promises the owned caches are gone when it returns, so they are destroyed here
  // (a MEMORY cache is memory, a FILE cache one unlink) unless another worker still reads or
  // writes one: that one is destroyed on the libuv pool once the worker is done.
  for (const std::string& name : ownedCaches) {
    auto it = registry->cacheUsers.find(name);
    if (it != registry->cacheUsers.end() && it->second > 0) registry->ScheduleDestroy(name, nullptr);
    else registry->DestroyCache(name, nullptr);
  }
  ownedCaches.clear();
}

void CredState::Dispose() {
  disposed = true;
  if (inflight == 0) ReleaseNow();
}

void CredState::Acquire() {
  if (inflight++ == 0) {
    // The caches behind the handle are in use from the first worker to the last; the list is
    // copied so that caches added or forgotten meanwhile cannot unbalance the counts.
    usedCaches = ownedCaches;
    usedCaches.insert(usedCaches.end(), readCaches.begin(), readCaches.end());
    for (const std::string& name : usedCaches) registry->UseCache(name);
  }
}

void CredState::Release() {
  if (--inflight == 0) {
    std::vector<std::string> names = std::move(usedCaches);
    usedCaches.clear();
    for (const std::string& name : names) registry->UnuseCache(name);
    if (disposed) ReleaseNow();
  }
}

void InquireCred(gss_cred_id_t cred, CredInfo& info) {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  info.observedAtMs = tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0;
  OM_uint32 minor = 0, lifetime = 0;
  gss_name_t name = GSS_C_NO_NAME;
  gss_cred_usage_t usage = GSS_C_BOTH;
  OM_uint32 major = gss_inquire_cred(&minor, cred, &name, &lifetime, &usage, nullptr);
  if (!GSS_ERROR(major)) {
    info.principal = DisplayName(name);
    info.lifetime = lifetime == GSS_C_INDEFINITE ? -1 : static_cast<int64_t>(lifetime);
    info.usage = usage == GSS_C_ACCEPT ? "accept" : usage == GSS_C_INITIATE ? "initiate" : "both";
    gss_release_name(&minor, &name);
  } else if (major & GSS_S_CREDENTIALS_EXPIRED) {
    info.lifetime = 0;
  }
  // MIT marks an S4U2proxy credential with the impersonating service's name
  // (GSS_KRB5_GET_CRED_IMPERSONATOR, MIT 1.11+); a forwarded TGT has none.
  gss_buffer_set_t data = GSS_C_NO_BUFFER_SET;
  major = gss_inquire_cred_by_oid(&minor, cred, GSS_KRB5_GET_CRED_IMPERSONATOR, &data);
  if (!GSS_ERROR(major) && data != GSS_C_NO_BUFFER_SET) {
    if (data->count > 0 && data->elements[0].length > 0) {
      info.impersonator.assign(static_cast<const char*>(data->elements[0].value), data->elements[0].length);
    }
    gss_release_buffer_set(&minor, &data);
  }
}

Napi::Object CredInfoToJs(Napi::Env env, const CredInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("principal", info.principal);
  o.Set("lifetime", Napi::Number::New(env, static_cast<double>(info.lifetime)));
  o.Set("observedAt", Napi::Number::New(env, info.observedAtMs));
  o.Set("usage", info.usage);
  o.Set("impersonator", info.impersonator.empty() ? env.Null() : Napi::String::New(env, info.impersonator));
  return o;
}

// ---------------------------------------------------------------- worker

void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Done();
  if (failure_.failed) {
    Napi::Value error = FailureToJs(env, failure_);
    DecorateFailure(env, error.As<Napi::Object>());
    deferred_.Reject(error);
    return;
  }
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  }
}

void PromiseWorker::OnError(const Napi::Error& e) {
  // Run() never calls SetError; kept so a future mistake still settles the promise.
  Napi::HandleScope scope(Env());
  Done();
  deferred_.Reject(e.Value());
}

}  // namespace fwgss
