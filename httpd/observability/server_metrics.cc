#include "observability/server_metrics.h"

namespace regfs::httpd {

ServerMetrics::ServerMetrics(Metrics& m)
    : metrics(m),
      requests(m.AddCounter("registry_http_requests_total",
                            "HTTP API requests answered, by method, handler and status code.",
                            {"method", "handler", "code"})),
      duration(m.AddHistogram("registry_http_request_duration_seconds",
                              "Time from a request's head to the end of its answer.",
                              {"method", "handler"}, Metrics::LatencyBounds())),
      request_bytes(m.AddHistogram("registry_http_request_size_bytes",
                                   "Bytes of request bodies read.", {"handler"},
                                   Metrics::SizeBounds())),
      response_bytes(m.AddHistogram("registry_http_response_size_bytes",
                                    "Bytes of response bodies sent.", {"handler"},
                                    Metrics::SizeBounds())),
      in_flight(m.AddGauge("registry_http_in_flight_requests",
                           "HTTP API requests being handled now.", {"handler"})),
      storage_seconds(m.AddHistogram("registry_storage_action_seconds",
                                     "Time of storage driver calls, by driver and action.",
                                     {"driver", "action"}, Metrics::LatencyBounds())),
      storage_errors(m.AddCounter(
          "regfs_storage_errors_total",
          "Storage driver calls that failed, by driver, action and kind of failure.",
          {"driver", "action", "kind"})),
      lease_wait(m.AddHistogram("regfs_lease_wait_seconds",
                                "Time writers waited for a repository's lease.", {},
                                Metrics::LatencyBounds())
                     .With({})) {}

const char* HandlerLabel(Route::Kind kind) {
  switch (kind) {
    case Route::Kind::kBase:
      return "base";
    case Route::Kind::kCatalog:
      return "catalog";
    case Route::Kind::kTags:
      return "tags";
    case Route::Kind::kManifest:
      return "manifest";
    case Route::Kind::kBlob:
      return "blob";
    case Route::Kind::kUploadStart:
      return "blob_upload";
    case Route::Kind::kUpload:
      return "blob_upload_chunk";
    case Route::Kind::kReferrers:
      return "referrers";
    case Route::Kind::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace regfs::httpd
