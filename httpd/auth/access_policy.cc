#include "auth/access_policy.h"

#include <algorithm>

namespace regfs::httpd {

namespace {

std::vector<std::string> SplitComponents(std::string_view text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = text.find('/', start);
    parts.emplace_back(text.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) return parts;
    start = slash + 1;
  }
}

// '*' matches any run of characters; iterative with one backtrack point, O(n*m) at worst.
bool MatchesComponent(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// Dynamic programming over components, so several "**" cannot make matching exponential.
bool MatchesComponents(const std::vector<std::string>& pattern,
                       const std::vector<std::string>& name) {
  // can[i][j]: pattern[i..] matches name[j..]
  const size_t P = pattern.size(), N = name.size();
  std::vector<std::vector<char>> can(P + 1, std::vector<char>(N + 1, 0));
  can[P][N] = 1;
  for (size_t i = P; i-- > 0;) {
    for (size_t j = N + 1; j-- > 0;) {
      if (pattern[i] == "**") {
        // One component here, then either more of this "**" or the rest of the pattern.
        can[i][j] = j < N && (can[i][j + 1] || can[i + 1][j + 1]);
      } else {
        can[i][j] = j < N && MatchesComponent(pattern[i], name[j]) && can[i + 1][j + 1];
      }
    }
  }
  return can[0][0];
}

}  // namespace

bool MatchesRepositoryPattern(std::string_view pattern, std::string_view repository) {
  return MatchesComponents(SplitComponents(pattern), SplitComponents(repository));
}

Result<AccessPolicy> AccessPolicy::Compile(const Config::Access& access) {
  AccessPolicy policy;
  for (const auto& r : access.rules) {
    Rule rule;
    rule.pattern = SplitComponents(r.repository);
    for (const auto& c : rule.pattern) {
      if (c.empty()) {
        return Status::InvalidArgument("access rule pattern '" + r.repository +
                                       "' has an empty name component");
      }
      if (c.find("**") != std::string::npos && c != "**") {
        return Status::InvalidArgument("access rule pattern '" + r.repository +
                                       "': '**' must be a whole name component");
      }
    }
    rule.anonymous = ActionsFromNames(r.anonymous);
    rule.authenticated = ActionsFromNames(r.authenticated);
    for (const auto& [user, actions] : r.users) rule.users[user] |= ActionsFromNames(actions);
    for (const auto& [group, actions] : r.groups) {
      auto members = access.groups.find(group);
      if (members == access.groups.end()) continue;  // the config loader refuses this
      for (const auto& user : members->second) rule.users[user] |= ActionsFromNames(actions);
    }
    policy.rules_.push_back(std::move(rule));
  }
  return policy;
}

Actions AccessPolicy::Granted(const Caller& caller, std::string_view repository) const {
  const auto name = SplitComponents(repository);
  const bool anonymous = caller.kind == Caller::Kind::kAnonymous;
  Actions granted = 0;
  for (const auto& rule : rules_) {
    if (!MatchesComponents(rule.pattern, name)) continue;
    if (anonymous) {
      granted |= rule.anonymous;
      continue;
    }
    granted |= rule.authenticated;
    if (auto it = rule.users.find(caller.name); it != rule.users.end()) granted |= it->second;
  }
  return granted;
}

}  // namespace regfs::httpd
