// Notifier: delivers the change log's events to the configured webhook endpoints, at least
// once and in log order per endpoint, across restarts and replicas.
//
// Each enabled endpoint has one delivery thread per process. Among all processes on the
// storage, only the holder of the endpoint's lease (StorageDriver::TryLease("notify:<name>"))
// delivers; the others look every second and take over when its holder dies (flock is
// released by the kernel; an object store's lease expires after seconds). The holder reads the log from
// the endpoint's cursor (regfs/log/cursors/notify.<name>), POSTs one log entry's events per
// request, and moves the cursor once the receiver accepted them. A receiver that fails is
// retried (after `threshold` failures in a row, every `backoff`) until it accepts, unless the
// event is over the endpoint's limits (maxevents behind the newest, or older than maxage):
// then it is dropped with a log line. A new endpoint starts at the log's end.
//
// Pushes never wait for a receiver: the request only appended to the log.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "logger.h"
#include "notifications/event_format.h"
#include "notifications/webhook_sender.h"
#include "regfs/config/config.h"
#include "regfs/core/change_log.h"
#include "regfs/core/storage_driver.h"

namespace regfs::httpd {

// Where one endpoint stands, for the log and for health and metrics.
struct EndpointState {
  std::string name;
  bool delivering = false;  // this process holds the endpoint's lease
  uint64_t cursor = 0;      // the last log entry handled
  uint64_t delivered = 0;   // events accepted by the receiver (by this process)
  uint64_t dropped = 0;     // events given up on: over the limits
  uint64_t failures = 0;    // failed attempts
  std::chrono::system_clock::time_point last_success{};
  std::string last_error;  // empty after a success
};

class Notifier {
 public:
  // Starts one thread per enabled endpoint. `options` supply what events need (the log's
  // identity is read here; failing that, the notifier starts without it and logs why).
  Notifier(const Config::Notifications& config, std::shared_ptr<ChangeLog> log,
           std::shared_ptr<StorageDriver> driver, EventOptions options, const Logger& logger);
  // Stops the threads (one busy with a slow receiver is left to the exit).
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Some endpoint wants pull events (so requests record pulls).
  bool wants_pulls() const { return wants_pulls_; }
  // A new entry is in the log: delivery threads look at once instead of at their next poll.
  void Wake();
  std::vector<EndpointState> States() const;

  // The cursor's consumer name of an endpoint: "notify." + the name made safe.
  static std::string ConsumerName(const std::string& endpoint_name);

 private:
  class Endpoint;
  std::vector<std::shared_ptr<Endpoint>> endpoints_;
  bool wants_pulls_ = false;
};

}  // namespace regfs::httpd
