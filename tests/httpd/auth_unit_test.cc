// Unit tests of authorization without a server: repository patterns, the access policy,
// the authorizer's decisions, and the JWT checks of token authentication. Tokens are signed
// here with Poco's JWT signer and keys made by the openssl command; tokens from an
// independent issuer (Node.js) are tested end to end by tests/e2e/token_auth.sh.
#include <Poco/Crypto/ECKey.h>
#include <Poco/Crypto/RSAKey.h>
#include <Poco/JSON/Array.h>
#include <Poco/JWT/Signer.h>
#include <Poco/JWT/Token.h>
#include <Poco/Net/HTTPRequest.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "auth/access_policy.h"
#include "auth/authorizer.h"
#include "auth/token_authenticator.h"

namespace regfs::httpd {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

TEST(RepositoryPatternTest, StarStaysWithinOneComponent) {
  EXPECT_TRUE(MatchesRepositoryPattern("team/*", "team/app"));
  EXPECT_FALSE(MatchesRepositoryPattern("team/*", "team/app/x"));
  EXPECT_FALSE(MatchesRepositoryPattern("team/*", "team"));
  EXPECT_FALSE(MatchesRepositoryPattern("team/*", "teams/app"));
  EXPECT_TRUE(MatchesRepositoryPattern("team/app-*", "team/app-1"));
  EXPECT_FALSE(MatchesRepositoryPattern("team/app-*", "team/web-1"));
  EXPECT_TRUE(MatchesRepositoryPattern("*/app", "x/app"));
  EXPECT_TRUE(MatchesRepositoryPattern("library/alpine", "library/alpine"));
  EXPECT_FALSE(MatchesRepositoryPattern("library/alpine", "library/alpine2"));
}

TEST(RepositoryPatternTest, DoubleStarSpansComponents) {
  EXPECT_TRUE(MatchesRepositoryPattern("public/**", "public/x"));
  EXPECT_TRUE(MatchesRepositoryPattern("public/**", "public/x/y/z"));
  EXPECT_FALSE(MatchesRepositoryPattern("public/**", "public"));
  EXPECT_FALSE(MatchesRepositoryPattern("public/**", "publicity/x"));
  EXPECT_TRUE(MatchesRepositoryPattern("**", "a"));
  EXPECT_TRUE(MatchesRepositoryPattern("**", "a/b/c"));
  EXPECT_TRUE(MatchesRepositoryPattern("**/cache", "a/b/cache"));
  EXPECT_FALSE(MatchesRepositoryPattern("**/cache", "cache"));
  EXPECT_TRUE(MatchesRepositoryPattern("a/**/z", "a/b/c/z"));
  // Many "**" stay fast (dynamic programming, not backtracking).
  std::string long_name = "a";
  for (int i = 0; i < 100; ++i) long_name += "/a";
  EXPECT_FALSE(MatchesRepositoryPattern("**/**/**/**/**/**/**/**/b", long_name));
}

Config::Access SampleAccess() {
  Config::Access access;
  access.enabled = true;
  access.groups["developers"] = {"alice", "bob"};
  access.rules.push_back({.repository = "public/**", .anonymous = {"pull"}, .authenticated = {"pull"}});
  access.rules.push_back({.repository = "team/*", .groups = {{"developers", {"pull", "push"}}}});
  access.rules.push_back({.repository = "**", .users = {{"admin", {"*"}}}});
  return access;
}

Caller User(const std::string& name) { return {.kind = Caller::Kind::kUser, .name = name}; }

TEST(AccessPolicyTest, GrantsTheUnionOfMatchingRules) {
  auto policy = AccessPolicy::Compile(SampleAccess());
  ASSERT_TRUE(policy.ok());
  const Caller anonymous;
  EXPECT_EQ(policy->Granted(anonymous, "public/x"), kPull);
  EXPECT_EQ(policy->Granted(anonymous, "team/app"), 0);
  EXPECT_EQ(policy->Granted(User("carol"), "public/x"), kPull);
  EXPECT_EQ(policy->Granted(User("carol"), "team/app"), 0);
  EXPECT_EQ(policy->Granted(User("alice"), "team/app"), kPull | kPush);
  EXPECT_EQ(policy->Granted(User("alice"), "team/app/deep"), 0);
  EXPECT_EQ(policy->Granted(User("bob"), "public/x"), kPull);
  EXPECT_EQ(policy->Granted(User("admin"), "team/app"), kAllActions);
  // A user named like a group gets nothing from the group.
  EXPECT_EQ(policy->Granted(User("developers"), "team/app"), 0);
}

TEST(AccessPolicyTest, RefusesPatternsThatCannotMatch) {
  for (const char* pattern : {"team//x", "/team", "team/", "team/a**", "**x"}) {
    Config::Access access;
    access.rules.push_back({.repository = pattern, .anonymous = {"pull"}});
    EXPECT_FALSE(AccessPolicy::Compile(access).ok()) << pattern;
  }
}

// ---------------------------------------------------------------- tokens

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("regfs-token-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    // Two issuers' keys: the trusted one (in the bundle) and a stranger's.
    ASSERT_EQ(Run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=issuer "
                  "-keyout rsa.key -out rsa.crt >/dev/null"), 0);
    ASSERT_EQ(Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
                  "-subj /CN=issuer-ec -keyout ec.key -out ec.crt >/dev/null"), 0);
    ASSERT_EQ(Run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=stranger "
                  "-keyout stranger.key -out stranger.crt >/dev/null"), 0);
    ASSERT_EQ(Run("cat rsa.crt ec.crt > bundle.crt"), 0);
    config_.realm = "https://auth.example/token";
    config_.service = "registry.example";
    config_.issuer = "auth.example";
    config_.root_cert_bundle = (dir_ / "bundle.crt").string();
  }
  void TearDown() override { if (!std::getenv("KEEP")) fs::remove_all(dir_); }

  int Run(const std::string& command) {
    return std::system(("cd " + dir_.string() + " && (" + command + ") 2>/dev/null").c_str());
  }
  Poco::JWT::Signer RsaSigner(const std::string& name) {
    return Poco::JWT::Signer(Poco::SharedPtr<Poco::Crypto::RSAKey>(new Poco::Crypto::RSAKey(
        "", (dir_ / (name + ".key")).string())));
  }
  Poco::JWT::Signer EcSigner() {
    return Poco::JWT::Signer(Poco::SharedPtr<Poco::Crypto::ECKey>(
        new Poco::Crypto::ECKey("", (dir_ / "ec.key").string())));
  }
  // A token as the issuer makes it: pull,push on team/app, valid for five minutes.
  Poco::JWT::Token GoodToken() {
    Poco::JWT::Token token;
    token.setIssuer(config_.issuer);
    token.setAudience(config_.service);
    token.setSubject("alice");
    auto now = Clock::now();
    token.payload().set("exp", Clock::to_time_t(now + std::chrono::minutes(5)));
    token.payload().set("nbf", Clock::to_time_t(now - std::chrono::seconds(1)));
    token.payload().set("iat", Clock::to_time_t(now));
    Poco::JSON::Array::Ptr access = new Poco::JSON::Array;
    Poco::JSON::Object::Ptr repo = new Poco::JSON::Object;
    repo->set("type", "repository");
    repo->set("name", "team/app");
    Poco::JSON::Array::Ptr actions = new Poco::JSON::Array;
    actions->add("pull");
    actions->add("push");
    repo->set("actions", actions);
    access->add(repo);
    token.payload().set("access", access);
    return token;
  }
  std::unique_ptr<TokenAuthenticator> Authenticator() {
    auto auth = TokenAuthenticator::Create(config_);
    EXPECT_TRUE(auth.ok()) << auth.status().ToString();
    return auth.ok() ? std::move(*auth) : nullptr;
  }

  fs::path dir_;
  Config::Token config_;
};

