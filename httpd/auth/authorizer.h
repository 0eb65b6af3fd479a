// Decides, for every request, whether its caller may do what it asks: the one place where
// authentication (who) meets the access rules (what). Immutable after start; thread-safe.
//
// Without an auth section and without an access section everyone may do everything (a
// registry on a trusted network). With auth but no access section every authenticated
// caller may do everything (registry:2's htpasswd behaviour), and token callers what their
// token's access claim grants. With an access section, its rules must grant the action
// too; token callers then need both their token and the rules.
#pragma once

#include <Poco/Net/HTTPServerRequest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/access.h"
#include "auth/access_policy.h"
#include "auth/authenticator.h"

namespace regfs::httpd {

class Authorizer {
 public:
  // `authenticator` may be null (no auth section); it must outlive the Authorizer.
  Authorizer(Authenticator* authenticator, std::optional<AccessPolicy> policy)
      : authenticator_(authenticator), policy_(std::move(policy)) {}

  struct Decision {
    enum class Outcome {
      kAllow,
      kChallenge,  // 401 with `challenge` as WWW-Authenticate
      kDeny,       // 403 DENIED
    };
    Outcome outcome = Outcome::kAllow;
    Caller caller;
    std::string challenge;
    std::string reason;  // for the log and the error message; never contains credentials
  };
  // Authenticates the request and checks that its caller may do all of `needs` (empty:
  // only authentication is needed, as for GET /v2/).
  Decision Decide(const Poco::Net::HTTPServerRequest& request, const std::vector<Need>& needs) const;

  // May `caller` do all of `actions` on `repository`? (Mount sources, catalog entries.)
  bool Permits(const Caller& caller, Actions actions, std::string_view repository) const;
  // Whether the catalog must be filtered by Permits(pull) for each entry.
  bool FiltersCatalog() const { return policy_.has_value(); }

 private:
  bool Permits(const Caller& caller, const Need& need) const;
  Authenticator* const authenticator_;
  const std::optional<AccessPolicy> policy_;
};

}  // namespace regfs::httpd
