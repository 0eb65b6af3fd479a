#include "notifications/notifier.h"

#include <algorithm>

#include "regfs/core/change_record.h"

namespace regfs::httpd {
namespace {

// How often a delivery thread that is up to date looks at the log for other processes'
// entries (this process's own wake it at once).
constexpr std::chrono::milliseconds kPollInterval{500};
// Entries read from the log at a time; events sent in one envelope at most.
constexpr size_t kBatchEntries = 64;
constexpr size_t kEventsPerRequest = 32;
// Before `threshold` failures in a row, retries come this quickly (or after `backoff`, if
// that is shorter).
constexpr std::chrono::milliseconds kQuickRetry{100};
// How often a process that does not deliver checks whether the deliverer is gone.
constexpr std::chrono::seconds kLeaseRetry{1};
// While a receiver fails, how often the limits are checked against the log's newest entry.
constexpr std::chrono::seconds kLimitCheckInterval{10};

}  // namespace

class Notifier::Endpoint : public std::enable_shared_from_this<Notifier::Endpoint> {
 public:
  Endpoint(Config::NotificationEndpoint config, std::shared_ptr<ChangeLog> log,
           std::shared_ptr<StorageDriver> driver, const EventOptions& options,
           const Logger& logger)
      : config_(std::move(config)),
        consumer_(ConsumerName(config_.name)),
        sender_(config_),
        log_(std::move(log)),
        driver_(std::move(driver)),
        options_(options),
        logger_(logger) {
    state_.name = config_.name;
  }

  void Start() {
    thread_ = std::thread([self = shared_from_this()] {
      self->Run();
      std::lock_guard<std::mutex> lock(self->mu_);
      self->finished_ = true;
      self->wake_.notify_all();
    });
  }

  // Asks the thread to stop and waits a little for it; one blocked on another process's
  // lease is left behind (it holds a reference to this endpoint).
  void Stop() {
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = true;
    wake_.notify_all();
    const bool done = wake_.wait_for(lock, std::chrono::seconds(2), [&] { return finished_; });
    lock.unlock();
    if (done) {
      thread_.join();
    } else {
      thread_.detach();
    }
  }

  void Wake() {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
    wake_.notify_all();
  }

  EndpointState State() const {
    std::lock_guard<std::mutex> lock(mu_);
    return state_;
  }

 private:
  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  // Sleeps up to `d`, less when stopped or woken. False once stopping.
  bool Pause(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait_for(lock, d, [&] { return stopping_ || woken_; });
    woken_ = false;
    return !stopping_;
  }

  void Run() {
    if (Status reachable = sender_.CheckReachable(); !reachable.ok()) {
      logger_.Warn("notifications endpoint " + config_.name +
                   ": the receiver does not accept connections now (" + reachable.message() +
                   "); its events wait in the change log until it does");
    }
    while (!Stopping()) {
      auto lease = driver_->TryLease("notify:" + config_.name);
      if (!lease.ok()) {
        // Another process delivers (it holds the lease), or the store is unreachable: look
        // again in a second, to take over once that holder is gone.
        if (lease.status().code() != Status::Code::kFailedPrecondition) {
          RecordError("taking the delivery lease: " + lease.status().message(), true);
        }
        Pause(kLeaseRetry);
        continue;
      }
      if (Stopping()) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        state_.delivering = true;
      }
      logger_.Info("notifications endpoint " + config_.name + ": delivering to " +
                   sender_.loggable_url() + " from this process");
      DeliverWhileHolding(**lease);
      std::lock_guard<std::mutex> lock(mu_);
      state_.delivering = false;
    }
  }

