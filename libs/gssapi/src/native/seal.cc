// Per-message protection of an established context: gss_wrap / gss_unwrap / gss_wrap_size_limit,
// framed the way PostgreSQL's GSSAPI transport encryption frames them (a 4-byte big-endian length,
// then the wrap token). A NativeSealer takes the gss_ctx_id_t over from an established
// NativeInitiator (context.cc's TakeEstablishedContext) and owns it from then on.
//
// Threading: one operation at a time per sealer (`busy`, main thread). A GSS context is not safe
// for concurrent use, and the sequence numbers it checks (GSS_C_SEQUENCE_FLAG) require the caller
// to keep order anyway, so the TypeScript side queues operations. Large batches run on the libuv
// pool (AsyncWorker) so a 10 MB result never stalls the event loop; small ones may run inline
// (sealSync / unsealSync) where the TypeScript side measured that cheaper.
#include <string.h>

#include "common.h"

namespace fwgss {

gss_ctx_id_t TakeEstablishedContext(Napi::Env env, Napi::Value initiator);  // context.cc

// PostgreSQL's PQ_GSS_MAX_PACKET_SIZE (PQ_GSS_SEND_BUFFER_SIZE before 17): the largest packet,
// length word included, either side sends or accepts.
static const size_t kMaxPacket = 16384;
static const size_t kMaxToken = kMaxPacket - 4;

struct SealState {
  gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
  bool busy = false;      // main thread: an operation is queued or running
  bool disposed = false;  // main thread
  bool failed = false;    // main thread: an unwrap failed; the stream is no longer trustworthy

