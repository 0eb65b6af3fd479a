// Garbage collection while the registry serves: what Registry::CollectGarbage takes and
// reports. How it stays safe with writers in any process is in core/src/sweep_fence.h and
// docs/gc.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace regfs {

// Where a collection is, for progress bars and log lines.
struct GcProgress {
  enum class Phase { kMark, kSweepBlobs, kPurgeUploads };
  Phase phase;
  uint64_t done = 0;   // repositories (mark) or blobs (sweep) handled so far
  uint64_t total = 0;  // how many there are (0: not known yet)
  std::chrono::steady_clock::duration elapsed{};  // since the phase started
};

const char* PhaseName(GcProgress::Phase phase);

struct GcOptions {
  // Anything written (uploaded, linked, pushed) more recently than this is kept even when
  // nothing refers to it yet: a push in flight has uploaded its layers but not yet put the
  // manifest. 0 deletes exactly what registry:2's offline garbage-collect would.
  std::chrono::seconds grace{3600};
  // Also remove manifests that no tag reaches, directly or through an index (children of
  // kept indexes and referrers of kept manifests stay).
  bool delete_untagged = false;
  // Expiry of a pull-through cache's content: for a repository this gives a time for, the
  // manifests neither pulled (Registry::NoteManifestUse) nor stored since then go, and the
  // tags on them, unless something kept reaches them (an index's children, a subject's
  // referrers) or they are within the grace window. Unset, or no time for a repository:
  // its tags keep what they reach.
  std::function<std::optional<std::chrono::system_clock::time_point>(const std::string& repo)>
      expire_unused_before;
  // Report what would go; change nothing.
  bool dry_run = false;
  // Also remove uploads started longer ago than this (unset: leave uploads alone).
  std::optional<std::chrono::seconds> purge_uploads_older_than;
  // One line per decision, in registry:2's words ("repo: marking manifest sha256:...",
  // "blob eligible for deletion: sha256:..."). May be empty.
  std::function<void(const std::string&)> on_line;
  // Called as work advances (at most every few hundred items). May be empty.
  std::function<void(const GcProgress&)> on_progress;
  // For tests: called once blobs are condemned and before the collector looks for links
  // made meanwhile, and again before it takes its verdicts.
  std::function<void()> after_condemn;
  std::function<void()> before_verdicts;
};

struct GcReport {
  uint64_t repositories = 0;        // repositories walked
  uint64_t manifests_marked = 0;    // kept manifest revisions
  uint64_t blobs_marked = 0;        // distinct digests kept (manifests' bytes included)
  uint64_t manifests_deleted = 0;   // revisions removed (--delete-untagged, expiry)
  uint64_t tags_expired = 0;        // tags of a cache's manifests unused for its ttl
  uint64_t layer_links_deleted = 0; // _layers links to blobs the repository no longer uses
  uint64_t blobs_deleted = 0;       // blobs (and manifests' bytes) removed from the store
  uint64_t bytes_freed = 0;
  uint64_t blobs_rescued = 0;       // condemned, then linked by a writer meanwhile: kept
  uint64_t repositories_removed = 0;
  uint64_t uploads_purged = 0;
  uint64_t leftovers_removed = 0;   // temporary files of interrupted writes
  std::chrono::steady_clock::duration duration{};
};

}  // namespace regfs
