// The libfuse low-level operations, each a thin translation between the kernel's requests
// and RegistryTree: node ids in, errno and attributes out, zero-copy reads for blobs.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "registry_tree.h"

namespace regfs::fused {

struct BridgeOptions {
  // Kernel cache lifetimes. Content-addressed attributes never change. Mutable names and
  // attributes (tags, folders) must show changes made by other processes: without a change
  // feed only short timeouts do that; with one (see change_notifier.h) the kernel is told
  // what changed and the timeout is only a safety net for writers that do not publish.
  double mutable_timeout_seconds = 0.5;
  double immutable_timeout_seconds = 3600;
  // Uploads grow with every chunk, and no event says so.
  double transient_timeout_seconds = 0.5;
  // The kernel is told of changes: let it keep directory listings and symlink targets too.
  bool cache_listings = false;
};

// Timeouts and caching when changes are invalidated explicitly.
inline constexpr double kMutableTimeoutWithFeedSeconds = 30;

// The operations table; `userdata` for fuse_session_new must point at a Bridge.
const fuse_lowlevel_ops& BridgeOperations();

// Listings being read without a directory handle. With a change feed the kernel opens
// directories by itself (no OPENDIR/RELEASEDIR round trips) and caches their listings; a
// listing longer than one readdir reply then spans several calls that share no handle, so
// the listing taken at offset 0 serves the calls that continue it, keeping offsets stable.
class ListingSnapshots {
 public:
  using Listing = std::shared_ptr<const std::vector<DirEntry>>;
  // The snapshot of `dir` for a readdir at `offset`: a fresh one at offset 0 (or when none
  // is kept), else the one that call took.
  template <typename ListFn>
  Result<Listing> For(Ino dir, off_t offset, ListFn list);
  // The listing was read to its end: forget it.
  void Done(Ino dir);

 private:
  struct Entry {
    Listing listing;
    std::chrono::steady_clock::time_point taken;
  };
  static constexpr size_t kMaxKept = 256;
  std::mutex mu_;
  std::map<Ino, Entry> kept_;  // GUARDED_BY(mu_)
};

// Handles given to the kernel (fi->fh) and not yet released. They are owned here, so those
// still open when the mount goes away (a file open at SIGTERM) are freed with the Bridge
// instead of leaking. The fh is the handle's address: reads use it without a lookup.
class OpenHandles {
 public:
  struct Handle {
    virtual ~Handle() = default;
  };
  uint64_t Add(std::unique_ptr<Handle> handle) {
    auto fh = reinterpret_cast<uint64_t>(handle.get());
    std::lock_guard<std::mutex> lock(mu_);
    open_[fh] = std::move(handle);
    return fh;
  }
  void Release(uint64_t fh) {
    std::unique_ptr<Handle> released;  // destroyed outside the lock (it may close a file)
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = open_.find(fh); it != open_.end()) {
      released = std::move(it->second);
      open_.erase(it);
    }
  }

 private:
  std::mutex mu_;
  std::unordered_map<uint64_t, std::unique_ptr<Handle>> open_;  // GUARDED_BY(mu_)
};

struct Bridge {
  RegistryTree& tree;
  BridgeOptions options;
  // Set in init when the kernel opens directories itself (with cache_listings only).
  std::atomic<bool> kernel_opens_directories{false};
  ListingSnapshots snapshots{};
  OpenHandles handles{};
};

template <typename ListFn>
Result<ListingSnapshots::Listing> ListingSnapshots::For(Ino dir, off_t offset, ListFn list) {
  const auto now = std::chrono::steady_clock::now();
  if (offset > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = kept_.find(dir);
    if (it != kept_.end()) return it->second.listing;
  }
  auto entries = list();  // outside the lock: it reads storage
  if (!entries.ok()) return entries.status();
  Listing listing = std::make_shared<const std::vector<DirEntry>>(std::move(*entries));
  std::lock_guard<std::mutex> lock(mu_);
  if (kept_.size() >= kMaxKept) {
    // Listings abandoned midway (a reader that stopped early): drop those older than a minute,
    // or all of them if that frees nothing.
    std::erase_if(kept_, [&](const auto& kv) { return now - kv.second.taken > std::chrono::minutes(1); });
    if (kept_.size() >= kMaxKept) kept_.clear();
  }
  kept_[dir] = Entry{listing, now};
  return listing;
}

inline void ListingSnapshots::Done(Ino dir) {
  std::lock_guard<std::mutex> lock(mu_);
  kept_.erase(dir);
}

}  // namespace regfs::fused
