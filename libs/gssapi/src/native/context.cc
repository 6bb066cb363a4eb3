// Security contexts: one gss_accept_sec_context / gss_init_sec_context step per call, on the
// libuv pool, with at most one step in flight per context.
#include <string.h>

#include "common.h"
#include "name_attributes.h"

namespace fwgss {

// Tokens larger than this are refused before they reach the library. Active Directory tokens
// with a large PAC stay well under it (Windows' own MaxTokenSize default is 48 000 bytes).
static const size_t kMaxToken = 64 * 1024;

struct CtxState {
  gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
  gss_name_t target = GSS_C_NO_NAME;  // initiator only
  std::shared_ptr<CredState> cred;
  std::shared_ptr<Registry> registry;
  bool busy = false;       // main thread: a step is in flight
  bool complete = false;   // main thread
  bool failed = false;     // main thread: a step failed; the context is unusable (RFC 2743 2.2.1)
  bool disposed = false;   // main thread

  CtxState(std::shared_ptr<Registry> r, std::shared_ptr<CredState> c) : cred(std::move(c)), registry(std::move(r)) {
    registry->contexts.insert(this);
  }
  ~CtxState() {
    DeleteNow();
    registry->contexts.erase(this);
  }
  void DeleteNow() {
    OM_uint32 minor = 0;
    if (ctx != GSS_C_NO_CONTEXT) gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
    ctx = GSS_C_NO_CONTEXT;
    if (target != GSS_C_NO_NAME) gss_release_name(&minor, &target);
    target = GSS_C_NO_NAME;
  }
  void Dispose() {
    disposed = true;
    if (!busy) DeleteNow();
  }
};

static Napi::Object FlagsResult(Napi::Env env, Napi::Object o, OM_uint32 flags, OM_uint32 timeRec) {
  o.Set("flags", Napi::Number::New(env, flags));
  o.Set("lifetime", Napi::Number::New(env, timeRec == GSS_C_INDEFINITE ? -1.0 : static_cast<double>(timeRec)));
  return o;
}

// Checks shared by both context kinds before a step is queued (main thread).
static void CheckCanStep(Napi::Env env, CtxState& s) {
  if (s.disposed) ThrowUsage(env, "ERR_GSS_DISPOSED", "this context has been disposed");
  if (s.busy) {
    ThrowUsage(env, "ERR_GSS_CONTEXT_BUSY", "a step is already in progress on this context: await it before the next");
  }
  if (s.failed) ThrowUsage(env, "ERR_GSS_CONTEXT_FAILED", "a previous step failed: this context cannot continue, start a new one");
  if (s.complete) ThrowUsage(env, "ERR_GSS_CONTEXT_COMPLETE", "the context is already established");
  if (s.cred && s.cred->disposed) ThrowUsage(env, "ERR_GSS_DISPOSED", "the context's credential has been disposed");
}

class StepWorker : public PromiseWorker {
 public:
  StepWorker(Napi::Env env, std::shared_ptr<CtxState> s, const uint8_t* data, size_t len)
      : PromiseWorker(env), s_(std::move(s)), input_(data, data + len) {
    s_->busy = true;
    if (s_->cred) {
      s_->cred->Acquire();
      cred_ = s_->cred->cred;
    }
    ctx_ = s_->ctx;
    target_ = s_->target;
  }
  ~StepWorker() override {
    OM_uint32 minor = 0;
    if (out_.value != nullptr) gss_release_buffer(&minor, &out_);
  }

 protected:
  void Done() override {
    s_->busy = false;
    s_->ctx = ctx_;
    s_->target = target_;
    if (failure_.failed) s_->failed = true;
    else s_->complete = complete_;
    if (s_->cred) s_->cred->Release();
    if (s_->disposed) s_->DeleteNow();
  }
  Napi::Value Token(Napi::Env env) {
    if (out_.length == 0) return env.Null();
    return Napi::Buffer<uint8_t>::Copy(env, static_cast<uint8_t*>(out_.value), out_.length);
  }

