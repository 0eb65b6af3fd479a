// What every request handler shares: the registry, the configuration and the log.
// Immutable after start, so handlers on any thread may read it without locks.
#pragma once

#include <atomic>

#include "auth/authorizer.h"
#include "logger.h"
#include "observability/health.h"
#include "observability/server_metrics.h"
#include "regfs/config/config.h"
#include "regfs/core/change_recorder.h"
#include "regfs/core/registry.h"

namespace regfs::httpd {

namespace proxy {
class PullThroughCache;
}

struct ServerContext {
  Registry& registry;
  const Config& config;
  const Logger& logger;
  // Requests being handled right now; shutdown waits for it to reach zero.
  std::atomic<int>& in_flight;
  // Set once shutdown starts: responses then close their connection.
  std::atomic<bool>& shutting_down;
  // Who may do what; consulted before every handler runs.
  const Authorizer& authorizer;
  // Upload requests streaming a body right now, bounded by limits.concurrentuploads.
  std::atomic<int>& uploads_in_flight;
  // Writes each request's changes to the change log before the answer goes out; null when
  // nothing is recorded (read-only registry).
  ChangeRecorder* recorder = nullptr;
  // Pulls (GET of a manifest or blob) are recorded too: some notification endpoint wants
  // them. Off otherwise: a pull then costs no write.
  bool record_pulls = false;
  // Request metrics; null in tools that serve no API.
  ServerMetrics* metrics = nullptr;
  // While it says unhealthy, every API request answers 503 (registry:2's behaviour).
  const HealthMonitor* health = nullptr;
  // Repositories that mirror an upstream registry (proxy); null when none do.
  proxy::PullThroughCache* proxy = nullptr;
};

}  // namespace regfs::httpd
