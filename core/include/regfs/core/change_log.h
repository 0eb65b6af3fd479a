// ChangeLog: the durable, ordered record of what happened in a registry, shared by every
// process on one storage (regfs-httpd replicas and regfs-fused alike) and read by consumers
// that each keep their own cursor: webhook delivery, online garbage collection.
//
// Unlike the ChangeFeed (a hint for cache invalidation that may drop events), an appended
// entry is on stable storage when Append returns, and stays until retention removes it.
//
// Entries are numbered 1, 2, 3, ... with no gaps, in the order they were appended by all
// processes together. Each entry is its own object, regfs/log/entries/<number>, created with
// StorageDriver::CreateContent: the create claims the number, so two appenders never share
// one, and entry n is only ever created once n-1 exists. A reader therefore reads n+1 after
// n and never skips one, on every driver, with no lock on the append path.
//
// Layout (beside docker/registry/v2, never in it, so registry:2 ignores it):
//   regfs/log/entries/<20-digit number>   "<unix ms>\n<body>", never rewritten
//   regfs/log/floor                       the oldest number kept (raised before trimming)
//   regfs/log/head                        a recent number (a hint; appenders start there)
//   regfs/log/id                          the log's identity (a UUID), created once
//   regfs/log/cursors/<consumer>          the number a consumer has handled up to
//
// Thread safety: every method may be called concurrently, from any number of processes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "regfs/core/status.h"
#include "regfs/core/storage_driver.h"

namespace regfs {

struct LogEntry {
  uint64_t sequence = 0;                       // 1, 2, 3, ...
  std::chrono::system_clock::time_point time;  // when it was appended, by its appender's clock
  std::string body;                            // what the appender gave; opaque to the log
};

struct LogBatch {
  std::vector<LogEntry> entries;  // consecutive, oldest first
  uint64_t last = 0;              // the sequence to pass as `after` to the next Read
  // Entries after the reader's `after` were removed by retention before it read them: the
  // batch starts at the oldest kept entry instead.
  bool gap = false;
};

// How long entries are kept: until every consumer has handled them, but never more than
// `max_entries` of them or for longer than `max_age`, so that a consumer that stopped
// cannot fill the storage.
struct LogRetention {
  uint64_t max_entries = 100'000;
  std::chrono::seconds max_age{7 * 24 * 3600};
  // An entry younger than this is never removed, whatever the limits say: appenders trust
  // what they learnt of the log's end for a few seconds, and this keeps that safe.
  std::chrono::seconds min_age{600};
};

struct TrimReport {
  uint64_t removed = 0;
  uint64_t floor = 1;  // the oldest entry kept now
  // Consumers whose cursor was below the new floor: they lose the entries in between.
  std::vector<std::string> overrun;
};

class ChangeLog {
 public:
  virtual ~ChangeLog() = default;

  // Appends one entry and returns its sequence number once it is durable (without
  // `durable`: once it survives a crash of this process, for entries whose loss in a power
  // cut is tolerable, such as pulls). `body` is at most kMaxBodyBytes. Fails (and appends
  // nothing) when the storage cannot be written.
  virtual Result<uint64_t> Append(std::string_view body, bool durable = true) = 0;
  static constexpr size_t kMaxBodyBytes = 256 * 1024;

  // Up to `max_entries` entries after `after` (0: from the start), oldest first. An empty
  // batch (with `last` == `after`) means the reader is up to date.
  virtual Result<LogBatch> Read(uint64_t after, size_t max_entries) = 0;

  // The sequence of the newest entry, 0 when nothing was ever appended. Costs a few
  // requests (a search from the head hint): for consumers starting at "now".
  virtual Result<uint64_t> Newest() = 0;

  // A random id of this log, made by whichever process asks first and the same for all
  // after: with a sequence number it names an entry uniquely among registries (for event
  // ids a receiver can deduplicate on).
  virtual Result<std::string> Identity() = 0;

  // A consumer's durable position: the sequence it has handled everything up to.
  // `consumer` is [a-z0-9._-]{1,64}. LoadCursor returns nullopt for an unknown consumer.
  virtual Result<std::optional<uint64_t>> LoadCursor(std::string_view consumer) = 0;
  virtual Status SaveCursor(std::string_view consumer, uint64_t after) = 0;
  // Forgets a consumer (e.g. a removed webhook endpoint), so it no longer holds entries.
  virtual Status DropCursor(std::string_view consumer) = 0;

  // Removes the oldest entries that every consumer has handled, and those beyond the
  // retention limits even if not. Safe to call from several processes at once (they take
  // turns); cheap when nothing is due.
  virtual Result<TrimReport> Trim(const LogRetention& retention) = 0;
};

// The change log kept on `driver`'s storage. Opening reads nothing; the first Append or
// Read finds its way.
std::shared_ptr<ChangeLog> OpenChangeLog(std::shared_ptr<StorageDriver> driver);

bool IsValidConsumerName(std::string_view name);

}  // namespace regfs
