#include "auth/token_authenticator.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Crypto/ECKey.h>
#include <Poco/Crypto/EVPPKey.h>
#include <Poco/Crypto/RSAKey.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JWT/Signer.h>
#include <Poco/JWT/Token.h>
#include <Poco/String.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "regfs/core/digest.h"

namespace regfs::httpd {

namespace {

// Tokens are a few hundred bytes to a few KiB (an x5c chain); anything larger is hostile.
constexpr size_t kMaxTokenBytes = 16 * 1024;
constexpr int64_t kLeewaySeconds = 60;
// Accepted tokens remembered at most; tokens live minutes, so this is many clients' worth.
constexpr size_t kMaxRememberedTokens = 10000;

const std::set<std::string>& RsaAlgorithms() {
  static const std::set<std::string> algs = {"RS256", "RS384", "RS512"};
  return algs;
}
const std::set<std::string>& EcAlgorithms() {
  static const std::set<std::string> algs = {"ES256", "ES384", "ES512"};
  return algs;
}

template <typename T, void (*Free)(T*)>
struct OpenSslDeleter {
  void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO, BIO_free_all>>;
void FreeCertStack(STACK_OF(X509) * stack) { sk_X509_free(stack); }  // a macro in OpenSSL
using CertStackPtr = std::unique_ptr<STACK_OF(X509), OpenSslDeleter<STACK_OF(X509), FreeCertStack>>;

// Base64 or base64url, padded or not.
std::optional<std::string> DecodeBase64(std::string text, bool url) {
  if (url) {
    for (char& c : text) {
      if (c == '-') c = '+';
      if (c == '_') c = '/';
    }
  }
  while (text.size() % 4 != 0) text += '=';
  try {
    std::istringstream in(text);
    Poco::Base64Decoder decoder(in);
    std::ostringstream out;
    out << decoder.rdbuf();
    return out.str();
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
}

// A verifier for one public key, allowing only the algorithms of its type.
std::shared_ptr<Poco::JWT::Signer> SignerFor(EVP_PKEY* key) {
  Poco::Crypto::EVPPKey wrapped(key);
  switch (EVP_PKEY_base_id(key)) {
    case EVP_PKEY_RSA: {
      auto signer = std::make_shared<Poco::JWT::Signer>(
          Poco::SharedPtr<Poco::Crypto::RSAKey>(new Poco::Crypto::RSAKey(wrapped)));
      signer->setAlgorithms(RsaAlgorithms());
      return signer;
    }
    case EVP_PKEY_EC: {
      auto signer = std::make_shared<Poco::JWT::Signer>(
          Poco::SharedPtr<Poco::Crypto::ECKey>(new Poco::Crypto::ECKey(wrapped)));
      signer->setAlgorithms(EcAlgorithms());
      return signer;
    }
    default:
      return nullptr;
  }
}

// A JWK ({"kty":"RSA","n","e"} or {"kty":"EC","crv":"P-256","x","y"}) as a public key.
PkeyPtr KeyFromJwk(const Poco::JSON::Object& jwk) {
  std::string kty = jwk.optValue<std::string>("kty", "");
  std::unique_ptr<OSSL_PARAM_BLD, OpenSslDeleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>> bld(
      OSSL_PARAM_BLD_new());
  std::vector<std::unique_ptr<BIGNUM, OpenSslDeleter<BIGNUM, BN_free>>> numbers;
  std::string point;
  const char* type = nullptr;
  if (kty == "RSA") {
    type = "RSA";
    for (auto [field, param] : {std::pair{"n", OSSL_PKEY_PARAM_RSA_N},
                                std::pair{"e", OSSL_PKEY_PARAM_RSA_E}}) {
      auto bytes = DecodeBase64(jwk.optValue<std::string>(field, ""), true);
      if (!bytes || bytes->empty()) return nullptr;
      numbers.emplace_back(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes->data()),
                                     static_cast<int>(bytes->size()), nullptr));
      if (!numbers.back() || !OSSL_PARAM_BLD_push_BN(bld.get(), param, numbers.back().get()))
        return nullptr;
    }
  } else if (kty == "EC") {
    type = "EC";
    static const std::map<std::string, const char*> kCurves = {
        {"P-256", "prime256v1"}, {"P-384", "secp384r1"}, {"P-521", "secp521r1"}};
    auto curve = kCurves.find(jwk.optValue<std::string>("crv", ""));
    auto x = DecodeBase64(jwk.optValue<std::string>("x", ""), true);
    auto y = DecodeBase64(jwk.optValue<std::string>("y", ""), true);
    if (curve == kCurves.end() || !x || !y || x->empty() || x->size() != y->size()) return nullptr;
    point = std::string(1, '\x04') + *x + *y;  // uncompressed point
    if (!OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve->second, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                          point.size()))
      return nullptr;
  } else {
    return nullptr;
  }
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld.get());
  if (params == nullptr) return nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  EVP_PKEY* key = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx) <= 0 ||
      EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
    key = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return PkeyPtr(key);
}

