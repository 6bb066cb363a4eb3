// Shared pieces of the GSSAPI addon: status capture, the per-environment registry of live
// handles, the promise worker base class and the credential state shared by every object that
// uses a gss_cred_id_t.
//
// Threading model: every field below marked "main thread" is only touched from the JS thread
// (object methods, AsyncWorker::OnOK, cleanup hooks). Worker threads (AsyncWorker::Execute) only
// read the GSS handles they were given, and a handle is never released while a worker holds it:
// `inflight` counts them and release is deferred until it drops to zero.
#pragma once

#include <napi.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5/krb5.h>

#include <string.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace fwgss {

// A failed call, captured on the thread that made it. MIT keeps the extended error text
// ("kvno 3 not found in keytab; keytab is likely out of date") in thread-local storage of the
// krb5 mechanism, so gss_display_status must run on the worker thread right after the failure.
struct Failure {
  bool failed = false;
  OM_uint32 major = 0;
  OM_uint32 minor = 0;
  std::string routine;
  std::string majorText;
  std::string minorText;
  // Which table `minor` comes from: "krb5" (a krb5/GSS mech code), "errno" or "none".
  std::string minorKind = "none";
  // The krb5 error code behind the failure, when it is known exactly: the code of a libkrb5 call,
  // or a minor status the krb5 mechanism returned unchanged. 0 when unknown (e.g. a minor code
  // MIT's mechglue remapped to a small number after it passed through SPNEGO).
  krb5_error_code krb5Code = 0;
};

void CaptureGss(Failure& f, const char* routine, OM_uint32 major, OM_uint32 minor);
void CaptureKrb5(Failure& f, krb5_context ctx, const char* routine, krb5_error_code code);
void CaptureErrno(Failure& f, const char* routine, int err, const std::string& what);
void CaptureMessage(Failure& f, const char* routine, OM_uint32 major, const std::string& text);

// The JS error for a Failure: an Error with code ERR_GSS_NATIVE and the raw fields; the
// TypeScript wrapper turns it into a typed GssError subclass.
Napi::Value FailureToJs(Napi::Env env, const Failure& f);

// A caller mistake detected natively (the TS wrapper validates first; this is defence in depth).
[[noreturn]] void ThrowUsage(Napi::Env env, const char* code, const std::string& message);

std::string OidToString(gss_const_OID oid);
std::string DisplayName(gss_name_t name);
void Wipe(void* p, size_t n);

// An allocator that zeroes every block before giving it back, including the old block a vector
// frees when it grows. Secrets (passwords, exported credential blobs) live in SecretBytes so no
// copy is ever freed unwiped, whatever the container does internally.
template <class T>
struct WipingAllocator {
  using value_type = T;
  WipingAllocator() noexcept = default;
  template <class U>
  WipingAllocator(const WipingAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, size_t n) noexcept {
    Wipe(p, n * sizeof(T));
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const WipingAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const WipingAllocator<U>&) const noexcept { return false; }
};
using SecretBytes = std::vector<uint8_t, WipingAllocator<uint8_t>>;

struct CredState;
struct CtxState;

// Live handles of one Node environment, so that the environment's cleanup hook can release
// what JS code forgot to dispose (deterministic disposal is the API; this is the safety net).
struct Registry : std::enable_shared_from_this<Registry> {
  std::set<CredState*> creds;
  std::set<CtxState*> contexts;
  // Caches this addon created (service ccaches, password logins, store()) and has not destroyed.
  std::set<std::string> caches;
  bool tornDown = false;
  krb5_context kctx = nullptr;  // main-thread context for krb5_cc_destroy at teardown; lazy
  napi_env env = nullptr;       // the environment this registry belongs to (set at module init)
  // Workers in flight per cache name (main thread): a cache is never destroyed under a worker
  // that reads or writes it; the destruction waits until the count drops to zero.
  std::map<std::string, int> cacheUsers;
  // Destructions waiting for those workers, with the promises to settle (null: nobody waits).
  std::map<std::string, std::vector<napi_deferred>> pendingDestroys;

