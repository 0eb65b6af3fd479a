// Metrics read when scraped from the parts of the service that keep their own state: the
// webhook notifier, the garbage collector, the health checks, the process itself.
#pragma once

#include <functional>
#include <memory>

#include "maintenance/gc_scheduler.h"
#include "notifications/notifier.h"
#include "observability/health.h"
#include "observability/metrics.h"
#include "regfs/core/change_log.h"
#include "regfs/core/descriptor_cache.h"

namespace regfs::httpd {

struct ServiceSources {
  const Notifier* notifier = nullptr;  // null: no endpoints configured
  std::shared_ptr<ChangeLog> log;      // for the notification backlog
  const GcScheduler* gc = nullptr;     // null: no collection scheduled here
  const HealthMonitor* health = nullptr;
  std::shared_ptr<DescriptorCache> cache;  // null: none configured
  bool cache_is_redis = false;
  const std::atomic<int>* uploads_in_flight = nullptr;
};

// REQUIRES: every source outlives `metrics`' last Render.
void RegisterServiceMetrics(Metrics& metrics, ServiceSources sources);

// process_* (start time, CPU, resident memory, open descriptors) and regfs_build_info.
void RegisterProcessMetrics(Metrics& metrics);

}  // namespace regfs::httpd