// A NumericDate claim (RFC 7519 §2: a JSON number of seconds). Absent: *value stays empty.
// Present as anything but a number (a string, null, an object): false, and the token is bad.
bool ReadNumericDate(const Poco::JSON::Object& claims, const std::string& name,
                     std::optional<int64_t>* value) {
  value->reset();
  if (!claims.has(name)) return true;
  const Poco::Dynamic::Var claim = claims.get(name);
  if (claim.isEmpty() || claim.isString() || !claim.isNumeric()) return false;
  double seconds = 0;
  try {
    seconds = claim.convert<double>();
  } catch (const Poco::Exception&) {
    return false;
  }
  if (std::isnan(seconds)) return false;
  // Clamp far beyond any real date, so the conversion and the leeway arithmetic stay defined.
  constexpr double kLimit = 1e15;
  *value = static_cast<int64_t>(std::clamp(seconds, -kLimit, kLimit));
  return true;
}

}  // namespace

struct TokenAuthenticator::Keys {
  std::vector<std::shared_ptr<Poco::JWT::Signer>> trusted;
  // The rootcertbundle as a trust store for x5c chains; null without a bundle.
  std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE, X509_STORE_free>> roots;
};

TokenAuthenticator::TokenAuthenticator(const Config::Token& config)
    : config_(config), keys_(std::make_unique<Keys>()) {}

TokenAuthenticator::~TokenAuthenticator() = default;

size_t TokenAuthenticator::trusted_key_count() const { return keys_->trusted.size(); }

Result<std::unique_ptr<TokenAuthenticator>> TokenAuthenticator::Create(const Config::Token& config) {
  std::unique_ptr<TokenAuthenticator> auth(new TokenAuthenticator(config));
  Keys& keys = *auth->keys_;
  if (!config.root_cert_bundle.empty()) {
    BioPtr bio(BIO_new_file(config.root_cert_bundle.c_str(), "r"));
    if (!bio) {
      return Status::InvalidArgument("auth.token.rootcertbundle: cannot read " +
                                     config.root_cert_bundle);
    }
    keys.roots.reset(X509_STORE_new());
    size_t certificates = 0;
    while (X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      X509Ptr cert(raw);
      ++certificates;
      X509_STORE_add_cert(keys.roots.get(), cert.get());
      EVP_PKEY* key = X509_get0_pubkey(cert.get());
      auto signer = key ? SignerFor(key) : nullptr;
      if (!signer) {
        return Status::InvalidArgument("auth.token.rootcertbundle: certificate " +
                                       std::to_string(certificates) +
                                       " has neither an RSA nor an EC key");
      }
      keys.trusted.push_back(std::move(signer));
    }
    if (certificates == 0) {
      return Status::InvalidArgument("auth.token.rootcertbundle: no PEM certificate in " +
                                     config.root_cert_bundle);
    }
  }
  if (!config.jwks.empty()) {
    std::ifstream in(config.jwks);
    if (!in) return Status::InvalidArgument("auth.token.jwks: cannot read " + config.jwks);
    try {
      Poco::JSON::Parser parser;
      auto set = parser.parse(in).extract<Poco::JSON::Object::Ptr>();
      auto list = set->getArray("keys");
      if (!list) return Status::InvalidArgument("auth.token.jwks: no \"keys\" array");
      for (size_t i = 0; i < list->size(); ++i) {
        auto jwk = list->getObject(static_cast<unsigned>(i));
        PkeyPtr key = jwk ? KeyFromJwk(*jwk) : nullptr;
        auto signer = key ? SignerFor(key.get()) : nullptr;
        if (!signer) {
          return Status::InvalidArgument("auth.token.jwks: key " + std::to_string(i) +
                                         " is not an RSA or EC public key");
        }
        keys.trusted.push_back(std::move(signer));
      }
    } catch (const Poco::Exception& e) {
      return Status::InvalidArgument("auth.token.jwks: " + config.jwks +
                                     " is not a JSON Web Key Set: " + e.displayText());
    }
  }
  if (keys.trusted.empty()) return Status::InvalidArgument("auth.token: no trusted key");
  return auth;
}

