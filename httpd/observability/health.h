// The replica's health: periodic checks (storage, files, HTTP and TCP dependencies, Redis)
// and whether the process is draining for shutdown. Read by /debug/health, /readyz, /v2/
// (which answers 503 while a critical check fails, as registry:2 does) and the metrics.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "logger.h"
#include "regfs/config/config.h"
#include "regfs/core/status.h"
#include "regfs/core/storage_driver.h"

namespace regfs::httpd {

struct HealthCheck {
  std::string name;  // unique; the key in /debug/health's JSON
  std::chrono::milliseconds interval{10'000};
  int threshold = 1;  // failures in a row before the check counts as failing
  // Critical checks make the replica unhealthy (503 on /v2/); the others only degrade it:
  // they show in /debug/health and the metrics while the registry keeps serving.
  bool critical = true;
  // One probe; must return within the interval (each has its own timeout).
  std::function<Status()> probe;
};

class HealthMonitor {
 public:
  explicit HealthMonitor(const Logger& logger) : logger_(logger) {}
  ~HealthMonitor();  // stops the probing threads
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // REQUIRES: before Start.
  void Add(HealthCheck check);
  // Runs every check once, synchronously (a replica starts with a known state), then each
  // on its own thread every interval.
  void Start();

  // Every critical check passes and the process is not draining.
  bool Ready() const;
  // Every critical check passes (draining aside).
  bool Healthy() const;
  void SetDraining() { draining_ = true; }
  bool draining() const { return draining_; }

  // The failing checks, name -> what failed (critical or not).
  std::map<std::string, std::string> Failing() const;
  // Each check's state, 1 passing and 0 failing, for the metrics.
  std::vector<std::pair<std::string, bool>> States() const;

 private:
  struct State {
    HealthCheck check;
    int failures_in_a_row = 0;
    std::string error;  // the last failure; empty once a probe passes
    bool failing() const { return failures_in_a_row >= check.threshold; }
  };
  void Probe(State& state);
  void Loop(State* state);

  const Logger& logger_;
  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::atomic<bool> draining_{false};
  std::vector<std::unique_ptr<State>> states_;
  std::vector<std::thread> threads_;
};

// The checks the configuration's health section asks for.
std::vector<HealthCheck> ConfiguredChecks(const Config& config,
                                          std::shared_ptr<StorageDriver> driver);

}  // namespace regfs::httpd