  void DeliverWhileHolding(const StorageLock& lease) {
    auto cursor = log_->LoadCursor(consumer_);
    if (!cursor.ok()) {
      RecordError("reading its cursor: " + cursor.status().message(), true);
      Pause(std::chrono::seconds(1));
      return;
    }
    uint64_t at = 0;
    if (*cursor) {
      at = **cursor;
    } else {
      // A new endpoint: events from now on, not the log's history.
      auto newest = log_->Newest();
      if (!newest.ok()) {
        RecordError("finding the log's end: " + newest.status().message(), true);
        Pause(std::chrono::seconds(1));
        return;
      }
      at = *newest;
      Status saved = log_->SaveCursor(consumer_, at);
      if (!saved.ok()) {
        RecordError("saving its cursor: " + saved.message(), true);
        Pause(std::chrono::seconds(1));
        return;
      }
    }
    SetCursor(at);
    while (!Stopping()) {
      if (!lease.held()) {
        // Another process may deliver now (the lease could not be renewed in time): stop
        // before sending more, so two deliverers overlap by one batch at most.
        logger_.Warn("notifications endpoint " + config_.name +
                     ": the delivery lease could not be renewed in time; handing over");
        return;
      }
      auto batch = log_->Read(at, kBatchEntries);
      if (!batch.ok()) {
        RecordError("reading the change log: " + batch.status().message(), true);
        if (!Pause(std::chrono::seconds(1))) return;
        continue;
      }
      if (batch->gap) {
        logger_.Warn("notifications endpoint " + config_.name + ": log entries " +
                     std::to_string(at + 1) + " to " + std::to_string(batch->last) +
                     " were removed by the change log's retention before they were delivered");
        at = batch->entries.empty() ? batch->last : batch->entries.front().sequence - 1;
      }
      if (batch->entries.empty()) {
        if (batch->gap) SaveCursor(at);
        if (!Pause(kPollInterval)) return;
        continue;
      }
      // The batch's events go out in as few requests as the format allows; the cursor
      // moves once per batch (a crash in between sends those events again, same ids).
      for (const Request& request : Requests(batch->entries)) {
        if (!Send(request)) {  // stopping
          SaveCursor(at);
          return;
        }
        at = request.last_sequence;
      }
      at = batch->entries.back().sequence;
      SaveCursor(at);
    }
  }

  // One POST: the events of consecutive log entries.
  struct Request {
    std::string content_type;
    std::string body;
    size_t events = 0;
    LogEntry first;  // the oldest entry in it, for the limits
    uint64_t last_sequence = 0;
  };

  // The requests that carry the entries' events, in order: with the envelope, up to
  // kEventsPerRequest events from consecutive entries each; with CloudEvents, one each.
  std::vector<Request> Requests(const std::vector<LogEntry>& entries) {
    std::vector<Request> out;
    std::vector<Poco::JSON::Object::Ptr> pending;
    const LogEntry* first = nullptr;
    uint64_t last = 0;
    auto flush = [&] {
      if (pending.empty()) return;
      out.push_back({EnvelopeMediaType(config_), EnvelopeBody(pending), pending.size(), *first, last});
      pending.clear();
      first = nullptr;
    };
    for (const LogEntry& entry : entries) {
      auto record = DecodeChangeRecord(entry.body);
      if (!record.ok()) {
        logger_.Warn("notifications endpoint " + config_.name + ": log entry " +
                     std::to_string(entry.sequence) + " is unreadable and skipped: " +
                     record.status().message());
        continue;
      }
      for (auto& e : EventsOf(entry, *record, options_)) {
        if (IsIgnored(*e, config_) || IsCacheUpkeep(*e, options_)) continue;
        if (config_.format == "cloudevents") {
          out.push_back({kCloudEventsMediaType, CloudEventBody(*e), 1, entry, entry.sequence});
          continue;
        }
        if (first == nullptr) first = &entry;
        pending.push_back(e);
        last = entry.sequence;
      }
      if (pending.size() >= kEventsPerRequest) flush();
    }
    flush();
    return out;
  }

