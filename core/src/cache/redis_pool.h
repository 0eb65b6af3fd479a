// Connections to one Redis (the first of the configured addresses that answers), pooled:
// each command borrows an idle connection or opens one, within maxactive, and gives it
// back unless it broke. Every call is bounded by the dial and read timeouts.
#pragma once

#include <Poco/Redis/Array.h>
#include <Poco/Redis/Client.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "regfs/core/descriptor_cache.h"
#include "regfs/core/status.h"

namespace regfs {

class RedisPool {
 public:
  explicit RedisPool(RedisCacheOptions options);

  // Runs `use` on a connection; Poco's exceptions (refused, timed out, an error reply)
  // come back as Unavailable, with the address but never the password. A connection
  // that failed is closed, not returned.
  Status Run(const std::function<void(Poco::Redis::Client&)>& use);

  // "redis 127.0.0.1:6379 db 0"
  std::string Describe() const;

 private:
  struct Idle {
    std::unique_ptr<Poco::Redis::Client> client;
    std::chrono::steady_clock::time_point since;
  };
  Result<std::unique_ptr<Poco::Redis::Client>> Open();
  std::unique_ptr<Poco::Redis::Client> Borrow();
  void Return(std::unique_ptr<Poco::Redis::Client> client);

  const RedisCacheOptions options_;
  std::mutex mu_;
  std::condition_variable released_;
  std::vector<Idle> idle_;
  int active_ = 0;  // borrowed or being opened
};

}  // namespace regfs