std::string TokenAuthenticator::Challenge(const std::vector<Need>& needs,
                                          ChallengeReason reason) const {
  std::string scopes;
  for (const Need& need : needs) {
    std::string scope = need.kind == Need::Kind::kCatalog
                            ? "registry:catalog:*"
                            : "repository:" + need.repository + ":" +
                                  ActionNames(need.actions | (need.actions & kPush ? kPull : 0));
    scopes += (scopes.empty() ? "" : " ") + scope;
  }
  std::string challenge =
      "Bearer realm=\"" + config_.realm + "\",service=\"" + config_.service + "\"";
  if (!scopes.empty()) challenge += ",scope=\"" + scopes + "\"";
  if (reason == ChallengeReason::kInvalidCredentials) challenge += ",error=\"invalid_token\"";
  if (reason == ChallengeReason::kInsufficientScope) challenge += ",error=\"insufficient_scope\"";
  return challenge;
}

Authentication TokenAuthenticator::Authenticate(const Poco::Net::HTTPServerRequest& request) {
  const std::string header = request.get("Authorization", "");
  if (header.empty()) return {};
  if (header.size() < 7 || Poco::icompare(header.substr(0, 7), "bearer ") != 0) {
    return {.result = Authentication::Result::kRejected,
            .reason = "the Authorization header is not a Bearer token"};
  }
  const std::string jwt = Poco::trim(header.substr(7));
  const auto now = std::chrono::system_clock::now();
  const std::string key = Digest::Sha256Of(jwt).hex();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = accepted_.find(key);
    if (it != accepted_.end()) {
      if (now <= *it->second.valid_until) return it->second;
      accepted_.erase(it);
    }
  }
  Authentication result = Verify(jwt, now);
  if (result.result == Authentication::Result::kAccepted && result.valid_until) {
    std::lock_guard<std::mutex> lock(mu_);
    if (accepted_.size() >= kMaxRememberedTokens) accepted_.clear();
    accepted_[key] = result;
  }
  return result;
}

Authentication TokenAuthenticator::Verify(const std::string& jwt,
                                          std::chrono::system_clock::time_point now) const {
  auto reject = [](std::string why) {
    return Authentication{.result = Authentication::Result::kRejected, .reason = std::move(why)};
  };
  if (jwt.size() > kMaxTokenBytes) return reject("token too large");
  size_t dot = jwt.find('.');
  if (dot == std::string::npos || jwt.find('.', dot + 1) == std::string::npos)
    return reject("not a JWS compact token");
  auto header_json = DecodeBase64(jwt.substr(0, dot), true);
  if (!header_json) return reject("token header is not base64url");

  // Choose the keys that may have signed it: the x5c leaf if the header carries a chain
  // (accepted only when it leads to a trusted root), otherwise every trusted key.
  std::vector<std::shared_ptr<Poco::JWT::Signer>> candidates;
  try {
    Poco::JSON::Parser parser;
    auto header = parser.parse(*header_json).extract<Poco::JSON::Object::Ptr>();
    std::string alg = header->optValue<std::string>("alg", "");
    if (!RsaAlgorithms().count(alg) && !EcAlgorithms().count(alg))
      return reject("token algorithm '" + alg + "' is not accepted");
    if (auto chain = header->getArray("x5c"); chain && chain->size() > 0) {
      if (!keys_->roots) return reject("token has an x5c chain but no rootcertbundle is set");
      std::vector<X509Ptr> certs;
      for (size_t i = 0; i < chain->size() && i < 8; ++i) {
        auto der = DecodeBase64(chain->getElement<std::string>(static_cast<unsigned>(i)), false);
        if (!der) return reject("token x5c entry is not base64");
        const unsigned char* p = reinterpret_cast<const unsigned char*>(der->data());
        X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
        if (!cert) return reject("token x5c entry is not a certificate");
        certs.push_back(std::move(cert));
      }
      CertStackPtr rest(sk_X509_new_null());
      for (size_t i = 1; i < certs.size(); ++i) sk_X509_push(rest.get(), certs[i].get());
      std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX, X509_STORE_CTX_free>> ctx(
          X509_STORE_CTX_new());
      if (!ctx || X509_STORE_CTX_init(ctx.get(), keys_->roots.get(), certs[0].get(), rest.get()) != 1)
        return reject("cannot check the token's certificate chain");
      X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(now));
      if (X509_verify_cert(ctx.get()) != 1) {
        return reject(std::string("token certificate chain is not trusted: ") +
                      X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
      }
      EVP_PKEY* leaf_key = X509_get0_pubkey(certs[0].get());
      if (auto signer = leaf_key ? SignerFor(leaf_key) : nullptr) candidates.push_back(signer);
    } else {
      candidates = keys_->trusted;
    }
  } catch (const Poco::Exception&) {
    return reject("token header is not a JSON object");
  }

  Poco::JWT::Token token;
  bool verified = false;
  for (const auto& signer : candidates) {
    try {
      if (signer->tryVerify(jwt, token)) {
        verified = true;
        break;
      }
    } catch (const Poco::Exception&) {
      // Malformed parts or an algorithm of the other key type: try the next key.
    }
  }
  if (!verified) return reject("token signature does not verify with a trusted key");

  // Claims of the wrong type (a null action, a number for a name) reject the token rather
  // than escape as exceptions.
  try {
    return CheckClaims(token.payload(), now);
  } catch (const Poco::Exception& e) {
    return reject("token claims are malformed: " + e.displayText());
  }
}

