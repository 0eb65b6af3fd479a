// The vocabulary of authorization: what a request needs (actions on repositories, or the
// catalog) and who is asking. Shared by the authenticators, the access policy and handlers.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace regfs::httpd {

// Actions as a bit set, so "pull,push" is one value.
using Actions = uint8_t;
constexpr Actions kPull = 1;
constexpr Actions kPush = 2;
constexpr Actions kDelete = 4;
constexpr Actions kAllActions = kPull | kPush | kDelete;

// "pull" -> kPull, "*" -> kAllActions; unknown names add nothing.
Actions ActionsFromNames(const std::vector<std::string>& names);
// kPull | kPush -> "pull,push" (the order of Docker's scopes).
std::string ActionNames(Actions actions);

// One thing a request needs: actions on a repository, or (catalog) the repository list.
struct Need {
  enum class Kind { kRepository, kCatalog };
  Kind kind = Kind::kRepository;
  std::string repository;
  Actions actions = 0;
};

// Who sent a request, once authenticated.
struct Caller {
  enum class Kind {
    kAnonymous,  // no credentials at all
    kUser,       // a user of the htpasswd file
    kToken,      // the subject of a verified bearer token
  };
  Kind kind = Kind::kAnonymous;
  std::string name;  // user or token subject; empty when anonymous
  // For kToken: what the token's access claim grants, by repository name (exact names, as
  // registry:2 issues them), and whether it grants the catalog.
  std::map<std::string, Actions> token_grants;
  bool token_grants_catalog = false;
};

}  // namespace regfs::httpd
