#include "regfs/core/storage_driver.h"

namespace regfs {

bool IsValidDriverPath(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  if (path.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view c = path.substr(start, slash - start);
    if (c.empty() || c == "." || c == "..") return false;
    start = slash + 1;
  }
  return true;
}

}  // namespace regfs