Authentication TokenAuthenticator::CheckClaims(const Poco::JSON::Object& claims,
                                               std::chrono::system_clock::time_point now) const {
  auto reject = [](std::string why) {
    return Authentication{.result = Authentication::Result::kRejected, .reason = std::move(why)};
  };
  if (claims.optValue<std::string>("iss", "") != config_.issuer)
    return reject("token issuer is not " + config_.issuer);
  bool audience_ok = false;
  if (claims.has("aud")) {
    const Poco::Dynamic::Var& aud = claims.get("aud");
    if (aud.isString()) {
      audience_ok = aud.extract<std::string>() == config_.service;
    } else if (auto list = claims.getArray("aud")) {
      for (size_t i = 0; i < list->size() && !audience_ok; ++i) {
        const Poco::Dynamic::Var& entry = list->get(static_cast<unsigned>(i));
        audience_ok = entry.isString() && entry.extract<std::string>() == config_.service;
      }
    }
  }
  if (!audience_ok) return reject("token audience does not name " + config_.service);
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            now.time_since_epoch()).count();
  std::optional<int64_t> exp, nbf;
  if (!ReadNumericDate(claims, "exp", &exp) || !ReadNumericDate(claims, "nbf", &nbf))
    return reject("token exp and nbf must be numbers of seconds");
  if (!exp) return reject("token has no expiry");
  if (*exp + kLeewaySeconds < now_s) return reject("token expired");
  if (nbf && *nbf - kLeewaySeconds > now_s) return reject("token is not valid yet");

  Authentication accepted{.result = Authentication::Result::kAccepted};
  // Remembered until it expires, but re-checked at least daily (and the arithmetic stays in
  // range for tokens that claim to live for ages).
  accepted.valid_until = std::chrono::system_clock::time_point(
      std::chrono::seconds(std::min(*exp + kLeewaySeconds, now_s + 24 * 3600)));
  accepted.caller.kind = Caller::Kind::kToken;
  accepted.caller.name = claims.optValue<std::string>("sub", "");
  if (auto access = claims.getArray("access")) {
    for (size_t i = 0; i < access->size(); ++i) {
      auto entry = access->getObject(static_cast<unsigned>(i));
      if (!entry) continue;
      std::string type = entry->optValue<std::string>("type", "");
      std::string name = entry->optValue<std::string>("name", "");
      std::vector<std::string> actions;
      if (auto list = entry->getArray("actions")) {
        for (size_t j = 0; j < list->size(); ++j) {
          const Poco::Dynamic::Var& action = list->get(static_cast<unsigned>(j));
          if (action.isString()) actions.push_back(action.extract<std::string>());
        }
      }
      if (type == "repository") {
        accepted.caller.token_grants[name] |= ActionsFromNames(actions);
      } else if (type == "registry" && name == "catalog") {
        for (const auto& a : actions) accepted.caller.token_grants_catalog |= a == "*";
      }
    }
  }
  return accepted;
}

}  // namespace regfs::httpd