  // Sends until the receiver accepts, or the events are over the limits (dropped). False
  // when stopping first.
  bool Send(const Request& request) {
    int failures_in_row = 0;
    auto next_limit_check = std::chrono::steady_clock::now();
    while (true) {
      if (Stopping()) return false;
      Status sent = sender_.Post(request.content_type, request.body);
      if (sent.ok()) {
        if (failures_in_row > 0) {
          logger_.Info("notifications endpoint " + config_.name + ": delivered again after " +
                       std::to_string(failures_in_row) + " failed attempts");
        }
        std::lock_guard<std::mutex> lock(mu_);
        state_.delivered += request.events;
        state_.last_success = std::chrono::system_clock::now();
        state_.last_error.clear();
        return true;
      }
      ++failures_in_row;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++state_.failures;
        state_.last_error = sent.message();
      }
      if (failures_in_row == 1 || failures_in_row % std::max(1, config_.threshold) == 0) {
        auto newest = log_->Newest();
        const std::string waiting =
            newest.ok() ? "; " + std::to_string(*newest - request.first.sequence + 1) +
                              " log entries are waiting"
                        : "";
        logger_.Warn("notifications endpoint " + config_.name + ": delivery of log entries " +
                     std::to_string(request.first.sequence) + " to " +
                     std::to_string(request.last_sequence) + " failed (" + sent.message() +
                     "); retrying" + waiting);
      }
      // The age limit costs nothing to check; the count limit costs a search of the log.
      bool over = std::chrono::system_clock::now() - request.first.time > config_.max_age;
      if (!over && std::chrono::steady_clock::now() >= next_limit_check) {
        next_limit_check = std::chrono::steady_clock::now() + kLimitCheckInterval;
        auto newest = log_->Newest();
        over = newest.ok() && *newest - request.first.sequence >= config_.max_pending;
      }
      if (over) {
        logger_.Error("notifications endpoint " + config_.name + ": dropped " +
                      std::to_string(request.events) + " events of log entries " +
                      std::to_string(request.first.sequence) + " to " +
                      std::to_string(request.last_sequence) +
                      ": the receiver has refused them past the endpoint's limits "
                      "(maxevents " + std::to_string(config_.max_pending) + ", maxage " +
                      std::to_string(config_.max_age.count()) + "s)");
        std::lock_guard<std::mutex> lock(mu_);
        state_.dropped += request.events;
        return true;
      }
      const auto wait = failures_in_row >= config_.threshold
                            ? config_.backoff
                            : std::min(config_.backoff, kQuickRetry);
      if (!Pause(wait)) return false;
    }
  }

  void SaveCursor(uint64_t at) {
    SetCursor(at);
    Status saved = log_->SaveCursor(consumer_, at);
    // Not fatal: after a restart the entries since the last saved cursor come again, with
    // the same ids.
    if (!saved.ok()) RecordError("saving its cursor: " + saved.message(), true);
  }

  void SetCursor(uint64_t at) {
    std::lock_guard<std::mutex> lock(mu_);
    state_.cursor = at;
  }

  void RecordError(const std::string& what, bool log) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (state_.last_error == what) return;  // said already
      state_.last_error = what;
    }
    if (log) logger_.Warn("notifications endpoint " + config_.name + ": " + what);
  }

  const Config::NotificationEndpoint config_;
  const std::string consumer_;
  WebhookSender sender_;
  const std::shared_ptr<ChangeLog> log_;
  const std::shared_ptr<StorageDriver> driver_;
  const EventOptions options_;
  const Logger& logger_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool woken_ = false;
  bool finished_ = false;
  EndpointState state_;
};

Notifier::Notifier(const Config::Notifications& config, std::shared_ptr<ChangeLog> log,
                   std::shared_ptr<StorageDriver> driver, EventOptions options,
                   const Logger& logger) {
  auto identity = log->Identity();
  if (identity.ok()) {
    options.log_identity = *identity;
  } else {
    logger.Warn("notifications: the change log's identity is unreadable (" +
                identity.status().message() + "); event ids are unique to this registry only");
  }
  for (const auto& e : config.endpoints) {
    if (e.disabled) continue;
    if (std::find(e.ignored_actions.begin(), e.ignored_actions.end(), "pull") ==
        e.ignored_actions.end()) {
      wants_pulls_ = true;
    }
    auto endpoint = std::make_shared<Endpoint>(e, log, driver, options, logger);
    endpoint->Start();
    endpoints_.push_back(std::move(endpoint));
  }
}

Notifier::~Notifier() {
  for (auto& e : endpoints_) e->Stop();
}

void Notifier::Wake() {
  for (auto& e : endpoints_) e->Wake();
}

std::vector<EndpointState> Notifier::States() const {
  std::vector<EndpointState> out;
  for (const auto& e : endpoints_) out.push_back(e->State());
  return out;
}

std::string Notifier::ConsumerName(const std::string& endpoint_name) {
  std::string safe;
  bool changed = false;
  for (char c : endpoint_name) {
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    const bool ok = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9') ||
                    lower == '-' || lower == '_' || lower == '.';
    safe += ok ? lower : '-';
    changed |= !ok || lower != c;
  }
  if (safe.size() > 40) {
    safe.resize(40);
    changed = true;
  }
  // Two names that differ only in what was replaced must not share a cursor.
  if (changed) safe += "-" + Digest::Sha256Of(endpoint_name).hex().substr(0, 12);
  return "notify." + safe;
}

}  // namespace regfs::httpd
