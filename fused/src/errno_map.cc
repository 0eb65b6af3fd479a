#include "errno_map.h"

#include <cerrno>

namespace regfs::fused {

int ErrnoFor(const Status& s) {
  using C = Status::Code;
  using R = Status::Reason;
  if (s.ok()) return 0;
  // Switched off by configuration (deletes disabled, read-only registry): not permitted.
  if (s.reason() == R::kUnsupported) return EPERM;
  switch (s.code()) {
    case C::kOk:
      return 0;
    case C::kNotFound:
      return ENOENT;
    case C::kAlreadyExists:
      return EEXIST;
    case C::kInvalidArgument:
      return EINVAL;
    case C::kOutOfRange:
      return EINVAL;
    case C::kFailedPrecondition:
      return EPERM;
    case C::kPermissionDenied:
      return EACCES;
    case C::kResourceExhausted:
      return ENOSPC;
    case C::kUnavailable:
      return EAGAIN;
    case C::kIOError:
    case C::kCorruption:
      return EIO;
  }
  return EIO;
}

}  // namespace regfs::fused
