// Fuzzes the validation of client-chosen names: repository names, tags and references
// (manifests/<reference>, which is a tag or a digest).
//
// Invariants: a valid repository name is a safe relative storage path (no leading or
// trailing "/", no empty, "." or ".." components, no "..", no component starting with "_",
// only [a-z0-9._/-]) and is at most 255 bytes; every component is itself a valid name. A valid
// tag is never mistaken for a digest, holds no "/" and is never "." or "..". A reference is
// never both a valid tag and a valid digest.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "regfs/core/digest.h"
#include "regfs/core/names.h"

namespace {

void CheckRepositoryName(std::string_view name) {
  if (!regfs::ValidateRepositoryName(name).ok()) return;
  FUZZ_CHECK(!name.empty() && name.size() <= regfs::kMaxRepositoryNameLength);
  FUZZ_CHECK(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._/-") ==
             std::string_view::npos);
  FUZZ_CHECK(name.front() != '/' && name.back() != '/');
  FUZZ_CHECK(name.find("//") == std::string_view::npos);
  FUZZ_CHECK(name.find("..") == std::string_view::npos);
  size_t start = 0;
  while (true) {
    size_t slash = name.find('/', start);
    std::string_view c =
        name.substr(start, slash == std::string_view::npos ? slash : slash - start);
    FUZZ_CHECK(!c.empty() && c != "." && c != "..");
    FUZZ_CHECK(c.front() != '_' && c.front() != '.' && c.front() != '-');
    FUZZ_CHECK(regfs::ValidateRepositoryName(c).ok());
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  // Nesting a valid name under another stays valid while it fits.
  std::string nested = "library/" + std::string(name);
  if (nested.size() <= regfs::kMaxRepositoryNameLength) {
    FUZZ_CHECK(regfs::ValidateRepositoryName(nested).ok());
  }
}

void CheckReference(std::string_view ref) {
  bool tag = regfs::ValidateTag(ref).ok();
  bool digest = regfs::Digest::Parse(ref).ok();
  FUZZ_CHECK(!(tag && digest));
  if (digest) FUZZ_CHECK(regfs::LooksLikeDigest(ref));
  if (tag) {
    FUZZ_CHECK(!ref.empty() && ref.size() <= regfs::kMaxTagLength);
    FUZZ_CHECK(!regfs::LooksLikeDigest(ref));
    FUZZ_CHECK(ref.find('/') == std::string_view::npos);
    FUZZ_CHECK(ref != "." && ref != ".." && ref.front() != '.' && ref.front() != '-');
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckRepositoryName(input);
  CheckReference(input);
  // "name:tag" and "name@digest", the way clients write references, split where they would be.
  if (size_t at = input.rfind('@'); at != std::string_view::npos) {
    CheckRepositoryName(input.substr(0, at));
    CheckReference(input.substr(at + 1));
  } else if (size_t colon = input.rfind(':'); colon != std::string_view::npos) {
    CheckRepositoryName(input.substr(0, colon));
    CheckReference(input.substr(colon + 1));
  }
  return 0;
}
