// Authentication: who sent a request. One implementation per auth mode of the config
// (auth.htpasswd, auth.token); without an auth section every caller is anonymous.
#pragma once

#include <Poco/Net/HTTPServerRequest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "auth/access.h"

namespace regfs::httpd {

struct Authentication {
  enum class Result {
    kNoCredentials,  // no Authorization header of this mode's scheme: an anonymous caller
    kRejected,       // credentials present but wrong, expired or unverifiable
    kAccepted,
  };
  Result result = Result::kNoCredentials;
  Caller caller;
  std::string reason;  // for kRejected, a log line (never contains the credentials)
  // For kAccepted credentials that expire (tokens): the last moment they are accepted.
  std::optional<std::chrono::system_clock::time_point> valid_until;
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // Thread-safe.
  virtual Authentication Authenticate(const Poco::Net::HTTPServerRequest& request) = 0;
  // Why a 401 is sent, for the challenge's error parameter (RFC 6750 section 3.1).
  enum class ChallengeReason {
    kNoCredentials,
    kInvalidCredentials,  // rejected: expired, badly signed, wrong password
    kInsufficientScope,   // valid, but they grant too little
  };
  // The WWW-Authenticate value of a 401 for a request that needs `needs`.
  virtual std::string Challenge(const std::vector<Need>& needs, ChallengeReason reason) const = 0;
  // True when a caller whose credentials grant too little should get 401 and a challenge (a
  // token client then asks its token server for a wider scope) rather than 403.
  virtual bool RechallengesWhenInsufficient() const = 0;
};

}  // namespace regfs::httpd
