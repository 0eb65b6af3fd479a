// What never changes once stored, by digest: the size of a blob's bytes and the bytes of
// small manifests. Content is addressed by its digest, so an entry can never be wrong, in
// this process or for any other replica's writes; whether a repository has the content is
// always checked separately (its link). A pull then costs the store one request for that
// check and none for the content's description. Bounded: cleared when full (entries are
// cheap to rebuild). Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "regfs/core/digest.h"

namespace regfs {

class ContentCache {
 public:
  // Manifests up to this size are kept, and at most this many bytes of them in all.
  static constexpr size_t kMaxManifestBytes = 64 * 1024;
  static constexpr size_t kMaxTotalManifestBytes = 32 * 1024 * 1024;
  static constexpr size_t kMaxBlobSizes = 200000;

  std::optional<uint64_t> BlobSize(const Digest& digest) const {
    std::shared_lock lock(mu_);
    auto it = blob_sizes_.find(digest.ToString());
    if (it == blob_sizes_.end()) return std::nullopt;
    return it->second;
  }
  void PutBlobSize(const Digest& digest, uint64_t size) {
    std::unique_lock lock(mu_);
    if (blob_sizes_.size() >= kMaxBlobSizes) blob_sizes_.clear();
    blob_sizes_[digest.ToString()] = size;
  }

  std::optional<std::string> ManifestBytes(const Digest& digest) const {
    std::shared_lock lock(mu_);
    auto it = manifests_.find(digest.ToString());
    if (it == manifests_.end()) return std::nullopt;
    return it->second;
  }
  // REQUIRES: `bytes` hash to `digest`.
  void PutManifestBytes(const Digest& digest, const std::string& bytes) {
    if (bytes.size() > kMaxManifestBytes) return;
    std::unique_lock lock(mu_);
    if (manifest_bytes_ + bytes.size() > kMaxTotalManifestBytes) {
      manifests_.clear();
      manifest_bytes_ = 0;
    }
    if (manifests_.emplace(digest.ToString(), bytes).second) manifest_bytes_ += bytes.size();
  }

 private:
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, uint64_t> blob_sizes_;      // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::string> manifests_;    // GUARDED_BY(mu_)
  size_t manifest_bytes_ = 0;                                  // GUARDED_BY(mu_)
};

}  // namespace regfs
