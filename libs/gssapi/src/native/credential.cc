// Credentials: acquire a service credential from an explicit credential store, reload a
// credential from a ccache, import/export blobs, store into a ccache, dispose.
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "common.h"

namespace fwgss {

static const napi_type_tag kCredentialTag = {0x6f7277617264626cULL, 0x6773736372656401ULL};

// Mechanisms every credential is acquired for: krb5 and SPNEGO over krb5. Listing them keeps
// any other installed mechanism (gss-ntlmssp) out of our credentials, and SPNEGO needs its own
// element in the union credential or the mechglue answers GSS_S_NO_CRED for SPNEGO tokens.
static gss_OID_set_desc* OurMechs() {
  static gss_OID_desc mechs[2] = {*gss_mech_krb5, kSpnegoOid};
  static gss_OID_set_desc set = {2, mechs};
  return &set;
}

// ---------------------------------------------------------------- JS class

class CredentialWrap : public Napi::ObjectWrap<CredentialWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeCredential",
                       {
                           InstanceMethod<&CredentialWrap::Info>("info"),
                           InstanceMethod<&CredentialWrap::Store>("store"),
                           InstanceMethod<&CredentialWrap::Export>("exportBlob"),
                           InstanceMethod<&CredentialWrap::Dispose>("dispose"),
                           InstanceAccessor<&CredentialWrap::Disposed>("disposed"),
                       });
  }

  explicit CredentialWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CredentialWrap>(info) {
    // Only native code creates credentials (WrapCredential passes the state as an External).
    if (info.Length() != 1 || !info[0].IsExternal()) {
      ThrowUsage(info.Env(), "ERR_GSS_NOT_CONSTRUCTIBLE",
                 "NativeCredential is created by acquire/import/accept functions, not by `new`");
    }
    auto* holder = info[0].As<Napi::External<std::shared_ptr<CredState>>>().Data();
    state_ = *holder;
    info.This().As<Napi::Object>().TypeTag(&kCredentialTag);
  }

  ~CredentialWrap() override {
    // Garbage collection only drops this object's reference. Contexts started with the
    // credential share its state and keep using it; the handle and owned caches are released
    // when the last holder lets go (~CredState), so a forgotten credential still does not leak.
    // Disposing here would break a live context whose JS credential was collected.
    state_.reset();
  }

  std::shared_ptr<CredState> State(Napi::Env env) {
    if (!state_ || state_->disposed) {
      ThrowUsage(env, "ERR_GSS_DISPOSED", "this credential has been disposed");
    }
    return state_;
  }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info) {
    if (!state_) ThrowUsage(info.Env(), "ERR_GSS_DISPOSED", "this credential has been disposed");
    return CredInfoToJs(info.Env(), state_->info);
  }
  Napi::Value Store(const Napi::CallbackInfo& info);
  Napi::Value Export(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (state_) state_->Dispose();
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), !state_ || state_->disposed);
  }

  std::shared_ptr<CredState> state_;
};

Instance* GetInstance(Napi::Env env) { return env.GetInstanceData<Instance>(); }

Napi::Object WrapCredential(Napi::Env env, std::shared_ptr<CredState> state) {
  Instance* inst = GetInstance(env);
  std::shared_ptr<CredState> holder = std::move(state);
  // The External only lives for the constructor call; the wrap copies the shared_ptr.
  Napi::External<std::shared_ptr<CredState>> ext = Napi::External<std::shared_ptr<CredState>>::New(env, &holder);
  return inst->credentialCtor.New({ext});
}

std::shared_ptr<CredState> UnwrapCredential(Napi::Env env, Napi::Value v) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kCredentialTag)) {
    ThrowUsage(env, "ERR_GSS_INVALID_ARG", "expected a NativeCredential");
  }
  return CredentialWrap::Unwrap(v.As<Napi::Object>())->State(env);
}

// ---------------------------------------------------------------- helpers

// Turn "FILE:/x", "WRFILE:/x" or "/x" into a path we can open; empty for other types.
static std::string KeytabPath(const std::string& name) {
  if (name.rfind("FILE:", 0) == 0) return name.substr(5);
  if (name.rfind("WRFILE:", 0) == 0) return name.substr(7);
  if (!name.empty() && name[0] == '/') return name;
  return "";
}

