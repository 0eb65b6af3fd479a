// What the registry needs to know about a stored manifest without rereading it: media type,
// size, subject and artifact type. Manifests are content-addressed and never change, so an
// entry never goes stale; presence in a repository is checked separately (revision link).
// Bounded: cleared when full (entries are cheap to rebuild). Thread-safe.
#pragma once

#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "regfs/core/digest.h"

namespace regfs {

struct ManifestMetadata {
  std::string media_type;
  uint64_t size = 0;
  std::optional<Digest> subject;
  std::string artifact_type;
  std::map<std::string, std::string> annotations;
};

class ManifestMetadataCache {
 public:
  explicit ManifestMetadataCache(size_t capacity = 100000) : capacity_(capacity) {}

  std::optional<ManifestMetadata> Get(const Digest& digest) const {
    std::shared_lock lock(mu_);
    auto it = entries_.find(digest.ToString());
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }

  void Put(const Digest& digest, ManifestMetadata metadata) {
    std::unique_lock lock(mu_);
    if (entries_.size() >= capacity_) entries_.clear();
    entries_[digest.ToString()] = std::move(metadata);
  }

 private:
  mutable std::shared_mutex mu_;
  size_t capacity_;
  std::unordered_map<std::string, ManifestMetadata> entries_;  // GUARDED_BY(mu_)
};

}  // namespace regfs
