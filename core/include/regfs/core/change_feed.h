// ChangeFeed: the registry's committed changes, shared by every process on one storage.
//
// Each process attaches the feed's Publisher() to its Registry (RegistryOptions.listeners);
// any process may read the feed from a cursor and learn of changes made by all of them
// (regfs-fused invalidates the kernel's caches with it; webhooks can be fed from it later).
//
// The feed is a hint, not a log of record: publishing never fails a registry operation,
// events are not synced to disk, and a reader can fall behind (old events are dropped to
// bound the disk used). Whenever a reader may have missed events it is told so (`gap`),
// and must then assume anything may have changed.
//
// Thread safety: all methods may be called concurrently, from several processes too.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "regfs/core/registry.h"
#include "regfs/core/status.h"

namespace regfs {

// A position in the feed: events strictly after it are still to be read. Compare cursors
// only for equality; their meaning belongs to the feed that returned them.
struct ChangeCursor {
  uint64_t segment = 0;
  uint64_t offset = 0;
  bool operator==(const ChangeCursor&) const = default;
};

struct ChangeBatch {
  std::vector<ChangeEvent> events;  // in the order they were published
  ChangeCursor next;                // pass to the next Read
  // Events may be missing before or among `events`: the reader fell behind and old events
  // were dropped, the feed was reset, or an event was cut off by a crash. The reader must
  // assume anything may have changed up to now.
  bool gap = false;
};

class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;
  // A listener that appends every change it hears of to the feed. Errors are reported to
  // the feed's error callback, never to the registry operation.
  virtual std::shared_ptr<ChangeListener> Publisher() = 0;
  // The cursor just after the newest event: a reader starting there sees only later events.
  virtual Result<ChangeCursor> End() = 0;
  // Up to `max_events` events published after `cursor`; none (and `next` == `cursor`) when
  // the reader is up to date. When the cursor no longer names a readable position, returns
  // gap with `next` at End(). Fails only when the feed cannot be read at all.
  virtual Result<ChangeBatch> Read(const ChangeCursor& cursor, size_t max_events) = 0;
};

// The feed of a filesystem storage: append-only journal segments in `directory`, one line
// per event, each written with a single write() on an O_APPEND descriptor (so writers in
// several processes never interleave). When a segment reaches `segment_bytes` a writer
// starts the next one and deletes all but the newest `max_segments`.
struct JournalOptions {
  std::string directory;  // REQUIRED; created if missing
  uint64_t segment_bytes = 1 << 20;
  size_t max_segments = 4;
  // Told about failures to publish (at most once per `error_interval`), for the log.
  std::function<void(const Status&)> on_error;
  std::chrono::seconds error_interval{60};
};

// NotFound or PermissionDenied when the directory is missing and cannot be created (e.g.
// read-only storage): the caller then does without a feed.
Result<std::shared_ptr<ChangeFeed>> OpenJournalFeed(JournalOptions options);

// Where the journal of a filesystem storage root lives: outside docker/registry/v2, so the
// data directory stays exactly what registry:2 reads and writes.
std::string JournalDirectory(const std::string& root_directory);

// Stable names of event kinds, as written in the journal ("tag_set", ...).
std::string_view ChangeKindName(ChangeEvent::Kind kind);
std::optional<ChangeEvent::Kind> ChangeKindFromName(std::string_view name);

}  // namespace regfs
