#include "regfs/core/names.h"

namespace regfs {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool IsValidComponent(std::string_view c) {
  if (c.empty() || !IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    // A separator run: ".", "_", "__", or one or more "-".
    size_t start = i;
    while (i < c.size() && !IsLowerAlnum(c[i])) ++i;
    std::string_view sep = c.substr(start, i - start);
    bool ok = sep == "." || sep == "_" || sep == "__" ||
              sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Status ValidateRepositoryName(std::string_view name) {
  if (name.empty()) {
    return Status::InvalidArgument("repository name is empty", Status::Reason::kNameInvalid);
  }
  if (name.size() > kMaxRepositoryNameLength) {
    return Status::InvalidArgument("repository name is longer than 255 characters",
                                   Status::Reason::kNameInvalid);
  }
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    std::string_view component = name.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!IsValidComponent(component)) {
      return Status::InvalidArgument(
          "invalid repository name: components must match [a-z0-9]+((.|_|__|-+)[a-z0-9]+)*",
          Status::Reason::kNameInvalid);
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status::Ok();
}

Status ValidateTag(std::string_view tag) {
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  bool ok = !tag.empty() && tag.size() <= kMaxTagLength && word(tag[0]);
  for (size_t i = 1; ok && i < tag.size(); ++i) {
    ok = word(tag[i]) || tag[i] == '.' || tag[i] == '-';
  }
  if (!ok) {
    return Status::InvalidArgument("invalid tag: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}",
                                   Status::Reason::kTagInvalid);
  }
  return Status::Ok();
}

bool LooksLikeDigest(std::string_view reference) {
  return reference.find(':') != std::string_view::npos;
}

}  // namespace regfs
