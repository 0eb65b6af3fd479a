// The blob descriptor cache in this process's memory (storage.cache.blobdescriptor:
// inmemory): right for one server; with replicas, another's deletes would not reach it, so
// the server warns when it is configured with several.
#include <mutex>
#include <unordered_map>

#include "regfs/core/descriptor_cache.h"

namespace regfs {

namespace {

class MemoryDescriptorCache final : public DescriptorCache {
 public:
  explicit MemoryDescriptorCache(size_t max_entries) : max_entries_(max_entries) {}

  CacheLookup Lookup(const std::string& repo, Kind kind, const Digest& digest) override {
    std::lock_guard lock(mu_);
    ++stats_.requests;
    uint64_t gen = generations_[repo];
    CacheLookup out{.hit = std::nullopt, .token = std::to_string(gen)};
    auto it = entries_.find(Key(repo, kind, digest));
    if (it != entries_.end() && it->second.generation == gen) {
      out.hit = it->second.descriptor;
      ++stats_.hits;
    } else {
      ++stats_.misses;
    }
    return out;
  }

  void Store(const std::string& repo, Kind kind, const Digest& digest,
             const CachedDescriptor& descriptor, const std::string& token) override {
    if (token.empty()) return;
    std::lock_guard lock(mu_);
    if (token != std::to_string(generations_[repo])) return;  // a delete came in between
    // A bound, not an eviction policy: past it, start over (entries are cheap to refill).
    if (entries_.size() >= max_entries_) entries_.clear();
    entries_[Key(repo, kind, digest)] = {descriptor, generations_[repo]};
  }

  void OnChange(const ChangeEvent& event) override {
    if (event.kind != ChangeEvent::Kind::kBlobUnlinked &&
        event.kind != ChangeEvent::Kind::kManifestDeleted &&
        event.kind != ChangeEvent::Kind::kRepositoryDeleted) {
      return;
    }
    std::lock_guard lock(mu_);
    ++generations_[event.repository];
  }

  Status Probe() override { return Status::Ok(); }
  bool available() const override { return true; }
  Stats stats() const override {
    std::lock_guard lock(mu_);
    return stats_;
  }
  std::string Describe() const override { return "in memory"; }

 private:
  static std::string Key(const std::string& repo, Kind kind, const Digest& digest) {
    return repo + (kind == Kind::kBlob ? ":b:" : ":m:") + digest.ToString();
  }
  struct Entry {
    CachedDescriptor descriptor;
    uint64_t generation = 0;
  };

  const size_t max_entries_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, uint64_t> generations_;
  std::unordered_map<std::string, Entry> entries_;
  Stats stats_;
};

}  // namespace

std::shared_ptr<DescriptorCache> NewInMemoryDescriptorCache(size_t max_entries) {
  return std::make_shared<MemoryDescriptorCache>(max_entries);
}

}  // namespace regfs
