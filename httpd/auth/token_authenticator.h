// Docker's token authentication (auth.token), as registry:2 does it: a client without a
// token gets 401 and `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, fetches a
// JWT from the token server (realm) for that scope, and sends it as `Authorization: Bearer`.
//
// A token is accepted when its signature verifies (RS256/384/512 or ES256/384/512; never
// "none" or HMAC) with a trusted key: the public key of a certificate in rootcertbundle, a
// key of the jwks file, or the leaf of the token's own `x5c` chain when that chain leads to
// a rootcertbundle certificate; its `iss` is the configured issuer; its `aud` names the
// configured service; `exp` is in the future and `nbf` not (60 s leeway for clock skew).
// Its `access` claim ([{type, name, actions}]) becomes the caller's grants.
// Clients send the same token with every request: an accepted token is remembered (by its
// hash, until it expires) so the signature is checked once, not per request.
// Thread-safe; the keys are read once at start.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <Poco/JSON/Object.h>

#include "auth/authenticator.h"
#include "regfs/config/config.h"
#include "regfs/core/status.h"

namespace regfs::httpd {

class TokenAuthenticator final : public Authenticator {
 public:
  // Reads the certificates and keys; fails when none can be loaded.
  static Result<std::unique_ptr<TokenAuthenticator>> Create(const Config::Token& config);
  ~TokenAuthenticator() override;

  Authentication Authenticate(const Poco::Net::HTTPServerRequest& request) override;
  // Scopes as Docker clients ask for them: a push also asks for pull (a client pushing layers
  // checks which it already has), as registry:2 does.
  std::string Challenge(const std::vector<Need>& needs, ChallengeReason reason) const override;
  bool RechallengesWhenInsufficient() const override { return true; }

  // Verifies one serialized JWT at time `now`; exposed for tests and fuzzing.
  Authentication Verify(const std::string& jwt, std::chrono::system_clock::time_point now) const;

  size_t trusted_key_count() const;

 private:
  struct Keys;
  explicit TokenAuthenticator(const Config::Token& config);
  // The checks after the signature: issuer, audience, times, and the access claim.
  Authentication CheckClaims(const Poco::JSON::Object& claims,
                             std::chrono::system_clock::time_point now) const;
  const Config::Token config_;
  std::unique_ptr<Keys> keys_;
  std::mutex mu_;
  std::map<std::string, Authentication> accepted_;  // GUARDED_BY(mu_): by SHA-256 of the token
};

}  // namespace regfs::httpd
