// Fuzzes bearer-token verification (auth.token): JWS parsing, the header (alg, x5c), the
// signature check, and the claims (iss, aud, exp, nbf, access).
//
// The first input byte picks the mode. Mode 0 verifies the rest of the input as a token
// string, so the parser meets arbitrary text. Mode 1 signs the rest of the input as the
// token's claims with the trusted key and verifies that, so the fuzzer reaches the claim
// checks behind the signature.
//
// Invariants: nothing but a correctly signed token with the configured issuer and audience
// and an expiry in the future is ever accepted; an accepted caller is a token caller whose
// grants hold only known actions; a raw token never verifies unless it carries the trusted
// signature (which random input cannot forge).
#include <Poco/Crypto/RSAKey.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JWT/Signer.h>
#include <Poco/JWT/Token.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "auth/token_authenticator.h"
#include "fuzz_check.h"

namespace {

using regfs::httpd::Authentication;
using regfs::httpd::TokenAuthenticator;

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));

std::string Base64Url(const std::vector<unsigned char>& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      out += kAlphabet[(acc >> (bits - 6)) & 63];
      bits -= 6;
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

struct Fixture {
  Poco::SharedPtr<Poco::Crypto::RSAKey> key;
  std::unique_ptr<Poco::JWT::Signer> signer;
  std::unique_ptr<TokenAuthenticator> auth;
};

// A fresh RSA key, trusted through a JWKS file written once per process.
Fixture& GetFixture() {
  static Fixture* fixture = [] {
    auto* f = new Fixture;
    f->key = new Poco::Crypto::RSAKey(Poco::Crypto::RSAKey::KL_2048, Poco::Crypto::RSAKey::EXP_LARGE);
    f->signer = std::make_unique<Poco::JWT::Signer>(f->key);
    std::string path = "/tmp/regfs-fuzz-token-" + std::to_string(::getpid()) + ".jwks";
    std::ofstream(path) << R"({"keys":[{"kty":"RSA","n":")" << Base64Url(f->key->modulus())
                        << R"(","e":")" << Base64Url(f->key->encryptionExponent()) << "\"}]}";
    regfs::Config::Token config;
    config.realm = "https://auth.example/token";
    config.service = "registry.example";
    config.issuer = "auth.example";
    config.jwks = path;
    auto created = TokenAuthenticator::Create(config);
    ::unlink(path.c_str());
    FUZZ_CHECK(created.ok());
    f->auth = std::move(*created);
    return f;
  }();
  return *fixture;
}

void CheckAccepted(const Authentication& result) {
  FUZZ_CHECK(result.caller.kind == regfs::httpd::Caller::Kind::kToken);
  for (const auto& [name, actions] : result.caller.token_grants) {
    FUZZ_CHECK((actions & ~regfs::httpd::kAllActions) == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Fixture& f = GetFixture();
  std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    Authentication result = f.auth->Verify(rest, kNow);
    // Random text cannot carry our signature.
    FUZZ_CHECK(result.result != Authentication::Result::kAccepted);
    return 0;
  }
  // The input as claims, signed by the trusted key.
  Poco::JSON::Object::Ptr claims;
  try {
    Poco::JSON::Parser parser;
    claims = parser.parse(rest).extract<Poco::JSON::Object::Ptr>();
  } catch (...) {
    return 0;
  }
  if (!claims) return 0;
  std::string jwt;
  try {
    Poco::JWT::Token token;
    for (const auto& [name, value] : *claims) token.payload().set(name, value);
    jwt = f.signer->sign(token, "RS256");
  } catch (...) {
    return 0;  // claims Poco's own serializer refuses
  }
  Authentication result = f.auth->Verify(jwt, kNow);
  if (result.result != Authentication::Result::kAccepted) return 0;
  CheckAccepted(result);
  FUZZ_CHECK(claims->optValue<std::string>("iss", "") == "auth.example");
  FUZZ_CHECK(claims->has("exp") && claims->has("aud"));
  return 0;
}
