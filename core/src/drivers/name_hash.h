// The hash drivers name lock and lease files or objects by: FNV-1a 64, which every process
// and build computes alike (std::hash is not promised to).
#pragma once

#include <cstdint>
#include <string_view>

namespace regfs {

inline uint64_t Fnv1a64(std::string_view text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace regfs
