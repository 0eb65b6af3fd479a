#include "auth/authorizer.h"

#include <algorithm>

namespace regfs::httpd {

bool Authorizer::Permits(const Caller& caller, Actions actions, std::string_view repository) const {
  if (caller.kind == Caller::Kind::kToken) {
    auto it = caller.token_grants.find(std::string(repository));
    if (it == caller.token_grants.end() || (it->second & actions) != actions) return false;
  }
  if (policy_) return (policy_->Granted(caller, repository) & actions) == actions;
  // No rules: authentication alone decides.
  return authenticator_ == nullptr || caller.kind != Caller::Kind::kAnonymous;
}

bool Authorizer::Permits(const Caller& caller, const Need& need) const {
  if (need.kind == Need::Kind::kRepository) return Permits(caller, need.actions, need.repository);
  // The catalog: a token must grant it; with rules it is filtered entry by entry instead.
  if (caller.kind == Caller::Kind::kToken && !caller.token_grants_catalog) return false;
  if (policy_) return true;
  return authenticator_ == nullptr || caller.kind != Caller::Kind::kAnonymous;
}

Authorizer::Decision Authorizer::Decide(const Poco::Net::HTTPServerRequest& request,
                                        const std::vector<Need>& needs) const {
  Decision d;
  if (authenticator_ == nullptr && !policy_) return d;
  Authentication auth;
  if (authenticator_ != nullptr) auth = authenticator_->Authenticate(request);
  if (auth.result == Authentication::Result::kRejected) {
    d.outcome = Decision::Outcome::kChallenge;
    d.challenge =
        authenticator_->Challenge(needs, Authenticator::ChallengeReason::kInvalidCredentials);
    d.reason = auth.reason;
    return d;
  }
  d.caller = auth.caller;
  const bool anonymous = d.caller.kind == Caller::Kind::kAnonymous;
  bool allowed = needs.empty()
                     ? authenticator_ == nullptr || !anonymous  // GET /v2/: who are you?
                     : std::all_of(needs.begin(), needs.end(),
                                   [&](const Need& n) { return Permits(d.caller, n); });
  if (allowed) return d;
  if (authenticator_ != nullptr && (anonymous || authenticator_->RechallengesWhenInsufficient())) {
    d.outcome = Decision::Outcome::kChallenge;
    d.challenge = authenticator_->Challenge(
        needs, anonymous ? Authenticator::ChallengeReason::kNoCredentials
                         : Authenticator::ChallengeReason::kInsufficientScope);
    d.reason = anonymous ? "authentication required" : "insufficient scope";
    return d;
  }
  d.outcome = Decision::Outcome::kDeny;
  d.reason = "access denied";
  return d;
}

}  // namespace regfs::httpd
