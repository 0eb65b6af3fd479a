// GcScheduler: storage.maintenance.gc in the server (a regfs extension). Every `interval`
// one replica among all serving the storage collects garbage while the others (and it)
// keep serving: a replica takes the storage's "gc-schedule" lease, reads when the last run
// finished (regfs/gc/last-run), collects if that is an interval ago (the collection takes
// the "gc" lease, which a garbage-collect command also takes), and records the time before
// letting go: N replicas collect once per interval, not N times.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "logger.h"
#include "regfs/config/config.h"
#include "regfs/core/registry.h"

namespace regfs::httpd {

class GcScheduler {
 public:
  // REQUIRES: registry, driver and logger outlive this. `cache_expiry`: a pull-through
  // cache's expiry of unused content (GcOptions::expire_unused_before), or empty.
  GcScheduler(Config::GarbageCollection settings, std::optional<std::chrono::seconds> purge_age,
              Registry& registry, StorageDriver& driver, const Logger& logger,
              decltype(GcOptions::expire_unused_before) cache_expiry = {});
  ~GcScheduler();  // stops after the run in progress, if any, has finished

  void Start();

  // The last run this process made: for health and metrics.
  struct LastRun {
    bool ok = false;
    std::string error;
    GcReport report;
    std::chrono::system_clock::time_point finished;
  };
  std::optional<LastRun> last_run() const;

 private:
  void Loop();
  // Runs a collection when the last one on the storage is older than the interval.
  void MaybeRun();

  const Config::GarbageCollection settings_;
  const std::optional<std::chrono::seconds> purge_age_;
  const decltype(GcOptions::expire_unused_before) cache_expiry_;
  Registry& registry_;
  StorageDriver& driver_;
  const Logger& logger_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::optional<LastRun> last_run_;
  std::thread thread_;
};

}  // namespace regfs::httpd
