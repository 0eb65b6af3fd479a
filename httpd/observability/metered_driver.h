// A StorageDriver that forwards every call to another and records, per action, how long it
// took and how it failed (registry_storage_action_seconds, regfs_storage_errors_total), so
// an operator sees a slow or failing store in the metrics before clients notice.
#pragma once

#include <memory>

#include "observability/server_metrics.h"
#include "regfs/core/storage_driver.h"

namespace regfs::httpd {

// `driver_label` names the driver in the metrics: filesystem, s3, inmemory.
// REQUIRES: metrics outlive the returned driver.
std::shared_ptr<StorageDriver> NewMeteredDriver(std::shared_ptr<StorageDriver> inner,
                                                std::string driver_label,
                                                ServerMetrics& metrics);

}  // namespace regfs::httpd
