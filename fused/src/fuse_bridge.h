// The libfuse low-level operations, each a thin translation between the kernel's requests
// and RegistryTree: node ids in, errno and attributes out, zero-copy reads for blobs.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "registry_tree.h"

namespace regfs::fused {

struct BridgeOptions {
  // Kernel cache lifetimes: mutable names (tags, folders) must show changes made by other
  // processes quickly; content-addressed attributes never change.
  double mutable_timeout_seconds = 0.5;
  double immutable_timeout_seconds = 3600;
};

// The operations table; `userdata` for fuse_session_new must point at a Bridge.
const fuse_lowlevel_ops& BridgeOperations();

struct Bridge {
  RegistryTree& tree;
  BridgeOptions options;
};

}  // namespace regfs::fused
