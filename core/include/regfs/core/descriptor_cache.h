// The blob descriptor cache (registry:2's storage.cache.blobdescriptor): what a repository
// holds, by digest, with its size (and for a manifest its media type), so a HEAD or a pull's
// existence check need not ask the storage. In process memory, or in Redis shared by every
// replica on the storage.
//
// Contract:
//  - Only answers for reads. Writers that must know the storage's truth (a manifest's
//    reference check, a mount's source) never consult it: an entry can be stale, in the
//    direction of "present", only after a deleting process died between its delete and
//    the invalidation, and then for at most the entry's TTL (RedisCacheOptions).
//  - Entries are immutable facts (a digest's size and type never change); what changes is
//    membership, and only by deletion. Every deletion in a repository (a DELETE, a garbage
//    collection's, a mount's rm) invalidates the repository's entries before the deleting
//    request answers: the cache is a ChangeListener the Registry calls synchronously.
//  - Invalidation is a generation bump, never a search: a reader that looked up before the
//    bump and stores after it stores into the old generation, which nobody reads again.
//  - A cache that cannot be reached is bypassed: lookups miss, the registry serves from
//    storage. An invalidation that could not be delivered is remembered (in the storage,
//    for every replica) and, once the cache answers again, everything cached before is
//    dropped at once (an epoch bump) before the cache is used again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "regfs/core/digest.h"
#include "regfs/core/registry.h"
#include "regfs/core/status.h"
#include "regfs/core/storage_driver.h"

namespace regfs {

struct CachedDescriptor {
  uint64_t size = 0;
  std::string media_type;  // manifests only
};

// A lookup's answer: the descriptor when cached, and the token a later Store needs (the
// generation the lookup saw), so what a reader stores after a concurrent delete is lost.
struct CacheLookup {
  std::optional<CachedDescriptor> hit;
  std::string token;  // empty when the cache is unreachable: do not store
};

class DescriptorCache : public ChangeListener {
 public:
  enum class Kind { kBlob, kManifest };

  // Counts for the metrics: lookups, hits, misses and errors (unreachable cache).
  struct Stats {
    uint64_t requests = 0, hits = 0, misses = 0, errors = 0;
  };

  virtual CacheLookup Lookup(const std::string& repo, Kind kind, const Digest& digest) = 0;
  // Records what the storage said after a miss. No-op when `token` is empty.
  virtual void Store(const std::string& repo, Kind kind, const Digest& digest,
                     const CachedDescriptor& descriptor, const std::string& token) = 0;
  // Checks the cache answers (and, when it comes back after a failure, drops what it held
  // before). OK when usable; the error says why not. For health checks, every few seconds.
  virtual Status Probe() = 0;
  virtual bool available() const = 0;
  virtual Stats stats() const = 0;
  virtual std::string Describe() const = 0;  // for logs: "redis 10.0.0.5:6379 db 0"
};

struct RedisCacheOptions {
  std::vector<std::string> addrs;  // host:port, tried in order
  std::string username;
  std::string password;  // never logged
  int db = 0;
  std::chrono::milliseconds dial_timeout{1000};
  std::chrono::milliseconds read_timeout{1000};
  std::chrono::milliseconds write_timeout{1000};
  int max_idle = 16;
  int max_active = 64;
  std::chrono::milliseconds idle_timeout{300'000};
  // How long entries live: a bound on memory, and on how long an entry stays after a
  // deleting process died between its storage delete and the invalidation (the one case
  // the cache can say "present" for what is gone; the bytes outlast it, since garbage
  // collection's default grace is an hour).
  std::chrono::seconds entry_ttl{600};
};

// In this process only: for a single server, or a test.
std::shared_ptr<DescriptorCache> NewInMemoryDescriptorCache(size_t max_entries = 100'000);

// Shared in Redis. `driver` holds the notes of undelivered invalidations (regfs/cache/).
// Never fails: a Redis that is down at start is bypassed until it answers.
std::shared_ptr<DescriptorCache> NewRedisDescriptorCache(RedisCacheOptions options,
                                                         std::shared_ptr<StorageDriver> driver,
                                                         std::function<void(const Status&)> on_error);

}  // namespace regfs
