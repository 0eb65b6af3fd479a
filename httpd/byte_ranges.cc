#include "byte_ranges.h"

#include <algorithm>

namespace regfs::httpd {

std::optional<ByteRange> ParseRange(const std::string& header, uint64_t size, bool* unsatisfiable) {
  *unsatisfiable = false;
  if (!header.starts_with("bytes=") || header.find(',') != std::string::npos) return std::nullopt;
  std::string spec = header.substr(6);
  auto dash = spec.find('-');
  if (dash == std::string::npos) return std::nullopt;
  std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 19 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (a.empty()) {
    if (!digits(b)) return std::nullopt;
    uint64_t suffix = std::stoull(b);
    if (suffix == 0 || size == 0) {
      *unsatisfiable = true;
      return std::nullopt;
    }
    return ByteRange{size - std::min(suffix, size), size - 1};
  }
  if (!digits(a) || (!b.empty() && !digits(b))) return std::nullopt;
  uint64_t first = std::stoull(a);
  uint64_t last = b.empty() ? size - 1 : std::stoull(b);
  if (!b.empty() && last < first) return std::nullopt;
  if (first >= size) {
    *unsatisfiable = true;
    return std::nullopt;
  }
  return ByteRange{first, std::min(last, size - 1)};
}

std::optional<ByteRange> ParseContentRange(std::string text) {
  if (text.starts_with("bytes ")) text = text.substr(6);
  if (text.starts_with("bytes=")) text = text.substr(6);
  auto slash = text.find('/');
  if (slash != std::string::npos) text = text.substr(0, slash);
  auto dash = text.find('-');
  if (dash == std::string::npos) return std::nullopt;
  std::string a = text.substr(0, dash), b = text.substr(dash + 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 19 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (!digits(a) || !digits(b)) return std::nullopt;
  uint64_t first = std::stoull(a), last = std::stoull(b);
  if (last < first) return std::nullopt;
  return ByteRange{first, last};
}

}  // namespace regfs::httpd
