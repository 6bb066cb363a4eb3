// Password login with KDC verification, done with libkrb5 because GSSAPI has no call for the
// verification step: get a TGT with the password, then (like krb5_verify_init_creds(3), and
// kinit's -V / pam_krb5's validation) get a ticket for our own service principal and decrypt it
// with our keytab. A KDC that does not hold our service key (a rogue KDC answering for the
// realm) cannot make that ticket, so a password it "accepted" is refused.
#include <errno.h>
#include <fcntl.h>
#include <profile.h>
#include <unistd.h>

#include "common.h"

namespace fwgss {

class PasswordWorker : public PromiseWorker {
 public:
  PasswordWorker(Napi::Env env, const Napi::Object& o) : PromiseWorker(env), registry_(GetInstance(env)->registry) {
    auto str = [&](const char* k) {
      Napi::Value v = o.Get(k);
      return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
    };
    username_ = str("username");
    keytab_ = str("keytab");
    service_ = str("servicePrincipal");
    krb5Config_ = str("krb5Config");
    verify_ = o.Get("verifyKdc").ToBoolean().Value();
    Napi::Value pw = o.Get("password");
    if (pw.IsBuffer()) {
      auto b = pw.As<Napi::Buffer<uint8_t>>();
      // NUL-terminated copy in C++-owned memory, wiped as soon as the KDC exchange is over.
      // Reserved up front so it is one block; SecretBytes would wipe any other block anyway.
      password_.reserve(b.Length() + 1);
      password_.assign(b.Data(), b.Data() + b.Length());
    }
    password_.push_back(0);
  }
  ~PasswordWorker() override {
    Wipe(password_.data(), password_.size());
    OM_uint32 minor = 0;
    if (cred_ != GSS_C_NO_CREDENTIAL) gss_release_cred(&minor, &cred_);
  }

 protected:
  void Run() override {
    krb5_context ctx = nullptr;
    krb5_error_code code;
    if (!krb5Config_.empty()) {
      // An explicit profile for this call only (KRB5_CONFIG is process-wide).
      profile_t profile = nullptr;
      const char* files[] = {krb5Config_.c_str(), nullptr};
      code = profile_init(files, &profile);
      if (code == 0) {
        code = krb5_init_context_profile(profile, 0, &ctx);
        profile_release(profile);
      }
      if (code != 0) {
        Wipe(password_.data(), password_.size());
        return CaptureErrno(failure_, "krb5_init_context_profile", code == ENOENT ? ENOENT : EINVAL,
                            "krb5 profile " + krb5Config_);
      }
    } else if ((code = krb5_init_context(&ctx)) != 0) {
      Wipe(password_.data(), password_.size());
      return CaptureKrb5(failure_, nullptr, "krb5_init_context", code);
    }
    LoginWith(ctx);
    Wipe(password_.data(), password_.size());
    krb5_free_context(ctx);
  }

