// Status and Result<T>: how every core operation reports success or failure.
//
// A Status carries a generic Code (what kind of failure, for callers that only need to know
// whether to retry or give up) and a Reason (which registry concept failed, so a front end
// can pick its protocol's error without parsing messages). Front ends translate a Status
// exactly once, at their edge: httpd to an HTTP status and OCI error code, fused to an errno.
// Core never mentions HTTP statuses or errno values.
//
// Status and Result are values: cheap to move, safe to share between threads once built.
#pragma once

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace regfs {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk,
    kNotFound,
    kAlreadyExists,
    kInvalidArgument,
    kFailedPrecondition,
    kPermissionDenied,
    kUnavailable,
    kIOError,
    kCorruption,
    kOutOfRange,
    kResourceExhausted,
  };

  // The registry concept a failure is about. kNone for plain storage or internal failures.
  enum class Reason {
    kNone,
    kBlobUnknown,
    kBlobUploadUnknown,
    kBlobUploadInvalid,
    kDigestInvalid,
    kManifestUnknown,
    kManifestInvalid,
    kManifestBlobUnknown,
    kManifestTooLarge,
    kNameInvalid,
    kNameUnknown,
    kTagInvalid,
    kSizeInvalid,
    kRangeInvalid,
    kUnsupported,  // the operation is switched off by configuration (deletes, read-only)
    kPaginationInvalid,
    kStorageFull,  // the storage has no space (or quota) left: ENOSPC, EDQUOT
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status NotFound(std::string msg, Reason r = Reason::kNone) {
    return Status(Code::kNotFound, r, std::move(msg));
  }
  static Status AlreadyExists(std::string msg, Reason r = Reason::kNone) {
    return Status(Code::kAlreadyExists, r, std::move(msg));
  }
  static Status InvalidArgument(std::string msg, Reason r = Reason::kNone) {
    return Status(Code::kInvalidArgument, r, std::move(msg));
  }
  static Status FailedPrecondition(std::string msg, Reason r = Reason::kNone) {
    return Status(Code::kFailedPrecondition, r, std::move(msg));
  }
  static Status PermissionDenied(std::string msg, Reason r = Reason::kNone) {
    return Status(Code::kPermissionDenied, r, std::move(msg));
  }
  static Status Unavailable(std::string msg, Reason r = Reason::kNone) {
    return Status(Code::kUnavailable, r, std::move(msg));
  }
  static Status IOError(std::string msg) {
    return Status(Code::kIOError, Reason::kNone, std::move(msg));
  }
  static Status Corruption(std::string msg) {
    return Status(Code::kCorruption, Reason::kNone, std::move(msg));
  }
  static Status OutOfRange(std::string msg, Reason r = Reason::kRangeInvalid) {
    return Status(Code::kOutOfRange, r, std::move(msg));
  }
  static Status ResourceExhausted(std::string msg, Reason r = Reason::kNone) {
    return Status(Code::kResourceExhausted, r, std::move(msg));
  }
  // An I/O failure described by errno, e.g. FromErrno("open /x", errno). ENOENT becomes NotFound.
  static Status FromErrno(const std::string& what, int err);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  Reason reason() const { return reason_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }

  // The same failure re-labelled with the registry concept it concerns, keeping the code.
  Status WithReason(Reason r) const { return Status(code_, r, message_); }
  // The same failure with `context` put before its message ("GET key: ...").
  Status WithContext(const std::string& context) const {
    return Status(code_, reason_, context + ": " + message_);
  }

  std::string ToString() const;

 private:
  Status(Code c, Reason r, std::string m) : code_(c), reason_(r), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  Reason reason_ = Reason::kNone;
  std::string message_;
};

// Either a value or a non-OK Status. Accessing value() of a failed Result is a programming
// error: it aborts, in every build, rather than read an empty value.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & {
    CheckOk();
    return *value_;
  }
  const T& value() const& {
    CheckOk();
    return *value_;
  }
  T&& value() && {
    CheckOk();
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void CheckOk() const {
    if (!ok()) {
      // A bug in the caller; say which error it ignored before the process goes.
      std::fprintf(stderr, "regfs: the value of a failed result was read: %s\n",
                   status_.ToString().c_str());
      std::abort();
    }
  }
  std::optional<T> value_;
  Status status_;
};

}  // namespace regfs

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define REGFS_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::regfs::Status regfs_status_ = (expr);        \
    if (!regfs_status_.ok()) return regfs_status_; \
  } while (0)
