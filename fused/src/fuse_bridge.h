// The libfuse low-level operations, each a thin translation between the kernel's requests
// and RegistryTree: node ids in, errno and attributes out, zero-copy reads for blobs.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "registry_tree.h"

namespace regfs::fused {

struct BridgeOptions {
  // Kernel cache lifetimes. Content-addressed attributes never change. Mutable names and
  // attributes (tags, folders) must show changes made by other processes: without a change
  // feed only short timeouts do that; with one (see change_notifier.h) the kernel is told
  // what changed and the timeout is only a safety net for writers that do not publish.
  double mutable_timeout_seconds = 0.5;
  double immutable_timeout_seconds = 3600;
  // Uploads grow with every chunk, and no event says so.
  double transient_timeout_seconds = 0.5;
  // The kernel is told of changes: let it keep directory listings and symlink targets too.
  bool cache_listings = false;
};

// Timeouts and caching when changes are invalidated explicitly.
inline constexpr double kMutableTimeoutWithFeedSeconds = 30;

// The operations table; `userdata` for fuse_session_new must point at a Bridge.
const fuse_lowlevel_ops& BridgeOperations();

struct Bridge {
  RegistryTree& tree;
  BridgeOptions options;
};

}  // namespace regfs::fused
