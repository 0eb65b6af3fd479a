#include "regfs/core/change_recorder.h"

#include <algorithm>

namespace regfs {
namespace {

// The scope open on this thread, if any (see ChangeRecorder::Scope).
thread_local ChangeRecorder::Scope* t_scope = nullptr;

bool IsRecorded(ChangeEvent::Kind kind) {
  return kind != ChangeEvent::Kind::kUploadStarted && kind != ChangeEvent::Kind::kUploadEnded;
}

}  // namespace

std::shared_ptr<ChangeRecorder> ChangeRecorder::Create(RecorderOptions options) {
  return std::shared_ptr<ChangeRecorder>(new ChangeRecorder(std::move(options)));
}

std::shared_ptr<ChangeRecorder> ChangeRecorder::Start(RecorderOptions options) {
  auto recorder = Create(std::move(options));
  recorder->StartBackground();
  return recorder;
}

void ChangeRecorder::StartBackground() {
  background_ = std::thread([this] { Background(); });
}

ChangeRecorder::ChangeRecorder(RecorderOptions options) : options_(std::move(options)) {}

ChangeRecorder::~ChangeRecorder() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (background_.joinable()) background_.join();
  std::lock_guard<std::mutex> lock(mu_);
  if (!DrainLocked().ok() && !pending_.empty()) {
    Report(Status::Unavailable(std::to_string(pending_.size()) +
                               " change log entries are lost: the storage could not be "
                               "written before shutdown"));
  }
}

void ChangeRecorder::OnChange(const ChangeEvent& event) {
  if (!IsRecorded(event.kind)) return;
  if (t_scope != nullptr && t_scope->recorder_ == this) {
    t_scope->record_.events.push_back(event);
    return;
  }
  ChangeRecord record;
  record.events.push_back(event);
  record.actor = options_.default_actor;
  record.instance = options_.instance;
  record.source_addr = options_.source_addr;
  (void)Append(record);
}

void ChangeRecorder::OnChanges(const std::vector<ChangeEvent>& events) {
  if (t_scope != nullptr && t_scope->recorder_ == this) {
    for (const ChangeEvent& event : events) OnChange(event);
    return;
  }
  ChangeRecord record;
  record.actor = options_.default_actor;
  record.instance = options_.instance;
  record.source_addr = options_.source_addr;
  for (size_t i = 0; i < events.size(); ++i) {
    if (IsRecorded(events[i].kind)) record.events.push_back(events[i]);
    if (record.events.size() == kMaxEventsPerEntry ||
        (i + 1 == events.size() && !record.events.empty())) {
      (void)Append(record);
      record.events.clear();
    }
  }
}

size_t ChangeRecorder::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

Status ChangeRecorder::Append(const ChangeRecord& record) {
  std::string body = EncodeChangeRecord(record);
  if (body.size() > ChangeLog::kMaxBodyBytes) {
    Status s = Status::InvalidArgument("a change log entry of " + std::to_string(body.size()) +
                                       " bytes was not recorded: over the entry size limit");
    Report(s);
    return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  // Behind anything pending, so this process's entries keep their order.
  if (pending_.size() >= options_.max_pending) {
    pending_.pop_front();
    Report(Status::ResourceExhausted(
        "a change log entry was dropped: " + std::to_string(options_.max_pending) +
        " entries are waiting for the storage to accept them"));
  }
  const bool durable = options_.sync_entries &&
                       std::any_of(record.events.begin(), record.events.end(), [](const auto& e) {
                         return e.kind != ChangeEvent::Kind::kManifestPulled &&
                                e.kind != ChangeEvent::Kind::kBlobPulled;
                       });
  pending_.push_back({std::move(body), durable});
  Status s = DrainLocked();
  if (!s.ok()) Report(s.WithContext("change log entry kept for a retry"));
  return s;
}

Status ChangeRecorder::DrainLocked() {
  while (!pending_.empty()) {
    auto appended = options_.log->Append(pending_.front().body, pending_.front().durable);
    if (!appended.ok()) {
      failed_appends_.fetch_add(1);
      return appended.status();
    }
    pending_.pop_front();
    if (options_.on_appended) options_.on_appended();
  }
  return Status::Ok();
}

void ChangeRecorder::Report(const Status& status) {
  if (options_.on_error) options_.on_error(status);
}

void ChangeRecorder::Background() {
  auto next_trim = std::chrono::steady_clock::now() + options_.trim_interval;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.retry_interval);
    if (stopping_) break;
    // Failures here are not reported again: Append said so when the entry was kept.
    if (!pending_.empty() && DrainLocked().ok()) Report(Status::Ok());
    if (std::chrono::steady_clock::now() >= next_trim) {
      next_trim = std::chrono::steady_clock::now() + options_.trim_interval;
      lock.unlock();
      auto report = options_.log->Trim(options_.retention);
      if (!report.ok()) {
        Report(report.status().WithContext("trimming the change log"));
      } else {
        for (const auto& consumer : report->overrun) {
          Report(Status::ResourceExhausted(
              "change log consumer " + consumer +
              " fell behind the retention limits: entries before " +
              std::to_string(report->floor) + " were removed before it handled them"));
        }
      }
      lock.lock();
    }
  }
}

ChangeRecorder::Scope::Scope(ChangeRecorder* recorder, RequestInfo request, std::string actor)
    : recorder_(recorder), outer_(t_scope), active_(recorder != nullptr && t_scope == nullptr) {
  if (!active_) return;
  t_scope = this;
  record_.request = std::move(request);
  record_.actor = std::move(actor);
  record_.instance = recorder->options_.instance;
  record_.source_addr = recorder->options_.source_addr;
}

ChangeRecorder::Scope::~Scope() {
  if (!active_) return;
  (void)Flush();
  t_scope = outer_;
}

void ChangeRecorder::Scope::Add(const ChangeEvent& event) {
  if (active_) record_.events.push_back(event);
}

Status ChangeRecorder::Scope::Flush() {
  if (!active_ || record_.events.empty()) return Status::Ok();
  ChangeRecord record = record_;
  record_.events.clear();
  return recorder_->Append(record);
}

}  // namespace regfs