TEST_F(TokenTest, AcceptsRs256AndEs256FromTheBundle) {
  auto auth = Authenticator();
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(auth->trusted_key_count(), 2u);
  auto token = GoodToken();
  auto rsa = auth->Verify(RsaSigner("rsa").sign(token, "RS256"), Clock::now());
  ASSERT_EQ(rsa.result, Authentication::Result::kAccepted) << rsa.reason;
  EXPECT_EQ(rsa.caller.kind, Caller::Kind::kToken);
  EXPECT_EQ(rsa.caller.name, "alice");
  EXPECT_EQ(rsa.caller.token_grants.at("team/app"), kPull | kPush);
  EXPECT_FALSE(rsa.caller.token_grants_catalog);
  token = GoodToken();
  auto ec = auth->Verify(EcSigner().sign(token, "ES256"), Clock::now());
  EXPECT_EQ(ec.result, Authentication::Result::kAccepted) << ec.reason;
}

TEST_F(TokenTest, RefusesWhatTheIssuerDidNotSign) {
  auto auth = Authenticator();
  ASSERT_NE(auth, nullptr);
  auto expect_rejected = [&](const std::string& jwt, const std::string& why) {
    auto result = auth->Verify(jwt, Clock::now());
    EXPECT_EQ(result.result, Authentication::Result::kRejected) << why;
    EXPECT_TRUE(result.caller.token_grants.empty()) << why;
  };
  auto token = GoodToken();
  expect_rejected(RsaSigner("stranger").sign(token, "RS256"), "unknown key");
  token = GoodToken();
  Poco::JWT::Signer hmac("secret");
  expect_rejected(hmac.sign(token, "HS256"), "HMAC");
  // alg "none": header {"alg":"none"}, no signature.
  token = GoodToken();
  std::string signed_jwt = RsaSigner("rsa").sign(token, "RS256");
  std::string payload = signed_jwt.substr(signed_jwt.find('.') + 1);
  payload = payload.substr(0, payload.find('.'));
  expect_rejected("eyJhbGciOiJub25lIn0." + payload + ".", "alg none");
  // A payload swapped under a valid signature.
  auto other = GoodToken();
  other.setSubject("mallory");
  std::string other_jwt = RsaSigner("rsa").sign(other, "RS256");
  std::string forged = signed_jwt.substr(0, signed_jwt.find('.') + 1) +
                       other_jwt.substr(other_jwt.find('.') + 1, other_jwt.rfind('.') -
                                                                      other_jwt.find('.') - 1) +
                       signed_jwt.substr(signed_jwt.rfind('.'));
  expect_rejected(forged, "payload swapped");
  for (const char* junk : {"", ".", "..", "a.b.c", "eyJ9.e30.", "x"}) expect_rejected(junk, junk);
  expect_rejected(std::string(20000, 'a') + ".b.c", "huge");
}

