// Content digests ("sha256:<64 hex>") and a streaming hasher.
//
// A Digest is always valid once constructed (use Digest::Parse); its text form is canonical
// (lower-case hex), so it is safe to put in storage paths. DigestHasher computes a digest
// incrementally while bytes stream through, so no blob is ever held in memory to be hashed.
// Digest is a value type; a DigestHasher belongs to one thread at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "regfs/core/status.h"

namespace regfs {

class Digest {
 public:
  // Parses "<algorithm>:<hex>". Supported algorithms: sha256 (64 hex) and sha512 (128 hex).
  // Fails with InvalidArgument / kDigestInvalid on anything else, upper-case hex included.
  static Result<Digest> Parse(std::string_view text);
  // Computes the sha256 digest of a small in-memory buffer (manifests, link contents).
  static Digest Sha256Of(std::string_view bytes);

  const std::string& algorithm() const { return algorithm_; }
  const std::string& hex() const { return hex_; }
  std::string ToString() const { return algorithm_ + ":" + hex_; }

  friend bool operator==(const Digest& a, const Digest& b) {
    return a.algorithm_ == b.algorithm_ && a.hex_ == b.hex_;
  }
  friend bool operator<(const Digest& a, const Digest& b) {
    return a.algorithm_ != b.algorithm_ ? a.algorithm_ < b.algorithm_ : a.hex_ < b.hex_;
  }

 private:
  Digest(std::string algorithm, std::string hex)
      : algorithm_(std::move(algorithm)), hex_(std::move(hex)) {}
  std::string algorithm_;
  std::string hex_;
};

// Lower-case hex of raw bytes (a hash or MAC), as digests and signatures are written.
std::string LowerHex(std::string_view bytes);

// Incremental hashing with OpenSSL. Copyable state lets an upload keep a hasher between
// chunks and hand a snapshot to whoever finishes it.
class DigestHasher {
 public:
  // REQUIRES: algorithm is "sha256" or "sha512" (as validated by Digest::Parse).
  explicit DigestHasher(const std::string& algorithm = "sha256");
  ~DigestHasher();
  DigestHasher(const DigestHasher& other);
  DigestHasher& operator=(const DigestHasher& other);
  DigestHasher(DigestHasher&&) noexcept;
  DigestHasher& operator=(DigestHasher&&) noexcept;

  void Update(const void* data, size_t size);
  // Returns the digest of everything fed so far; the hasher can keep going afterwards.
  Digest Current() const;
  uint64_t bytes_hashed() const { return bytes_; }
  const std::string& algorithm() const { return algorithm_; }

  // The state, in the format of Go's crypto/sha256 and crypto/sha512 MarshalBinary: what
  // registry:2 stores under _uploads/<id>/hashstates/<algorithm>/<offset>, so any process,
  // regfs or registry:2, continues an upload's hash without reading its bytes again.
  std::string SaveState() const;
  // The hasher SaveState() wrote `state` from; nullopt when `state` is not one of `algorithm`.
  static std::optional<DigestHasher> RestoreState(const std::string& algorithm,
                                                  std::string_view state);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
  std::string algorithm_;
  uint64_t bytes_ = 0;
};

// True when a and b are equal, taking time independent of where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// HMAC-SHA256 of `data` under `key`: the raw 32 bytes (SigV4 signing, webhook signatures).
std::string HmacSha256(std::string_view key, std::string_view data);

}  // namespace regfs
