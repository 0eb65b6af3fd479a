// The metrics regfs-httpd exposes, created in one place so their names, help texts and
// labels are listed once (docs/metrics.md documents each). Names follow registry:2's where
// it has the metric; the rest start with regfs_.
#pragma once

#include <string>

#include "observability/metrics.h"
#include "route.h"

namespace regfs::httpd {

struct ServerMetrics {
  explicit ServerMetrics(Metrics& metrics);

  Metrics& metrics;
  // HTTP API, by handler (route) and method; the code is the response status.
  Family<Counter>& requests;          // method, handler, code
  Family<Histogram>& duration;        // method, handler
  Family<Histogram>& request_bytes;   // handler
  Family<Histogram>& response_bytes;  // handler
  Family<Gauge>& in_flight;           // handler
  // Storage driver calls (MeteredDriver), and the repository leases writers wait for.
  Family<Histogram>& storage_seconds;  // driver, action
  Family<Counter>& storage_errors;     // driver, action, kind
  Histogram& lease_wait;
};

// The metric name of a route, as registry:2 labels its handlers.
const char* HandlerLabel(Route::Kind kind);

}  // namespace regfs::httpd