  void LoginWith(krb5_context ctx) {
    krb5_principal client = nullptr, server = nullptr;
    krb5_get_init_creds_opt* opt = nullptr;
    krb5_creds creds;
    memset(&creds, 0, sizeof creds);
    bool haveCreds = false;
    krb5_keytab kt = nullptr;
    krb5_ccache cc = nullptr;
    krb5_error_code code;

    do {
      if (verify_) {
        // Check the keytab and service name before sending the password anywhere.
        if ((code = krb5_parse_name(ctx, service_.c_str(), &server)) != 0) {
          CaptureKrb5(failure_, ctx, "krb5_parse_name", code);
          break;
        }
        // "FILE:/x" and "WRFILE:/x" name the file /x (as in credential.cc's KeytabPath).
        std::string path = keytab_.rfind("FILE:", 0) == 0     ? keytab_.substr(5)
                           : keytab_.rfind("WRFILE:", 0) == 0 ? keytab_.substr(7)
                                                              : keytab_;
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
          CaptureErrno(failure_, "open", errno, "keytab " + path);
          break;
        }
        close(fd);
        std::string ktName = keytab_.find(':') == std::string::npos ? "FILE:" + keytab_ : keytab_;
        if ((code = krb5_kt_resolve(ctx, ktName.c_str(), &kt)) != 0) {
          CaptureKrb5(failure_, ctx, "krb5_kt_resolve", code);
          break;
        }
      }
      if ((code = krb5_parse_name(ctx, username_.c_str(), &client)) != 0) {
        CaptureKrb5(failure_, ctx, "krb5_parse_name", code);
        break;
      }
      if ((code = krb5_get_init_creds_opt_alloc(ctx, &opt)) != 0) {
        CaptureKrb5(failure_, ctx, "krb5_get_init_creds_opt_alloc", code);
        break;
      }
      code = krb5_get_init_creds_password(ctx, &creds, client, reinterpret_cast<const char*>(password_.data()),
                                          nullptr, nullptr, 0, nullptr, opt);
      Wipe(password_.data(), password_.size());
      if (code != 0) {
        CaptureKrb5(failure_, ctx, "krb5_get_init_creds_password", code);
        break;
      }
      haveCreds = true;
      if (verify_) {
        krb5_verify_init_creds_opt vopt;
        krb5_verify_init_creds_opt_init(&vopt);
        // Fail when the keytab has no key for the service instead of silently skipping the check.
        krb5_verify_init_creds_opt_set_ap_req_nofail(&vopt, 1);
        if ((code = krb5_verify_init_creds(ctx, &creds, server, kt, nullptr, &vopt)) != 0) {
          CaptureKrb5(failure_, ctx, "krb5_verify_init_creds", code);
          break;
        }
      }
      // Hand the TGT to GSSAPI through a private MEMORY cache owned by the new credential.
      if ((code = krb5_cc_new_unique(ctx, "MEMORY", nullptr, &cc)) != 0) {
        CaptureKrb5(failure_, ctx, "krb5_cc_new_unique", code);
        break;
      }
      ccache_ = std::string("MEMORY:") + krb5_cc_get_name(ctx, cc);
      const char* step = "krb5_cc_initialize";
      if ((code = krb5_cc_initialize(ctx, cc, client)) == 0) {
        step = "krb5_cc_store_cred";
        code = krb5_cc_store_cred(ctx, cc, &creds);
      }
      if (code != 0) {
        CaptureKrb5(failure_, ctx, step, code);
        krb5_cc_destroy(ctx, cc);
        cc = nullptr;
        ccache_.clear();
        break;
      }
      krb5_cc_close(ctx, cc);  // a closed MEMORY cache lives on until destroyed
      cc = nullptr;
      gss_key_value_element_desc el = {"ccache", ccache_.c_str()};
      gss_key_value_set_desc store = {1, &el};
      gss_OID_desc mechs[2] = {*gss_mech_krb5, kSpnegoOid};
      gss_OID_set_desc mechSet = {2, mechs};
      OM_uint32 minor = 0;
      OM_uint32 major = gss_acquire_cred_from(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, &mechSet, GSS_C_INITIATE,
                                              &store, &cred_, nullptr, nullptr);
      if (GSS_ERROR(major)) {
        CaptureGss(failure_, "gss_acquire_cred_from", major, minor);
        krb5_ccache dead = nullptr;
        if (krb5_cc_resolve(ctx, ccache_.c_str(), &dead) == 0) krb5_cc_destroy(ctx, dead);
        ccache_.clear();
        break;
      }
      InquireCred(cred_, info_);
    } while (false);

    if (haveCreds) krb5_free_cred_contents(ctx, &creds);
    if (opt) krb5_get_init_creds_opt_free(ctx, opt);
    if (client) krb5_free_principal(ctx, client);
    if (server) krb5_free_principal(ctx, server);
    if (kt) krb5_kt_close(ctx, kt);
  }

  Napi::Value Result(Napi::Env env) override {
    auto state = std::make_shared<CredState>(registry_, cred_);
    cred_ = GSS_C_NO_CREDENTIAL;
    state->info = info_;
    state->ownedCaches.push_back(ccache_);
    registry_->caches.insert(ccache_);
    return WrapCredential(env, state);
  }

 private:
  std::shared_ptr<Registry> registry_;
  std::string username_, keytab_, service_, krb5Config_, ccache_;
  SecretBytes password_;
  bool verify_ = true;
  gss_cred_id_t cred_ = GSS_C_NO_CREDENTIAL;
  CredInfo info_;
};

static Napi::Value PasswordLogin(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) ThrowUsage(info.Env(), "ERR_GSS_INVALID_ARG", "options object required");
  Napi::Object o = info[0].As<Napi::Object>();
  if (!o.Get("password").IsBuffer()) ThrowUsage(info.Env(), "ERR_GSS_INVALID_ARG", "password must be a Buffer");
  auto* w = new PasswordWorker(info.Env(), o);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

void InitPassword(Napi::Env env, Napi::Object exports) {
  exports.Set("passwordLogin", Napi::Function::New<PasswordLogin>(env, "passwordLogin"));
}

}  // namespace fwgss
