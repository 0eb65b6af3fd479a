// The one place where a core Status becomes an errno for the kernel.
#pragma once

#include "regfs/core/status.h"

namespace regfs::fused {

// A positive errno (ENOENT, EINVAL, EPERM, ...) for a failed Status; 0 for OK.
int ErrnoFor(const Status& status);

}  // namespace regfs::fused