  std::shared_ptr<CtxState> s_;
  std::vector<uint8_t> input_;
  gss_cred_id_t cred_ = GSS_C_NO_CREDENTIAL;
  gss_ctx_id_t ctx_;
  gss_name_t target_;
  gss_buffer_desc out_ = GSS_C_EMPTY_BUFFER;
  bool complete_ = false;
  OM_uint32 retFlags_ = 0, timeRec_ = 0;
  std::string mech_;
};

// ---------------------------------------------------------------- acceptor

class AcceptStepWorker : public StepWorker {
 public:
  AcceptStepWorker(Napi::Env env, std::shared_ptr<CtxState> s, const uint8_t* data, size_t len, bool krb5Only)
      : StepWorker(env, std::move(s), data, len), krb5Only_(krb5Only), registry_(s_->registry) {}
  ~AcceptStepWorker() override {
    OM_uint32 minor = 0;
    if (deleg_ != GSS_C_NO_CREDENTIAL) gss_release_cred(&minor, &deleg_);
  }

 protected:
  void Run() override {
    static const char kNtlmssp[] = "NTLMSSP";  // 8 bytes with the NUL, as on the wire
    if (krb5Only_ && input_.size() >= 8 && memcmp(input_.data(), kNtlmssp, 8) == 0) {
      return CaptureMessage(failure_, "gss_accept_sec_context", GSS_S_BAD_MECH,
                            "NTLM is refused: only Kerberos (raw or SPNEGO-wrapped) is accepted");
    }
    gss_buffer_desc in = {input_.size(), input_.data()};
    gss_name_t src = GSS_C_NO_NAME;
    gss_OID mech = GSS_C_NO_OID;
    OM_uint32 minor = 0;
    OM_uint32 major = gss_accept_sec_context(&minor, &ctx_, cred_, &in, GSS_C_NO_CHANNEL_BINDINGS, &src, &mech,
                                             &out_, &retFlags_, &timeRec_, &deleg_);
    if (GSS_ERROR(major)) {
      // `out_` may hold an error token (a KRB-ERROR, or a SPNEGO reject) for the client; it is
      // kept and handed to JS with the failure (DecorateFailure).
      CaptureGss(failure_, "gss_accept_sec_context", major, minor);
      if (src != GSS_C_NO_NAME) gss_release_name(&minor, &src);
      return;
    }
    mech_ = OidToString(mech);
    // SPNEGO reports the negotiated mechanism once it is chosen; anything but Kerberos is refused
    // even if another mechanism is installed on the machine.
    if (krb5Only_ && mech != GSS_C_NO_OID && !IsKrb5Mech(mech) && mech_ != "1.3.6.1.5.5.2") {
      if (src != GSS_C_NO_NAME) gss_release_name(&minor, &src);
      return CaptureMessage(failure_, "gss_accept_sec_context", GSS_S_BAD_MECH,
                            "mechanism " + mech_ + " is refused: only Kerberos (raw or SPNEGO-wrapped) is accepted");
    }
    complete_ = major == GSS_S_COMPLETE;
    if (complete_) principal_ = DisplayName(src);
    if (complete_) ReadNameAttributes(src, nameAttributes_);
    if (src != GSS_C_NO_NAME) gss_release_name(&minor, &src);
    if (complete_) {
      krb5_flags tkt = 0;
      if (!GSS_ERROR(gss_krb5_get_tkt_flags(&minor, ctx_, &tkt))) {
        haveTktFlags_ = true;
        forwardable_ = (tkt & TKT_FLG_FORWARDABLE) != 0;
      }
    }
    if (deleg_ != GSS_C_NO_CREDENTIAL) {
      InquireCred(deleg_, delegInfo_);
      // With a BOTH credential MIT fabricates an S4U2proxy credential for every token, but the
      // KDC refuses S4U2proxy when the evidence ticket is not forwardable
      // (EVIDENCE_TKT_NOT_FORWARDABLE), so such a credential can never work: drop it here
      // rather than fail later at gss_init_sec_context.
      if (!delegInfo_.impersonator.empty() && haveTktFlags_ && !forwardable_) {
        gss_release_cred(&minor, &deleg_);
        deleg_ = GSS_C_NO_CREDENTIAL;
        delegInfo_ = CredInfo();
      }
    }
  }