TEST_F(TokenTest, ChecksIssuerAudienceAndTimes) {
  auto auth = Authenticator();
  ASSERT_NE(auth, nullptr);
  auto sign = [&](Poco::JWT::Token token) { return RsaSigner("rsa").sign(token, "RS256"); };
  auto now = Clock::now();
  auto verdict = [&](const std::string& jwt) { return auth->Verify(jwt, now).result; };
  using R = Authentication::Result;

  auto t = GoodToken();
  t.setIssuer("someone.else");
  EXPECT_EQ(verdict(sign(t)), R::kRejected) << "issuer";
  t = GoodToken();
  t.setAudience("another.registry");
  EXPECT_EQ(verdict(sign(t)), R::kRejected) << "audience";
  t = GoodToken();
  t.setAudience(std::vector<std::string>{"another.registry", config_.service});
  EXPECT_EQ(verdict(sign(t)), R::kAccepted) << "audience list naming us";
  t = GoodToken();
  t.payload().set("exp", Clock::to_time_t(now - std::chrono::minutes(5)));
  EXPECT_EQ(verdict(sign(t)), R::kRejected) << "expired";
  t = GoodToken();
  t.payload().remove("exp");
  EXPECT_EQ(verdict(sign(t)), R::kRejected) << "no expiry";
  t = GoodToken();
  t.payload().set("nbf", Clock::to_time_t(now + std::chrono::minutes(5)));
  EXPECT_EQ(verdict(sign(t)), R::kRejected) << "not yet valid";
  t = GoodToken();
  t.payload().set("nbf", Clock::to_time_t(now + std::chrono::seconds(30)));
  EXPECT_EQ(verdict(sign(t)), R::kAccepted) << "clock skew within the leeway";
  // RFC 7519 NumericDates are JSON numbers: a string is a defect, not a date to convert.
  t = GoodToken();
  t.payload().set("exp", std::to_string(Clock::to_time_t(now + std::chrono::minutes(5))));
  EXPECT_EQ(verdict(sign(t)), R::kRejected) << "exp as a string";
  t = GoodToken();
  t.payload().set("nbf", std::string("soon"));
  EXPECT_EQ(verdict(sign(t)), R::kRejected) << "nbf as a string";
}

