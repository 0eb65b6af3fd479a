// The operator's listener (http.debug.addr): /debug/health, the Prometheus metrics and the
// Kubernetes probes, apart from the API port so it can stay off the public network.
//
//   GET /debug/health  200 {} when every check passes; 503 {"check": "what failed", ...}
//   GET <prometheus>   the metrics in the text format (when http.debug.prometheus.enabled)
//   GET /livez         200 while the process serves
//   GET /readyz        200 when healthy and not draining, else 503 (also on the API port)
#pragma once

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServer.h>

#include <memory>
#include <string>

#include "logger.h"
#include "observability/health.h"
#include "observability/metrics.h"
#include "regfs/config/config.h"

namespace regfs::httpd {

// Handles /livez and /readyz on whichever listener gets them; null for any other path.
Poco::Net::HTTPRequestHandler* NewProbeHandler(const std::string& path,
                                               const HealthMonitor& health);

class DebugServer {
 public:
  // REQUIRES: metrics and health outlive this.
  DebugServer(const Config::Debug& config, const Metrics& metrics, const HealthMonitor& health);
  ~DebugServer();
  // Listens; an error says why (address taken, not resolvable).
  Status Start();

 private:
  const Config::Debug config_;
  const Metrics& metrics_;
  const HealthMonitor& health_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

}  // namespace regfs::httpd
