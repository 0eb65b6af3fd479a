// How a garbage collection reads to an operator: progress and summary lines, shared by the
// garbage-collect command and the collection the server schedules.
#pragma once

#include <string>

#include "regfs/core/garbage_collection.h"

namespace regfs::httpd {

// "1.5 GiB", "312 KiB", "12 B".
std::string FormatBytes(uint64_t bytes);
// "42s", "3m07s", "1h02m".
std::string FormatDuration(std::chrono::steady_clock::duration d);

// "mark: 120/1000 repositories, 48/s, about 18s left" (the rate and time left once known).
std::string FormatProgress(const GcProgress& progress);
// The same as a bar for a terminal line: "mark  [#####.....]  120/1000  48/s  ETA 18s".
std::string FormatProgressBar(const GcProgress& progress, size_t width);

// "1000 repositories: 9990 manifests and 12000 blobs marked; 10 manifests, 25 blobs
// (1.2 GiB), 40 layer links, 2 repositories, 3 uploads and 1 leftover file deleted; 0
// rescued; in 4s". `dry_run` says "would delete".
std::string FormatSummary(const GcReport& report, bool dry_run);

}  // namespace regfs::httpd