  void DecorateFailure(Napi::Env env, Napi::Object error) override {
    if (out_.length > 0) error.Set("token", Token(env));
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("complete", complete_);
    o.Set("token", Token(env));
    o.Set("principal", complete_ ? Napi::String::New(env, principal_) : env.Null());
    o.Set("mech", mech_);
    FlagsResult(env, o, retFlags_, timeRec_);
    o.Set("ticketForwardable", haveTktFlags_ ? Napi::Boolean::New(env, forwardable_) : env.Null());
    o.Set("nameAttributes", NameAttributesToJs(env, nameAttributes_));
    if (deleg_ != GSS_C_NO_CREDENTIAL) {
      auto state = std::make_shared<CredState>(registry_, deleg_);
      deleg_ = GSS_C_NO_CREDENTIAL;
      state->info = delegInfo_;
      o.Set("delegated", WrapCredential(env, state));
    } else {
      o.Set("delegated", env.Null());
    }
    return o;
  }

 private:
  bool krb5Only_;
  std::shared_ptr<Registry> registry_;
  gss_cred_id_t deleg_ = GSS_C_NO_CREDENTIAL;
  CredInfo delegInfo_;
  std::string principal_;
  bool haveTktFlags_ = false, forwardable_ = false;
  NameAttributes nameAttributes_;
};

class AcceptorWrap : public Napi::ObjectWrap<AcceptorWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeAcceptor",
                       {InstanceMethod<&AcceptorWrap::Step>("step"), InstanceMethod<&AcceptorWrap::Dispose>("dispose")});
  }
  // new NativeAcceptor(credential, krb5Only)
  explicit AcceptorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AcceptorWrap>(info) {
    Napi::Env env = info.Env();
    auto cred = UnwrapCredential(env, info[0]);
    krb5Only_ = info[1].ToBoolean().Value();
    s_ = std::make_shared<CtxState>(GetInstance(env)->registry, cred);
  }
  ~AcceptorWrap() override {
    if (s_) s_->Dispose();
  }

 private:
  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckCanStep(env, *s_);
    if (!info[0].IsBuffer()) ThrowUsage(env, "ERR_GSS_INVALID_ARG", "token must be a Buffer");
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    if (buf.Length() == 0 || buf.Length() > kMaxToken) {
      ThrowUsage(env, "ERR_GSS_INVALID_ARG", "token must be 1 to 65536 bytes");
    }
    auto* w = new AcceptStepWorker(env, s_, buf.Data(), buf.Length(), krb5Only_);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    s_->Dispose();
    return info.Env().Undefined();
  }
  std::shared_ptr<CtxState> s_;
  bool krb5Only_ = true;
};

// ---------------------------------------------------------------- initiator

class InitStepWorker : public StepWorker {
 public:
  InitStepWorker(Napi::Env env, std::shared_ptr<CtxState> s, const uint8_t* data, size_t len, std::string targetName,
                 bool hostbased, OM_uint32 flags, bool spnego)
      : StepWorker(env, std::move(s), data, len), targetName_(std::move(targetName)), hostbased_(hostbased),
        flags_(flags), spnego_(spnego) {}

 protected:
  void Run() override {
    OM_uint32 minor = 0, major;
    if (target_ == GSS_C_NO_NAME) {
      gss_buffer_desc nb = {targetName_.size(), const_cast<char*>(targetName_.data())};
      major = gss_import_name(&minor, &nb, hostbased_ ? GSS_C_NT_HOSTBASED_SERVICE : GSS_KRB5_NT_PRINCIPAL_NAME, &target_);
      if (GSS_ERROR(major)) return CaptureGss(failure_, "gss_import_name", major, minor);
    }
    gss_buffer_desc in = {input_.size(), input_.empty() ? nullptr : input_.data()};
    gss_OID actual = GSS_C_NO_OID;
    major = gss_init_sec_context(&minor, cred_, &ctx_, target_, spnego_ ? &kSpnegoOid : gss_mech_krb5, flags_, 0,
                                 GSS_C_NO_CHANNEL_BINDINGS, input_.empty() ? GSS_C_NO_BUFFER : &in, &actual, &out_,
                                 &retFlags_, &timeRec_);
    if (GSS_ERROR(major)) return CaptureGss(failure_, "gss_init_sec_context", major, minor);
    complete_ = major == GSS_S_COMPLETE;
    mech_ = OidToString(actual);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("complete", complete_);
    o.Set("token", Token(env));
    o.Set("mech", mech_);
    return FlagsResult(env, o, retFlags_, timeRec_);
  }