  krb5_context MainContext();
  // krb5_cc_resolve + krb5_cc_destroy with the given context (any thread, one context per
  // thread): a MEMORY cache survives gss_release_cred, and a FILE cache is a file holding
  // tickets, so both are destroyed explicitly. Returns false when the cache did not exist.
  static bool DestroyCacheWith(krb5_context ctx, const std::string& name, std::string* error);
  // Synchronous destruction on the main thread: only for environment teardown.
  bool DestroyCache(const std::string& name, std::string* error);
  // Destroy a cache off the event loop (main thread caller), once no worker uses it. `deferred`
  // (may be null) is resolved with whether the cache existed.
  void ScheduleDestroy(const std::string& name, napi_deferred deferred);
  void UseCache(const std::string& name);
  void UnuseCache(const std::string& name);
  void TearDown();
  ~Registry();
};

// What gss_inquire_cred (+ the impersonator query) says about a credential. Computed on the
// worker thread that produced the credential, then immutable.
struct CredInfo {
  std::string principal;      // display form, empty when the credential has no name
  int64_t lifetime = -1;      // seconds from `observedAtMs`; -1 = indefinite
  double observedAtMs = 0;    // wall clock when lifetime was read
  std::string usage;          // "accept" | "initiate" | "both"
  std::string impersonator;   // non-empty for an S4U2proxy (constrained delegation) credential
};

struct CredState {
  gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
  CredInfo info;
  std::vector<std::string> ownedCaches;  // destroyed with the credential
  // Caches the gss handle reads tickets from (e.g. the cache it was loaded from): while a worker
  // uses the handle, those caches count as in use (Registry::cacheUsers).
  std::vector<std::string> readCaches;
  std::vector<std::string> usedCaches;   // main thread: caches counted in use while inflight > 0
  int inflight = 0;                      // main thread
  bool disposed = false;                 // main thread
  std::shared_ptr<Registry> registry;

  CredState(std::shared_ptr<Registry> r, gss_cred_id_t c);
  ~CredState();
  // Release the handle and destroy owned caches now (main thread, inflight == 0).
  void ReleaseNow();
  void Dispose();   // idempotent; defers release while a worker uses the handle
  void Acquire();   // a worker starts using the handle
  void Release();   // ...and is done with it
};

// Fill `info` for `cred` (worker thread). Never fails: unknown fields stay at their defaults.
void InquireCred(gss_cred_id_t cred, CredInfo& info);

// Per-environment data: the registry and the constructor used to wrap new credentials.
struct Instance {
  std::shared_ptr<Registry> registry = std::make_shared<Registry>();
  Napi::FunctionReference credentialCtor;
};
Instance* GetInstance(Napi::Env env);

// Wrap a native credential state in a JS NativeCredential object.
Napi::Object WrapCredential(Napi::Env env, std::shared_ptr<CredState> state);
// The state behind a JS NativeCredential (type-tag checked), or throws TypeError.
std::shared_ptr<CredState> UnwrapCredential(Napi::Env env, Napi::Value v);
Napi::Object CredInfoToJs(Napi::Env env, const CredInfo& info);

// Base class: Execute() fills `failure_` instead of throwing, OnOK settles the promise. The
// constructor of each subclass copies its inputs into C++ storage, so Run() touches no JS.
// Workers queued or running in the whole process (all environments): KRB5_CONFIG may only be
// changed while this is zero, since worker threads read the environment.
extern std::atomic<int> gPendingWorkers;

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env)
      : Napi::AsyncWorker(env, "fwgss"), deferred_(Napi::Promise::Deferred::New(env)) {
    gPendingWorkers++;
  }
  ~PromiseWorker() override { gPendingWorkers--; }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { Run(); }
  void OnOK() override;
  void OnError(const Napi::Error& e) override;
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;
  // Main thread, before settling: drop busy flags and in-flight counts.
  virtual void Done() {}
  // Main thread: add fields to the rejection of a failed call (e.g. the acceptor's error token).
  virtual void DecorateFailure(Napi::Env env, Napi::Object error) {}
  Failure failure_;

 private:
  Napi::Promise::Deferred deferred_;
};

// The GSS OIDs we name.
extern gss_OID_desc kSpnegoOid;
bool IsKrb5Mech(gss_const_OID oid);

void InitCredential(Napi::Env env, Napi::Object exports);
void InitContext(Napi::Env env, Napi::Object exports);
void InitPassword(Napi::Env env, Napi::Object exports);
void InitSeal(Napi::Env env, Napi::Object exports);  // seal.cc

}  // namespace fwgss
