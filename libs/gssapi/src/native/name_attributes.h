// Naming extensions (RFC 6680) of an accepted initiator name: which attributes the mechanism
// attached to it, and the raw values of the Microsoft PAC ones (`urn:mspac:*`), from which the
// TypeScript side reads group SIDs. Kept in its own file so the context code only calls it.
#pragma once

#include "common.h"

namespace fwgss {

struct NameAttribute {
  std::string name;
  bool authenticated = false;  // the mechanism verified it (for the PAC: the server checksum)
  bool complete = false;
  std::vector<std::vector<uint8_t>> values;  // only for urn:mspac:* attributes
};

struct NameAttributes {
  std::vector<NameAttribute> list;
};

// Worker thread: list `name`'s attributes (gss_inquire_name) and read the urn:mspac:* values
// (gss_get_name_attribute). Never fails: a mechanism without naming extensions yields nothing.
void ReadNameAttributes(gss_name_t name, NameAttributes& out);

// Main thread: [{ name, authenticated, complete, values: Buffer[] }].
Napi::Value NameAttributesToJs(Napi::Env env, const NameAttributes& attrs);

}  // namespace fwgss
