#include "auth/access.h"

namespace regfs::httpd {

Actions ActionsFromNames(const std::vector<std::string>& names) {
  Actions a = 0;
  for (const auto& n : names) {
    if (n == "pull") a |= kPull;
    if (n == "push") a |= kPush;
    if (n == "delete") a |= kDelete;
    if (n == "*") a |= kAllActions;
  }
  return a;
}

std::string ActionNames(Actions actions) {
  std::string out;
  for (auto [bit, name] : {std::pair{kPull, "pull"}, std::pair{kPush, "push"},
                           std::pair{kDelete, "delete"}}) {
    if (actions & bit) out += (out.empty() ? "" : ",") + std::string(name);
  }
  return out;
}

}  // namespace regfs::httpd