  ~SealState() { DeleteNow(); }
  void DeleteNow() {
    OM_uint32 minor = 0;
    if (ctx != GSS_C_NO_CONTEXT) gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
    ctx = GSS_C_NO_CONTEXT;
  }
  void Dispose() {
    disposed = true;
    if (!busy) DeleteNow();
  }
};

static void PutLength(std::vector<uint8_t>& out, size_t n) {
  out.push_back(static_cast<uint8_t>(n >> 24));
  out.push_back(static_cast<uint8_t>(n >> 16));
  out.push_back(static_cast<uint8_t>(n >> 8));
  out.push_back(static_cast<uint8_t>(n));
}

// gss_wrap every `maxPlain`-byte slice of `in` with confidentiality, each as length + token.
static void SealAll(gss_ctx_id_t ctx, const uint8_t* in, size_t len, size_t maxPlain, std::vector<uint8_t>& out,
                    Failure& f) {
  out.reserve(len + (len / maxPlain + 1) * 64);
  for (size_t off = 0; off < len; off += maxPlain) {
    size_t n = len - off < maxPlain ? len - off : maxPlain;
    gss_buffer_desc plain = {n, const_cast<uint8_t*>(in + off)};
    gss_buffer_desc token = GSS_C_EMPTY_BUFFER;
    int conf = 0;
    OM_uint32 minor = 0;
    OM_uint32 major = gss_wrap(&minor, ctx, 1, GSS_C_QOP_DEFAULT, &plain, &conf, &token);
    if (GSS_ERROR(major)) return CaptureGss(f, "gss_wrap", major, minor);
    bool tooBig = token.length > kMaxToken;
    if (conf && !tooBig) {
      PutLength(out, token.length);
      const uint8_t* t = static_cast<const uint8_t*>(token.value);
      out.insert(out.end(), t, t + token.length);
    }
    gss_release_buffer(&minor, &token);
    if (!conf) return CaptureMessage(f, "gss_wrap", GSS_S_FAILURE, "the mechanism did not provide confidentiality");
    if (tooBig) return CaptureMessage(f, "gss_wrap", GSS_S_FAILURE, "a wrapped packet exceeds 16384 bytes");
  }
}

// gss_unwrap a run of complete packets (length + token each); every one must have been sealed
// with confidentiality. Any failure discards the whole run: nothing unverified reaches the caller.
static void UnsealAll(gss_ctx_id_t ctx, const uint8_t* in, size_t len, std::vector<uint8_t>& out, Failure& f) {
  out.reserve(len);
  size_t off = 0;
  while (off < len) {
    if (len - off < 4) return CaptureMessage(f, "gss_unwrap", GSS_S_DEFECTIVE_TOKEN, "truncated packet length");
    size_t n = (static_cast<size_t>(in[off]) << 24) | (static_cast<size_t>(in[off + 1]) << 16) |
               (static_cast<size_t>(in[off + 2]) << 8) | in[off + 3];
    off += 4;
    if (n > kMaxToken) return CaptureMessage(f, "gss_unwrap", GSS_S_DEFECTIVE_TOKEN, "oversized packet");
    if (len - off < n) return CaptureMessage(f, "gss_unwrap", GSS_S_DEFECTIVE_TOKEN, "truncated packet");
    gss_buffer_desc token = {n, const_cast<uint8_t*>(in + off)};
    gss_buffer_desc plain = GSS_C_EMPTY_BUFFER;
    int conf = 0;
    gss_qop_t qop = 0;
    OM_uint32 minor = 0;
    OM_uint32 major = gss_unwrap(&minor, ctx, &token, &plain, &conf, &qop);
    if (GSS_ERROR(major)) {
      out.clear();
      return CaptureGss(f, "gss_unwrap", major, minor);
    }
    // Supplementary bits (duplicate, old, unseq, gap) mean a replayed, reordered or dropped packet.
    bool sequenceBroken = (major & (GSS_S_DUPLICATE_TOKEN | GSS_S_OLD_TOKEN | GSS_S_UNSEQ_TOKEN | GSS_S_GAP_TOKEN)) != 0;
    if (conf && !sequenceBroken) {
      const uint8_t* p = static_cast<const uint8_t*>(plain.value);
      out.insert(out.end(), p, p + plain.length);
    }
    gss_release_buffer(&minor, &plain);
    if (!conf) {
      out.clear();
      return CaptureMessage(f, "gss_unwrap", GSS_S_BAD_SIG, "a packet was not encrypted (conf_state false)");
    }
    if (sequenceBroken) {
      out.clear();
      return CaptureMessage(f, "gss_unwrap", GSS_S_DUPLICATE_TOKEN, "a packet was replayed, reordered or dropped");
    }
    off += n;
  }
}

class SealWorker : public PromiseWorker {
 public:
  SealWorker(Napi::Env env, std::shared_ptr<SealState> s, const uint8_t* data, size_t len, bool seal, size_t maxPlain)
      : PromiseWorker(env), s_(std::move(s)), input_(data, data + len), seal_(seal), maxPlain_(maxPlain) {
    s_->busy = true;
    ctx_ = s_->ctx;
  }
  ~SealWorker() override {
    // Plaintext of user data: do not leave it in freed heap memory.
    if (!output_.empty()) Wipe(output_.data(), output_.size());
    if (!input_.empty()) Wipe(input_.data(), input_.size());
  }

 protected:
  void Run() override {
    if (seal_) SealAll(ctx_, input_.data(), input_.size(), maxPlain_, output_, failure_);
    else UnsealAll(ctx_, input_.data(), input_.size(), output_, failure_);
  }
  void Done() override {
    s_->busy = false;
    if (failure_.failed && !seal_) s_->failed = true;
    if (s_->disposed) s_->DeleteNow();
  }
  Napi::Value Result(Napi::Env env) override {
    return Napi::Buffer<uint8_t>::Copy(env, output_.data(), output_.size());
  }