// MIT reports a missing and an unreadable keytab alike ("Keytab ... is nonexistent or empty"),
// so open it ourselves first (on the worker thread) to say which one it is.
static bool CheckReadable(Failure& f, const std::string& keytab, const char* what) {
  std::string path = KeytabPath(keytab);
  if (path.empty()) return true;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    CaptureErrno(f, "open", errno, std::string(what) + " " + path);
    return false;
  }
  close(fd);
  return true;
}

static std::string OptString(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

// ---------------------------------------------------------------- acquireServiceCredential

class AcquireServiceWorker : public PromiseWorker {
 public:
  AcquireServiceWorker(Napi::Env env, const Napi::Object& o) : PromiseWorker(env), registry_(GetInstance(env)->registry) {
    keytab_ = OptString(o, "keytab");
    clientKeytab_ = OptString(o, "clientKeytab");
    ccache_ = OptString(o, "ccache");
    rcache_ = OptString(o, "rcache");
    principal_ = OptString(o, "principal");
    hostbased_ = OptString(o, "nameType") == "hostbased";
    both_ = OptString(o, "usage") == "both";
  }

 protected:
  void Run() override {
    if (!CheckReadable(failure_, keytab_, "keytab")) return;
    if (both_ && !CheckReadable(failure_, clientKeytab_, "client keytab")) return;
    OM_uint32 minor = 0, major;
    gss_name_t name = GSS_C_NO_NAME;
    if (!principal_.empty()) {
      gss_buffer_desc buf = {principal_.size(), const_cast<char*>(principal_.data())};
      major = gss_import_name(&minor, &buf, hostbased_ ? GSS_C_NT_HOSTBASED_SERVICE : GSS_KRB5_NT_PRINCIPAL_NAME, &name);
      if (GSS_ERROR(major)) return CaptureGss(failure_, "gss_import_name", major, minor);
    }
    std::vector<gss_key_value_element_desc> el;
    el.push_back({"keytab", keytab_.c_str()});
    if (both_) {
      // The service's own TGT (for S4U2proxy) is fetched with the client keytab into this
      // private MEMORY cache, never into the process-wide default cache.
      el.push_back({"client_keytab", clientKeytab_.c_str()});
      el.push_back({"ccache", ccache_.c_str()});
    }
    if (!rcache_.empty()) el.push_back({"rcache", rcache_.c_str()});
    gss_key_value_set_desc store = {static_cast<OM_uint32>(el.size()), el.data()};
    gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
    major = gss_acquire_cred_from(&minor, name, GSS_C_INDEFINITE, OurMechs(), both_ ? GSS_C_BOTH : GSS_C_ACCEPT,
                                  &store, &cred, nullptr, nullptr);
    if (name != GSS_C_NO_NAME) gss_release_name(&minor, &name);
    if (GSS_ERROR(major)) return CaptureGss(failure_, "gss_acquire_cred_from", major, minor);
    cred_ = cred;
    InquireCred(cred_, info_);
  }

  Napi::Value Result(Napi::Env env) override {
    auto state = std::make_shared<CredState>(registry_, cred_);
    cred_ = GSS_C_NO_CREDENTIAL;
    state->info = info_;
    if (both_) {
      state->ownedCaches.push_back(ccache_);
      registry_->caches.insert(ccache_);
    }
    return WrapCredential(env, state);
  }

  ~AcquireServiceWorker() override {
    OM_uint32 minor = 0;
    if (cred_ != GSS_C_NO_CREDENTIAL) gss_release_cred(&minor, &cred_);
  }

 private:
  std::shared_ptr<Registry> registry_;
  std::string keytab_, clientKeytab_, ccache_, rcache_, principal_;
  bool hostbased_ = false, both_ = false;
  gss_cred_id_t cred_ = GSS_C_NO_CREDENTIAL;
  CredInfo info_;
};

static Napi::Value AcquireServiceCredential(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) ThrowUsage(info.Env(), "ERR_GSS_INVALID_ARG", "options object required");
  auto* w = new AcquireServiceWorker(info.Env(), info[0].As<Napi::Object>());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// ---------------------------------------------------------------- credentialFromCache

class FromCacheWorker : public PromiseWorker {
 public:
  FromCacheWorker(Napi::Env env, std::string name, bool owned)
      : PromiseWorker(env), registry_(GetInstance(env)->registry), name_(std::move(name)), owned_(owned) {
    registry_->UseCache(name_);  // a destroyCache() meanwhile waits for us
  }

 protected:
  void Run() override {
    gss_key_value_element_desc el = {"ccache", name_.c_str()};
    gss_key_value_set_desc store = {1, &el};
    OM_uint32 minor = 0;
    OM_uint32 major = gss_acquire_cred_from(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, OurMechs(), GSS_C_INITIATE,
                                            &store, &cred_, nullptr, nullptr);
    if (GSS_ERROR(major)) return CaptureGss(failure_, "gss_acquire_cred_from", major, minor);
    InquireCred(cred_, info_);
  }
  Napi::Value Result(Napi::Env env) override {
    auto state = std::make_shared<CredState>(registry_, cred_);
    cred_ = GSS_C_NO_CREDENTIAL;
    state->info = info_;
    // The krb5 mechanism reads the cache again when the credential gets service tickets.
    if (!owned_) state->readCaches.push_back(name_);
    if (owned_) {
      state->ownedCaches.push_back(name_);
      registry_->caches.insert(name_);
    }
    return WrapCredential(env, state);
  }
  void Done() override { registry_->UnuseCache(name_); }
  ~FromCacheWorker() override {
    OM_uint32 minor = 0;
    if (cred_ != GSS_C_NO_CREDENTIAL) gss_release_cred(&minor, &cred_);
  }

 private:
  std::shared_ptr<Registry> registry_;
  std::string name_;
  bool owned_;
  gss_cred_id_t cred_ = GSS_C_NO_CREDENTIAL;
  CredInfo info_;
};

static Napi::Value CredentialFromCache(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) ThrowUsage(info.Env(), "ERR_GSS_INVALID_ARG", "cache name must be a string");
  auto* w = new FromCacheWorker(info.Env(), info[0].As<Napi::String>().Utf8Value(), info[1].ToBoolean().Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// ---------------------------------------------------------------- import / export

class ImportWorker : public PromiseWorker {
 public:
  ImportWorker(Napi::Env env, const Napi::Buffer<uint8_t>& blob)
      : PromiseWorker(env), registry_(GetInstance(env)->registry), blob_(blob.Data(), blob.Data() + blob.Length()) {}
  ~ImportWorker() override {
    // The blob holds key material.
    Wipe(blob_.data(), blob_.size());
    OM_uint32 minor = 0;
    if (cred_ != GSS_C_NO_CREDENTIAL) gss_release_cred(&minor, &cred_);
  }

 protected:
  void Run() override {
    gss_buffer_desc buf = {blob_.size(), blob_.data()};
    OM_uint32 minor = 0;
    OM_uint32 major = gss_import_cred(&minor, &buf, &cred_);
    if (GSS_ERROR(major)) return CaptureGss(failure_, "gss_import_cred", major, minor);
    InquireCred(cred_, info_);
  }
  Napi::Value Result(Napi::Env env) override {
    auto state = std::make_shared<CredState>(registry_, cred_);
    cred_ = GSS_C_NO_CREDENTIAL;
    state->info = info_;
    return WrapCredential(env, state);
  }

 private:
  std::shared_ptr<Registry> registry_;
  SecretBytes blob_;
  gss_cred_id_t cred_ = GSS_C_NO_CREDENTIAL;
  CredInfo info_;
};

static Napi::Value ImportCredential(const Napi::CallbackInfo& info) {
  if (!info[0].IsBuffer()) ThrowUsage(info.Env(), "ERR_GSS_INVALID_ARG", "blob must be a Buffer");
  auto* w = new ImportWorker(info.Env(), info[0].As<Napi::Buffer<uint8_t>>());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// A worker that uses an existing credential: holds it in flight for its whole life.
class CredUseWorker : public PromiseWorker {
 public:
  CredUseWorker(Napi::Env env, std::shared_ptr<CredState> cred) : PromiseWorker(env), state_(std::move(cred)) {
    state_->Acquire();
    handle_ = state_->cred;
  }

 protected:
  void Done() override {
    if (state_) state_->Release();
    state_.reset();
  }
  std::shared_ptr<CredState> state_;
  gss_cred_id_t handle_;
};

class ExportWorker : public CredUseWorker {
 public:
  using CredUseWorker::CredUseWorker;
  ~ExportWorker() override {
    OM_uint32 minor = 0;
    if (out_.value != nullptr) {
      Wipe(out_.value, out_.length);
      gss_release_buffer(&minor, &out_);
    }
  }

 protected:
  void Run() override {
    OM_uint32 minor = 0;
    OM_uint32 major = gss_export_cred(&minor, handle_, &out_);
    if (GSS_ERROR(major)) CaptureGss(failure_, "gss_export_cred", major, minor);
  }
  Napi::Value Result(Napi::Env env) override {
    return Napi::Buffer<uint8_t>::Copy(env, static_cast<uint8_t*>(out_.value), out_.length);
  }

 private:
  gss_buffer_desc out_ = GSS_C_EMPTY_BUFFER;
};

Napi::Value CredentialWrap::Export(const Napi::CallbackInfo& info) {
  auto* w = new ExportWorker(info.Env(), State(info.Env()));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

class StoreWorker : public CredUseWorker {
 public:
  StoreWorker(Napi::Env env, std::shared_ptr<CredState> cred, std::string name, bool own)
      : CredUseWorker(env, cred), name_(std::move(name)), own_(own), registry_(cred->registry) {
    registry_->UseCache(name_);
  }

 protected:
  void Run() override {
    gss_key_value_element_desc el = {"ccache", name_.c_str()};
    gss_key_value_set_desc store = {1, &el};
    OM_uint32 minor = 0;
    // overwrite_cred = 1: the name is fresh and random; default_cred = 0: never touch the
    // process-wide default cache.
    OM_uint32 major = gss_store_cred_into(&minor, handle_, GSS_C_INITIATE, gss_mech_krb5, 1, 0, &store, nullptr, nullptr);
    if (GSS_ERROR(major)) CaptureGss(failure_, "gss_store_cred_into", major, minor);
  }
  void Done() override {
    // Register the cache even on failure: a partial write must still be cleaned up.
    registry_->caches.insert(name_);
    if (own_ && state_) state_->ownedCaches.push_back(name_);
    CredUseWorker::Done();
    registry_->UnuseCache(name_);
  }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, name_); }

 private:
  std::string name_;
  bool own_;
  std::shared_ptr<Registry> registry_;
};

Napi::Value CredentialWrap::Store(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) ThrowUsage(info.Env(), "ERR_GSS_INVALID_ARG", "cache name must be a string");
  auto* w = new StoreWorker(info.Env(), State(info.Env()), info[0].As<Napi::String>().Utf8Value(),
                            info[1].ToBoolean().Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// ---------------------------------------------------------------- destroyCache

// Asynchronous: krb5_cc_destroy of a FILE cache is file I/O, and a worker may still be loading
// or writing the cache; the destruction waits for such workers and then runs on the libuv pool.
// The promise resolves with whether the cache existed.
static Napi::Value DestroyCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowUsage(env, "ERR_GSS_INVALID_ARG", "cache name must be a string");
  Instance* inst = GetInstance(env);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  // Forget it in any credential that owns it, so dispose() does not destroy a reused name later.
  for (CredState* c : inst->registry->creds) {
    auto& v = c->ownedCaches;
    for (auto it = v.begin(); it != v.end();) it = (*it == name) ? v.erase(it) : it + 1;
  }
  napi_deferred deferred = nullptr;
  napi_value promise = nullptr;
  if (napi_create_promise(env, &deferred, &promise) != napi_ok) {
    ThrowUsage(env, "ERR_GSS_INTERNAL", "could not create a promise");
  }
  inst->registry->ScheduleDestroy(name, deferred);
  return Napi::Value(env, promise);
}

void InitCredential(Napi::Env env, Napi::Object exports) {
  Instance* inst = GetInstance(env);
  Napi::Function ctor = CredentialWrap::Define(env);
  inst->credentialCtor = Napi::Persistent(ctor);
  exports.Set("NativeCredential", ctor);
  exports.Set("acquireServiceCredential", Napi::Function::New<AcquireServiceCredential>(env, "acquireServiceCredential"));
  exports.Set("credentialFromCache", Napi::Function::New<CredentialFromCache>(env, "credentialFromCache"));
  exports.Set("importCredential", Napi::Function::New<ImportCredential>(env, "importCredential"));
  exports.Set("destroyCache", Napi::Function::New<DestroyCache>(env, "destroyCache"));
}

}  // namespace fwgss
