// Fuzzes digest parsing and the streaming hasher.
//
// Invariants: a parsed digest is canonical (its string is exactly the input and re-parses to
// an equal digest), names a supported algorithm with the right number of lower-case hex
// digits, and is safe as a path component. Hashing in two chunks equals hashing at once, and
// the hasher's digest always parses. ConstantTimeEquals agrees with ==.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "regfs/core/digest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  auto parsed = regfs::Digest::Parse(input);
  if (parsed.ok()) {
    const regfs::Digest& d = *parsed;
    FUZZ_CHECK(d.ToString() == input);
    auto again = regfs::Digest::Parse(d.ToString());
    FUZZ_CHECK(again.ok() && *again == d && !(*again < d) && !(d < *again));
    FUZZ_CHECK((d.algorithm() == "sha256" && d.hex().size() == 64) ||
               (d.algorithm() == "sha512" && d.hex().size() == 128));
    FUZZ_CHECK(d.hex().find_first_not_of("0123456789abcdef") == std::string::npos);
    FUZZ_CHECK(d.ToString().find('/') == std::string::npos);
  }

  // Hash in two chunks, split where the first byte says.
  size_t split = size == 0 ? 0 : data[0] % (size + 1);
  for (const char* alg : {"sha256", "sha512"}) {
    regfs::DigestHasher chunked(alg);
    chunked.Update(data, split);
    regfs::DigestHasher copy = chunked;  // an upload's hasher is copied between chunks
    copy.Update(data + split, size - split);
    FUZZ_CHECK(copy.bytes_hashed() == size);
    regfs::Digest digest = copy.Current();
    FUZZ_CHECK(digest.algorithm() == alg);
    FUZZ_CHECK(regfs::Digest::Parse(digest.ToString()).ok());
    if (std::string_view(alg) == "sha256") FUZZ_CHECK(digest == regfs::Digest::Sha256Of(input));
  }

  std::string_view a = input.substr(0, split), b = input.substr(split);
  FUZZ_CHECK(regfs::ConstantTimeEquals(a, b) == (a == b));
  FUZZ_CHECK(regfs::ConstantTimeEquals(a, a));
  return 0;
}
