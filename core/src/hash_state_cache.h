// Hash states of uploads in progress, kept between chunks so that each byte is hashed once.
//
// Only a cache: the upload's bytes in storage are the truth, and a missing or stale entry
// (another replica received the last chunk, or this process restarted) is rebuilt from the
// state saved in the upload's hashstates/ folder, or by rehashing those bytes. Bounded; evicts the oldest entry. Thread-safe.
#pragma once

#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "regfs/core/digest.h"

namespace regfs {

class HashStateCache {
 public:
  explicit HashStateCache(size_t capacity = 4096) : capacity_(capacity) {}

  // The state after exactly `size` bytes, if cached. Removes it from the cache: the caller
  // now owns the upload's progress and puts the new state back.
  std::optional<DigestHasher> Take(const std::string& key, const std::string& algorithm,
                                   uint64_t size) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    std::optional<DigestHasher> out;
    if (it->second.hasher.bytes_hashed() == size && it->second.hasher.algorithm() == algorithm) {
      out = std::move(it->second.hasher);
    }
    order_.erase(it->second.position);
    entries_.erase(it);
    return out;
  }

  void Put(const std::string& key, DigestHasher hasher) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      order_.erase(it->second.position);
      entries_.erase(it);
    }
    if (entries_.size() >= capacity_ && !order_.empty()) {
      entries_.erase(order_.front());
      order_.pop_front();
    }
    order_.push_back(key);
    entries_.emplace(key, Entry{std::move(hasher), std::prev(order_.end())});
  }

  void Forget(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    order_.erase(it->second.position);
    entries_.erase(it);
  }

 private:
  struct Entry {
    DigestHasher hasher;
    std::list<std::string>::iterator position;
  };
  std::mutex mu_;
  size_t capacity_;
  std::list<std::string> order_;                    // GUARDED_BY(mu_), oldest first
  std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
};

}  // namespace regfs
