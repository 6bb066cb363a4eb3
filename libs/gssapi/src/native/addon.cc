// Entry point of the GSSAPI addon: per-environment state, the teardown safety net, and the
// status/flag constants the TypeScript wrapper maps errors with.
#include <krb5/krb5.h>
#include <stdlib.h>

#include "common.h"

namespace fwgss {

void TearDownContexts(Registry& r);  // context.cc

static void SetConstants(Napi::Env env, Napi::Object exports) {
  Napi::Object c = Napi::Object::New(env);
  auto n = [&](const char* k, double v) { c.Set(k, Napi::Number::New(env, v)); };
  // Context flags (RFC 2744 section 3.10).
  n("GSS_C_DELEG_FLAG", GSS_C_DELEG_FLAG);
  n("GSS_C_MUTUAL_FLAG", GSS_C_MUTUAL_FLAG);
  n("GSS_C_REPLAY_FLAG", GSS_C_REPLAY_FLAG);
  n("GSS_C_SEQUENCE_FLAG", GSS_C_SEQUENCE_FLAG);
  n("GSS_C_CONF_FLAG", GSS_C_CONF_FLAG);
  n("GSS_C_INTEG_FLAG", GSS_C_INTEG_FLAG);
  n("GSS_C_ANON_FLAG", GSS_C_ANON_FLAG);
  n("GSS_C_TRANS_FLAG", GSS_C_TRANS_FLAG);
  n("GSS_C_DELEG_POLICY_FLAG", GSS_C_DELEG_POLICY_FLAG);
  // Routine errors (already shifted into place).
  n("GSS_S_BAD_MECH", GSS_S_BAD_MECH);
  n("GSS_S_BAD_NAME", GSS_S_BAD_NAME);
  n("GSS_S_BAD_SIG", GSS_S_BAD_SIG);
  n("GSS_S_NO_CRED", GSS_S_NO_CRED);
  n("GSS_S_DEFECTIVE_TOKEN", GSS_S_DEFECTIVE_TOKEN);
  n("GSS_S_DEFECTIVE_CREDENTIAL", GSS_S_DEFECTIVE_CREDENTIAL);
  n("GSS_S_CREDENTIALS_EXPIRED", GSS_S_CREDENTIALS_EXPIRED);
  n("GSS_S_CONTEXT_EXPIRED", GSS_S_CONTEXT_EXPIRED);
  n("GSS_S_FAILURE", GSS_S_FAILURE);
  n("GSS_S_UNAUTHORIZED", GSS_S_UNAUTHORIZED);
  n("GSS_S_CRED_UNAVAIL", GSS_S_CRED_UNAVAIL);
  n("GSS_S_DUPLICATE_TOKEN", GSS_S_DUPLICATE_TOKEN);
  // krb5 minor codes (com_err table, as the unsigned OM_uint32 the library reports).
  auto k = [&](const char* name, krb5_error_code v) { n(name, static_cast<OM_uint32>(v)); };
  k("KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN", KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN);
  k("KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN", KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN);
  k("KRB5KDC_ERR_BADOPTION", KRB5KDC_ERR_BADOPTION);
  k("KRB5KDC_ERR_PREAUTH_FAILED", KRB5KDC_ERR_PREAUTH_FAILED);
  k("KRB5KDC_ERR_KEY_EXP", KRB5KDC_ERR_KEY_EXP);
  k("KRB5KDC_ERR_CLIENT_REVOKED", KRB5KDC_ERR_CLIENT_REVOKED);
  k("KRB5KRB_AP_ERR_BAD_INTEGRITY", KRB5KRB_AP_ERR_BAD_INTEGRITY);
  k("KRB5KRB_AP_ERR_TKT_EXPIRED", KRB5KRB_AP_ERR_TKT_EXPIRED);
  k("KRB5KRB_AP_ERR_REPEAT", KRB5KRB_AP_ERR_REPEAT);
  k("KRB5KRB_AP_ERR_SKEW", KRB5KRB_AP_ERR_SKEW);
  k("KRB5KRB_AP_ERR_MODIFIED", KRB5KRB_AP_ERR_MODIFIED);
  k("KRB5KRB_AP_ERR_BADKEYVER", KRB5KRB_AP_ERR_BADKEYVER);
  k("KRB5KRB_AP_ERR_NOKEY", KRB5KRB_AP_ERR_NOKEY);
  k("KRB5KRB_AP_WRONG_PRINC", KRB5KRB_AP_WRONG_PRINC);
  k("KRB5_KT_NOTFOUND", KRB5_KT_NOTFOUND);
  k("KRB5_KT_KVNONOTFOUND", KRB5_KT_KVNONOTFOUND);
  k("KRB5_KDC_UNREACH", KRB5_KDC_UNREACH);
  k("KRB5_REALM_CANT_RESOLVE", KRB5_REALM_CANT_RESOLVE);
  k("KRB5_FCC_NOFILE", KRB5_FCC_NOFILE);
  k("KRB5_CC_NOTFOUND", KRB5_CC_NOTFOUND);
  k("KRB5_NO_TKT_SUPPLIED", KRB5_NO_TKT_SUPPLIED);
  k("KRB5KRB_AP_ERR_MSG_TYPE", KRB5KRB_AP_ERR_MSG_TYPE);
  exports.Set("constants", c);
}

// setenv for the variables libkrb5 reads when it creates a context. Process-wide by nature, so
// only allowed while no operation runs (a worker thread may be inside getenv). Exists because
// a JS runtime may give code a copy of process.env (Jest does), where assignment never reaches
// the C environment.
static Napi::Value SetKerberosEnv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowUsage(env, "ERR_GSS_INVALID_ARG", "name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name != "KRB5_CONFIG" && name != "KRB5RCACHEDIR" && name != "KRB5_TRACE") {
    ThrowUsage(env, "ERR_GSS_INVALID_ARG", "only KRB5_CONFIG, KRB5RCACHEDIR and KRB5_TRACE can be set");
  }
  if (gPendingWorkers.load() != 0) {
    ThrowUsage(env, "ERR_GSS_OPERATIONS_PENDING",
               "Kerberos operations are in progress: configure Kerberos at startup, before any other call");
  }
  if (info[1].IsString()) setenv(name.c_str(), info[1].As<Napi::String>().Utf8Value().c_str(), 1);
  else unsetenv(name.c_str());
  return env.Undefined();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // The module can be initialised more than once in one environment (a test runner with a
  // module registry per file dlopens it again): keep the first instance's registry so every
  // live handle stays known to the single cleanup hook.
  Instance* inst = env.GetInstanceData<Instance>();
  if (inst == nullptr) {
    inst = new Instance();
    env.SetInstanceData<Instance>(inst);
    std::shared_ptr<Registry> registry = inst->registry;
    registry->env = env;  // lets it queue cache destructions on the libuv pool
    // Safety net at environment teardown (process exit, worker thread end): release handles
    // and destroy the caches we made. Disposal by the application is still the contract.
    env.AddCleanupHook([registry]() {
      TearDownContexts(*registry);
      registry->TearDown();
    });
  }
  InitCredential(env, exports);
  InitContext(env, exports);
  InitPassword(env, exports);
  InitSeal(env, exports);
  SetConstants(env, exports);
  exports.Set("setKerberosEnv", Napi::Function::New<SetKerberosEnv>(env, "setKerberosEnv"));
  return exports;
}

}  // namespace fwgss

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return fwgss::Init(env, exports); }

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitModule)