TEST_F(TokenTest, TrustsAJsonWebKeySet) {
  // The stranger's key becomes trusted through a JWKS built from its modulus and exponent.
  ASSERT_EQ(Run("openssl rsa -in stranger.key -noout -modulus | cut -d= -f2 | xxd -r -p | "
                "basenc --base64url -w0 | tr -d = > n.txt"), 0);
  std::ifstream n_file(dir_ / "n.txt");
  std::string n((std::istreambuf_iterator<char>(n_file)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(n.empty());
  std::ofstream(dir_ / "jwks.json") << R"({"keys":[{"kty":"RSA","kid":"k1","e":"AQAB","n":")"
                                    << n << "\"}]}";
  config_.root_cert_bundle.clear();
  config_.jwks = (dir_ / "jwks.json").string();
  auto auth = Authenticator();
  ASSERT_NE(auth, nullptr);
  auto token = GoodToken();
  auto result = auth->Verify(RsaSigner("stranger").sign(token, "RS256"), Clock::now());
  EXPECT_EQ(result.result, Authentication::Result::kAccepted) << result.reason;
  token = GoodToken();
  EXPECT_EQ(auth->Verify(RsaSigner("rsa").sign(token, "RS256"), Clock::now()).result,
            Authentication::Result::kRejected);
}

TEST_F(TokenTest, ChallengeNamesTheScopes) {
  auto auth = Authenticator();
  ASSERT_NE(auth, nullptr);
  using Reason = ::regfs::httpd::Authenticator::ChallengeReason;
  EXPECT_EQ(auth->Challenge({}, Reason::kNoCredentials),
            "Bearer realm=\"https://auth.example/token\",service=\"registry.example\"");
  EXPECT_EQ(auth->Challenge({{.repository = "team/app", .actions = kPush}},
                            Reason::kInsufficientScope),
            "Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
            "scope=\"repository:team/app:pull,push\",error=\"insufficient_scope\"");
  EXPECT_EQ(auth->Challenge({{.kind = Need::Kind::kCatalog}}, Reason::kNoCredentials),
            "Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
            "scope=\"registry:catalog:*\"");
  EXPECT_EQ(auth->Challenge({{.repository = "a", .actions = kDelete}}, Reason::kInvalidCredentials),
            "Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
            "scope=\"repository:a:delete\",error=\"invalid_token\"");
}

// ---------------------------------------------------------------- decisions

TEST_F(TokenTest, AuthorizerPermits) {
  auto auth = Authenticator();
  ASSERT_NE(auth, nullptr);
  Authorizer authorizer(auth.get(), std::nullopt);
  auto token = GoodToken();
  std::string jwt = RsaSigner("rsa").sign(token, "RS256");
  Caller caller = auth->Verify(jwt, Clock::now()).caller;
  EXPECT_TRUE(authorizer.Permits(caller, kPull | kPush, "team/app"));
  EXPECT_FALSE(authorizer.Permits(caller, kDelete, "team/app"));
  EXPECT_FALSE(authorizer.Permits(caller, kPull, "team/other"));
  EXPECT_FALSE(authorizer.Permits(Caller{}, kPull, "team/app"));

  // With rules, a token needs the rules' grant too.
  auto policy = AccessPolicy::Compile(SampleAccess());
  ASSERT_TRUE(policy.ok());
  Authorizer both(auth.get(), *policy);
  EXPECT_TRUE(both.Permits(caller, kPull | kPush, "team/app"));  // alice is a developer
  caller.name = "carol";
  EXPECT_FALSE(both.Permits(caller, kPush, "team/app"));  // the token grants, the rules don't
  caller.name = "admin";
  EXPECT_FALSE(both.Permits(caller, kDelete, "team/app"));  // the rules grant, the token doesn't
  EXPECT_TRUE(both.FiltersCatalog());
}

}  // namespace
}  // namespace regfs::httpd