 private:
  std::shared_ptr<SealState> s_;
  std::vector<uint8_t> input_;
  bool seal_;
  size_t maxPlain_;
  gss_ctx_id_t ctx_;
  std::vector<uint8_t> output_;
};

class SealerWrap : public Napi::ObjectWrap<SealerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeSealer",
                       {InstanceMethod<&SealerWrap::WrapSizeLimit>("wrapSizeLimit"),
                        InstanceMethod<&SealerWrap::Seal>("seal"), InstanceMethod<&SealerWrap::SealSync>("sealSync"),
                        InstanceMethod<&SealerWrap::Unseal>("unseal"),
                        InstanceMethod<&SealerWrap::UnsealSync>("unsealSync"),
                        InstanceMethod<&SealerWrap::WrapToken>("wrapToken"),
                        InstanceMethod<&SealerWrap::UnwrapToken>("unwrapToken"),
                        InstanceMethod<&SealerWrap::Dispose>("dispose")});
  }
  // new NativeSealer(initiator): takes the established context over; the initiator is spent.
  explicit SealerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SealerWrap>(info) {
    s_ = std::make_shared<SealState>();
    s_->ctx = TakeEstablishedContext(info.Env(), info[0]);
  }
  ~SealerWrap() override {
    if (s_) s_->Dispose();
  }

 private:
  void CheckUsable(Napi::Env env) {
    if (s_->disposed) ThrowUsage(env, "ERR_GSS_DISPOSED", "this sealer has been disposed");
    if (s_->busy) ThrowUsage(env, "ERR_GSS_CONTEXT_BUSY", "an operation is in progress on this context: await it first");
    if (s_->failed) ThrowUsage(env, "ERR_GSS_CONTEXT_FAILED", "a packet failed verification: this channel cannot continue");
  }
  static Napi::Buffer<uint8_t> BufferArg(Napi::Env env, const Napi::CallbackInfo& info) {
    if (!info[0].IsBuffer()) ThrowUsage(env, "ERR_GSS_INVALID_ARG", "data must be a Buffer");
    return info[0].As<Napi::Buffer<uint8_t>>();
  }
  static size_t MaxPlainArg(Napi::Env env, const Napi::CallbackInfo& info) {
    double m = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
    if (!(m >= 1 && m <= kMaxToken)) ThrowUsage(env, "ERR_GSS_INVALID_ARG", "maxPlain must be 1 to 16380");
    return static_cast<size_t>(m);
  }

  // wrapSizeLimit(maxToken): the largest plaintext whose confidential wrap token fits in maxToken.
  Napi::Value WrapSizeLimit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckUsable(env);
    double req = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
    if (!(req >= 64 && req <= kMaxToken)) ThrowUsage(env, "ERR_GSS_INVALID_ARG", "size must be 64 to 16380");
    OM_uint32 minor = 0, maxIn = 0;
    OM_uint32 major = gss_wrap_size_limit(&minor, s_->ctx, 1, GSS_C_QOP_DEFAULT, static_cast<OM_uint32>(req), &maxIn);
    if (GSS_ERROR(major)) {
      Failure f;
      CaptureGss(f, "gss_wrap_size_limit", major, minor);
      throw Napi::Error(env, FailureToJs(env, f));
    }
    return Napi::Number::New(env, maxIn);
  }

  Napi::Value Seal(const Napi::CallbackInfo& info) { return Queue(info, true); }
  Napi::Value Unseal(const Napi::CallbackInfo& info) { return Queue(info, false); }
  Napi::Value SealSync(const Napi::CallbackInfo& info) { return Inline(info, true); }
  Napi::Value UnsealSync(const Napi::CallbackInfo& info) { return Inline(info, false); }

  Napi::Value Queue(const Napi::CallbackInfo& info, bool seal) {
    Napi::Env env = info.Env();
    CheckUsable(env);
    auto buf = BufferArg(env, info);
    size_t maxPlain = seal ? MaxPlainArg(env, info) : 0;
    auto* w = new SealWorker(env, s_, buf.Data(), buf.Length(), seal, maxPlain);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }

  Napi::Value Inline(const Napi::CallbackInfo& info, bool seal) {
    Napi::Env env = info.Env();
    CheckUsable(env);
    auto buf = BufferArg(env, info);
    std::vector<uint8_t> out;
    Failure f;
    if (seal) SealAll(s_->ctx, buf.Data(), buf.Length(), MaxPlainArg(env, info), out, f);
    else UnsealAll(s_->ctx, buf.Data(), buf.Length(), out, f);
    if (f.failed) {
      if (!seal) s_->failed = true;
      throw Napi::Error(env, FailureToJs(env, f));
    }
    Napi::Value result = Napi::Buffer<uint8_t>::Copy(env, out.data(), out.size());
    if (!out.empty()) Wipe(out.data(), out.size());
    return result;
  }

  // wrapToken(data, confidential): one unframed gss_wrap token, for protocols that carry wrap tokens
  // themselves (SASL GSSAPI's security-layer negotiation, RFC 4752 section 3.1). Inline: these
  // messages are a few bytes.
  Napi::Value WrapToken(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckUsable(env);
    auto buf = BufferArg(env, info);
    if (buf.Length() > kMaxToken) ThrowUsage(env, "ERR_GSS_INVALID_ARG", "data must be at most 16380 bytes");
    bool wantConf = info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    gss_buffer_desc plain = {buf.Length(), buf.Data()};
    gss_buffer_desc token = GSS_C_EMPTY_BUFFER;
    int conf = 0;
    OM_uint32 minor = 0;
    OM_uint32 major = gss_wrap(&minor, s_->ctx, wantConf ? 1 : 0, GSS_C_QOP_DEFAULT, &plain, &conf, &token);
    Failure f;
    if (GSS_ERROR(major)) CaptureGss(f, "gss_wrap", major, minor);
    else if (wantConf && !conf) CaptureMessage(f, "gss_wrap", GSS_S_FAILURE, "the mechanism did not provide confidentiality");
    if (f.failed) {
      gss_release_buffer(&minor, &token);
      throw Napi::Error(env, FailureToJs(env, f));
    }
    Napi::Value result = Napi::Buffer<uint8_t>::Copy(env, static_cast<uint8_t*>(token.value), token.length);
    gss_release_buffer(&minor, &token);
    return result;
  }

  // unwrapToken(token) -> { data, confidential }: one unframed gss_unwrap. Integrity is always
  // verified (a tampered, replayed or reordered token throws and spends the channel); whether the
  // peer also encrypted is reported, for the caller to require where it must.
  Napi::Value UnwrapToken(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckUsable(env);
    auto buf = BufferArg(env, info);
    if (buf.Length() > kMaxToken) ThrowUsage(env, "ERR_GSS_INVALID_ARG", "token must be at most 16380 bytes");
    gss_buffer_desc token = {buf.Length(), buf.Data()};
    gss_buffer_desc plain = GSS_C_EMPTY_BUFFER;
    int conf = 0;
    gss_qop_t qop = 0;
    OM_uint32 minor = 0;
    OM_uint32 major = gss_unwrap(&minor, s_->ctx, &token, &plain, &conf, &qop);
    Failure f;
    if (GSS_ERROR(major)) CaptureGss(f, "gss_unwrap", major, minor);
    else if ((major & (GSS_S_DUPLICATE_TOKEN | GSS_S_OLD_TOKEN | GSS_S_UNSEQ_TOKEN | GSS_S_GAP_TOKEN)) != 0)
      CaptureMessage(f, "gss_unwrap", GSS_S_DUPLICATE_TOKEN, "a token was replayed, reordered or dropped");
    if (f.failed) {
      gss_release_buffer(&minor, &plain);
      s_->failed = true;
      throw Napi::Error(env, FailureToJs(env, f));
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("data", Napi::Buffer<uint8_t>::Copy(env, static_cast<uint8_t*>(plain.value), plain.length));
    result.Set("confidential", Napi::Boolean::New(env, conf != 0));
    if (plain.length) Wipe(plain.value, plain.length);
    gss_release_buffer(&minor, &plain);
    return result;
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    s_->Dispose();
    return info.Env().Undefined();
  }

  std::shared_ptr<SealState> s_;
};

void InitSeal(Napi::Env env, Napi::Object exports) { exports.Set("NativeSealer", SealerWrap::Define(env)); }

}  // namespace fwgss
