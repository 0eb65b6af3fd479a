// The `access` section of the configuration (a regfs extension), compiled: rules that grant
// users, groups, every authenticated caller, or anonymous callers actions on repositories
// whose names match a pattern. A caller may do what any matching rule grants; nothing else.
//
// Patterns are matched per name component ('/'-separated): '*' matches any characters
// within one component ("team/*" matches team/app, not team/app/x; "app-*" matches app-1),
// and a component "**" matches one or more whole components ("public/**" matches public/x
// and public/x/y, not public itself; "**" matches every repository).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "auth/access.h"
#include "regfs/config/config.h"
#include "regfs/core/status.h"

namespace regfs::httpd {

class AccessPolicy {
 public:
  // Fails with InvalidArgument on a pattern that could never match a repository name.
  static Result<AccessPolicy> Compile(const Config::Access& access);

  // The actions the rules grant `caller` on `repository`.
  Actions Granted(const Caller& caller, std::string_view repository) const;

 private:
  struct Rule {
    std::vector<std::string> pattern;  // components
    Actions anonymous = 0;
    Actions authenticated = 0;
    std::map<std::string, Actions, std::less<>> users;  // groups expanded to their members
  };
  std::vector<Rule> rules_;
};

// Exposed for tests.
bool MatchesRepositoryPattern(std::string_view pattern, std::string_view repository);

}  // namespace regfs::httpd
