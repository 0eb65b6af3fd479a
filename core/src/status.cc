#include "regfs/core/status.h"

#include <cerrno>
#include <cstring>

namespace regfs {

Status Status::FromErrno(const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return NotFound(std::move(msg));
    case EEXIST:
    case ENOTEMPTY:
      return AlreadyExists(std::move(msg));
    case EACCES:
    case EPERM:
    case EROFS:
      return PermissionDenied(std::move(msg));
    case ENOSPC:
    case EDQUOT:
      return ResourceExhausted(std::move(msg), Reason::kStorageFull);
    default:
      return IOError(std::move(msg));
  }
}

std::string Status::ToString() const {
  static const char* const kNames[] = {"OK",
                                       "NotFound",
                                       "AlreadyExists",
                                       "InvalidArgument",
                                       "FailedPrecondition",
                                       "PermissionDenied",
                                       "Unavailable",
                                       "IOError",
                                       "Corruption",
                                       "OutOfRange",
                                       "ResourceExhausted"};
  std::string s = kNames[static_cast<int>(code_)];
  if (!message_.empty()) s += ": " + message_;
  return s;
}

}  // namespace regfs