 private:
  std::string targetName_;
  bool hostbased_;
  OM_uint32 flags_;
  bool spnego_;
};

class InitiatorWrap : public Napi::ObjectWrap<InitiatorWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeInitiator",
                       {InstanceMethod<&InitiatorWrap::Step>("step"), InstanceMethod<&InitiatorWrap::Dispose>("dispose")});
  }
  // new NativeInitiator(credential, target, hostbased, flags, spnego)
  explicit InitiatorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<InitiatorWrap>(info) {
    Napi::Env env = info.Env();
    auto cred = UnwrapCredential(env, info[0]);
    if (!info[1].IsString()) ThrowUsage(env, "ERR_GSS_INVALID_ARG", "target must be a string");
    target_ = info[1].As<Napi::String>().Utf8Value();
    hostbased_ = info[2].ToBoolean().Value();
    flags_ = info[3].ToNumber().Uint32Value();
    spnego_ = info[4].ToBoolean().Value();
    s_ = std::make_shared<CtxState>(GetInstance(env)->registry, cred);
    info.This().As<Napi::Object>().TypeTag(&kInitiatorTag);
  }
  ~InitiatorWrap() override {
    if (s_) s_->Dispose();
  }
  static const napi_type_tag kInitiatorTag;
  std::shared_ptr<CtxState> State() { return s_; }

 private:
  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckCanStep(env, *s_);
    const uint8_t* data = nullptr;
    size_t len = 0;
    if (info[0].IsBuffer()) {
      auto buf = info[0].As<Napi::Buffer<uint8_t>>();
      data = buf.Data();
      len = buf.Length();
      if (len > kMaxToken) ThrowUsage(env, "ERR_GSS_INVALID_ARG", "token must be at most 65536 bytes");
    } else if (!info[0].IsNull() && !info[0].IsUndefined()) {
      ThrowUsage(env, "ERR_GSS_INVALID_ARG", "input token must be a Buffer or null");
    }
    auto* w = new InitStepWorker(env, s_, data, len, target_, hostbased_, flags_, spnego_);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    s_->Dispose();
    return info.Env().Undefined();
  }
  std::shared_ptr<CtxState> s_;
  std::string target_;
  bool hostbased_ = true;
  OM_uint32 flags_ = 0;
  bool spnego_ = false;
};

const napi_type_tag InitiatorWrap::kInitiatorTag = {0x6677737373696e69ULL, 0x746961746f720001ULL};

// seal.cc: move the established gss_ctx_id_t out of a JS NativeInitiator into a sealer, which
// owns it from then on; the initiator is left disposed.
gss_ctx_id_t TakeEstablishedContext(Napi::Env env, Napi::Value v) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&InitiatorWrap::kInitiatorTag)) {
    ThrowUsage(env, "ERR_GSS_INVALID_ARG", "expected an initiator context");
  }
  std::shared_ptr<CtxState> s = InitiatorWrap::Unwrap(v.As<Napi::Object>())->State();
  if (s->disposed) ThrowUsage(env, "ERR_GSS_DISPOSED", "this context has been disposed");
  if (s->busy) ThrowUsage(env, "ERR_GSS_CONTEXT_BUSY", "a step is in progress on this context: await it first");
  if (!s->complete || s->failed || s->ctx == GSS_C_NO_CONTEXT) {
    ThrowUsage(env, "ERR_GSS_CONTEXT_INCOMPLETE", "the context is not established: finish its steps first");
  }
  gss_ctx_id_t ctx = s->ctx;
  s->ctx = GSS_C_NO_CONTEXT;
  s->Dispose();
  return ctx;
}

void InitContext(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeAcceptor", AcceptorWrap::Define(env));
  exports.Set("NativeInitiator", InitiatorWrap::Define(env));
}

// Used by the environment cleanup hook (addon.cc).
void TearDownContexts(Registry& r) {
  std::set<CtxState*> copy = r.contexts;
  for (CtxState* c : copy) {
    c->disposed = true;
    if (!c->busy) c->DeleteNow();
  }
}

}  // namespace fwgss
