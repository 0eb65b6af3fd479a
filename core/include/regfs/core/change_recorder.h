// ChangeRecorder: writes what the registry commits to the change log, one entry per
// operation, so that consumers in any process (webhook delivery, garbage collection) learn
// of every change made by every process.
//
// Attach it to RegistryOptions.listeners. A front end opens a Scope around each operation
// (regfs-httpd: a request; regfs-fused: a file operation): the changes the Registry makes on
// that thread are collected and appended as one entry when the scope is flushed, which the
// front end does before it answers, so an answered client knows the entry is written.
// Changes made outside any scope (purging abandoned uploads) are appended one entry each.
// Upload start and end are not recorded: nobody consumes them, and they would cost a write
// each (the change feed carries them for the mount).
//
// Durability: an entry is written before the answer, so it survives any crash of the
// process. It is not flushed to the disk on its own (unless sync_entries): like the links
// that commit a change (registry.h), it reaches the disk in the order it was written, so
// after a power cut the log holds the changes that survived, up to the last few seconds'
// worth of entries whose changes may have survived too. A flush per entry would double the
// cost of a manifest PUT. Entries of pulls only are never flushed.
//
// An append that fails (the storage unreachable) does not fail the operation, which has
// committed already: the entry waits in memory (up to max_pending) and is retried in the
// background; failures and entries dropped beyond the bound are reported to on_error.
//
// The recorder also keeps the log trimmed (ChangeLog::Trim every trim_interval).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "regfs/core/change_log.h"
#include "regfs/core/change_record.h"
#include "regfs/core/registry.h"

namespace regfs {

struct RecorderOptions {
  std::shared_ptr<ChangeLog> log;  // REQUIRED
  std::string instance;            // this process, for ChangeRecord::instance
  std::string source_addr;         // this process's address, for ChangeRecord::source_addr
  std::string default_actor;       // actor of changes outside any scope
  // Flush every entry of changes to stable storage before the answer (see above).
  bool sync_entries = false;
  // Called after each entry went in (a consumer in this process may wake up for it).
  std::function<void()> on_appended;
  // For the log, on the thread that met the failure; with Ok once kept entries went in.
  std::function<void(const Status&)> on_error;
  size_t max_pending = 10'000;
  std::chrono::milliseconds retry_interval{1000};
  LogRetention retention;
  std::chrono::seconds trim_interval{300};
};

class ChangeRecorder final : public ChangeListener,
                             public std::enable_shared_from_this<ChangeRecorder> {
 public:
  // A recorder whose retries and trims wait for StartBackground (a daemon starts threads
  // only after it forked); entries are appended from the start.
  static std::shared_ptr<ChangeRecorder> Create(RecorderOptions options);
  // Create, then StartBackground.
  static std::shared_ptr<ChangeRecorder> Start(RecorderOptions options);
  // Starts the thread that retries kept entries and trims the log. Call once.
  void StartBackground();
  // Stops it; entries still pending are tried once more, then reported lost.
  ~ChangeRecorder() override;

  void OnChange(const ChangeEvent& event) override;
  // Outside a scope: one entry per kMaxEventsPerEntry events, not one per event.
  void OnChanges(const std::vector<ChangeEvent>& events) override;
  static constexpr size_t kMaxEventsPerEntry = 200;

  // Collects the changes of one operation made on the constructing thread. Not movable;
  // scopes on one thread do not nest (an inner one is a no-op). A null recorder makes a
  // scope that records nothing, so front ends need no special case.
  class Scope {
   public:
    Scope(ChangeRecorder* recorder, RequestInfo request, std::string actor);
    ~Scope();  // flushes whatever is left
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

    void set_actor(std::string actor) { record_.actor = std::move(actor); }
    // Adds an event the Registry does not emit itself (a pull).
    void Add(const ChangeEvent& event);
    // Appends what was collected as one entry, if anything. Idempotent; later changes go to
    // a next entry. Failure means the entry waits for a retry (see the file comment).
    Status Flush();

   private:
    friend class ChangeRecorder;
    ChangeRecorder* recorder_;
    Scope* outer_;  // the scope this thread had before; set only when this one is inactive
    bool active_;
    ChangeRecord record_;
  };

  // Tries the entries waiting for a retry now (at shutdown).
  Status DrainPending() {
    std::lock_guard<std::mutex> lock(mu_);
    return DrainLocked();
  }
  // Entries waiting for a retry; appends that failed since start.
  size_t pending() const;
  uint64_t failed_appends() const { return failed_appends_.load(); }
  const std::shared_ptr<ChangeLog>& log() const { return options_.log; }

 private:
  explicit ChangeRecorder(RecorderOptions options);
  Status Append(const ChangeRecord& record);
  Status DrainLocked();  // REQUIRES: mu_ held
  void Background();
  void Report(const Status& status);

  const RecorderOptions options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  struct Pending {
    std::string body;  // encoded
    bool durable;      // flushed to stable storage (sync_entries, and not pulls only)
  };
  std::deque<Pending> pending_;  // oldest first
  bool stopping_ = false;
  std::atomic<uint64_t> failed_appends_{0};
  std::thread background_;
};

}  // namespace regfs
