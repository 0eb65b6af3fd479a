// Fuzzes the byte-range parsers: a blob GET's Range header (ParseRange, against a blob size)
// and an upload chunk's Content-Range (ParseContentRange).
//
// Input: 8 bytes of blob size (little endian; the first byte's top bits pick a small, a
// medium or an arbitrary size so that sizes near the header's numbers come up often), then
// the header text.
//
// Invariants: a range ParseRange returns lies inside the blob (first <= last < size) and is
// never also "unsatisfiable"; a header with several ranges is ignored (served whole, not
// refused); a returned range (below 10^19), written back as "bytes=first-last", parses to itself. Both
// parsers agree with an independent model written here with std::from_chars; a Content-Range
// never has last < first and round-trips through "first-last".
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "byte_ranges.h"
#include "fuzz_check.h"

namespace {

using regfs::httpd::ByteRange;

// A decimal number of 1..19 digits and nothing else (what both parsers accept).
std::optional<uint64_t> Number(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

enum class Expect { kIgnore, kUnsatisfiable, kRange };

// RFC 9110 single-range semantics, as the server implements them.
Expect ModelRange(std::string_view h, uint64_t size, ByteRange* out) {
  if (h.substr(0, 6) != "bytes=" || h.find(',') != std::string_view::npos) return Expect::kIgnore;
  h.remove_prefix(6);
  size_t dash = h.find('-');
  if (dash == std::string_view::npos) return Expect::kIgnore;
  std::string_view a = h.substr(0, dash), b = h.substr(dash + 1);
  if (a.empty()) {
    auto n = Number(b);
    if (!n) return Expect::kIgnore;
    if (*n == 0 || size == 0) return Expect::kUnsatisfiable;
    *out = {*n >= size ? 0 : size - *n, size - 1};
    return Expect::kRange;
  }
  auto first = Number(a);
  if (!first) return Expect::kIgnore;
  std::optional<uint64_t> last;
  if (!b.empty()) {
    last = Number(b);
    if (!last || *last < *first) return Expect::kIgnore;
  }
  if (*first >= size) return Expect::kUnsatisfiable;
  *out = {*first, last && *last < size - 1 ? *last : size - 1};
  return Expect::kRange;
}

std::optional<ByteRange> ModelContentRange(std::string_view t) {
  if (t.substr(0, 6) == "bytes ") t.remove_prefix(6);
  if (t.substr(0, 6) == "bytes=") t.remove_prefix(6);
  t = t.substr(0, t.find('/'));
  size_t dash = t.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto first = Number(t.substr(0, dash)), last = Number(t.substr(dash + 1));
  if (!first || !last || *last < *first) return std::nullopt;
  return ByteRange{*first, *last};
}

void CheckRange(const std::string& header, uint64_t size) {
  bool unsatisfiable = true;
  auto r = regfs::httpd::ParseRange(header, size, &unsatisfiable);
  ByteRange want{};
  switch (ModelRange(header, size, &want)) {
    case Expect::kIgnore:
      FUZZ_CHECK(!r && !unsatisfiable);
      return;
    case Expect::kUnsatisfiable:
      FUZZ_CHECK(!r && unsatisfiable);
      return;
    case Expect::kRange:
      break;
  }
  FUZZ_CHECK(r && !unsatisfiable);
  FUZZ_CHECK(r->first == want.first && r->last == want.last);
  FUZZ_CHECK(r->first <= r->last && r->last < size);
  // Numbers are read up to 19 digits; blobs of 10^19 bytes and more are not worth a 20th.
  if (r->last >= 10'000'000'000'000'000'000ull) return;
  auto again = regfs::httpd::ParseRange(
      "bytes=" + std::to_string(r->first) + "-" + std::to_string(r->last), size, &unsatisfiable);
  FUZZ_CHECK(again && again->first == r->first && again->last == r->last);
}

void CheckContentRange(const std::string& text) {
  auto r = regfs::httpd::ParseContentRange(text);
  auto want = ModelContentRange(text);
  FUZZ_CHECK(r.has_value() == want.has_value());
  if (!r) return;
  FUZZ_CHECK(r->first == want->first && r->last == want->last && r->first <= r->last);
  auto again =
      regfs::httpd::ParseContentRange(std::to_string(r->first) + "-" + std::to_string(r->last));
  FUZZ_CHECK(again && again->first == r->first && again->last == r->last);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t blob_size = 0;
  std::memcpy(&blob_size, data, 8);
  switch (data[0] >> 6) {
    case 0: blob_size &= 0xff; break;        // tiny blobs: 0..255 bytes
    case 1: blob_size &= 0xffffffff; break;  // up to 4 GiB
    default: break;                          // anything up to 2^64-1
  }
  std::string header(reinterpret_cast<const char*>(data + 8), size - 8);
  CheckRange(header, blob_size);
  CheckContentRange(header);
  return 0;
}
