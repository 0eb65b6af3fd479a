// StorageDriver: the one seam between the registry model and where bytes live.
//
// Paths are driver-relative, "/"-separated, with no leading "/" and no "." or ".." components
// (callers build them from validated names and digests; drivers still refuse bad ones).
// The registry stores everything through these few operations, so a driver for an object
// store (no rename, no append) can implement them with copy and multipart writes.
//
// Thread safety: every method may be called concurrently from many threads. Readers and
// writers returned by a driver belong to one thread at a time.
//
// Errors: a missing path is always NotFound; other failures are IOError (or what fits).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "regfs/core/status.h"

namespace regfs {

struct FileInfo {
  uint64_t size = 0;
  bool is_directory = false;
  std::chrono::system_clock::time_point modified;
};

// Optional mechanisms a driver offers. Callers ask, they never cast.
struct DriverCapabilities {
  // FileReader::fd() returns a readable file descriptor positioned anywhere (use pread or
  // sendfile with an explicit offset). Lets front ends send blobs without copying them.
  bool fd_backed_reads = false;
  // Move() is an atomic rename; otherwise it is copy-then-delete.
  bool atomic_move = false;
  // SignedURL() works: a client can fetch an object straight from the store.
  bool presigned_urls = false;
};

class FileReader {
 public:
  virtual ~FileReader() = default;
  // Reads up to `size` bytes at the current position. Returns 0 at end of file.
  virtual Result<size_t> Read(char* buffer, size_t size) = 0;
  // Reads up to `size` bytes at `offset` without using or moving the current position
  // (FUSE reads at random offsets; an object store answers each with one ranged GET).
  // Returns 0 at or beyond the end. Short reads happen only at the end. Unlike the other
  // methods of a reader, ReadAt may be called from several threads at once.
  virtual Result<size_t> ReadAt(uint64_t offset, char* buffer, size_t size) = 0;
  // Total size of the file when it was opened.
  virtual uint64_t size() const = 0;
  // A file descriptor for zero-copy sends, or -1. Valid while this reader lives.
  virtual int fd() const { return -1; }
};

class FileWriter {
 public:
  virtual ~FileWriter() = default;
  // Appends bytes. On failure the file may hold a prefix of them; callers re-check size().
  virtual Status Write(const char* data, size_t size) = 0;
  // Bytes in the file, including those written before this writer was opened (append mode).
  virtual uint64_t size() const = 0;
  // Makes everything written durable (fsync). The writer stays usable.
  virtual Status Commit() = 0;
  // Publishes what was written: on success the path holds all of it. On an object store
  // nothing of a writer is visible before Close; on the filesystem writes show at once.
  // A writer dropped without Close (or whose Close fails) leaves the path with its old
  // content or, on the filesystem, a prefix of the new: callers that must know re-Stat.
  // After Close only size() may be called.
  virtual Status Close() = 0;
};

// An exclusive lock granted by StorageDriver::Lock; released when destroyed.
class StorageLock {
 public:
  virtual ~StorageLock() = default;
  // False once the holder can no longer be sure it still holds the lock: an object store's
  // lease that could not be renewed in time (others may take it over once it expires) or
  // was taken over. A holder checks it before each write it makes under the lock and
  // stops, with an error, when it is false: that write could interleave with the next
  // holder's. Locks a process loses only by dying (flock) are always held.
  virtual bool held() const { return true; }
};

class StorageDriver {
 public:
  virtual ~StorageDriver() = default;

  virtual DriverCapabilities capabilities() const = 0;
  // A short name for logs, e.g. "filesystem:/var/lib/registry".
  virtual std::string Describe() const = 0;
  // Requests sent to a remote store so far, retries included (0 for local drivers): what
  // registry operations cost in backend calls, for tests and metrics.
  virtual uint64_t requests_sent() const { return 0; }

  virtual Result<FileInfo> Stat(std::string_view path) = 0;

  // Whole small objects (links, manifests). Fails with ResourceExhausted when the object is
  // larger than max_size, so a corrupt or hostile file cannot exhaust memory.
  virtual Result<std::string> GetContent(std::string_view path, size_t max_size) = 0;
  // Replaces the object atomically: a reader sees the old content or the new, never a part.
  // With `durable`, the new content is on stable storage before it replaces the old one
  // (the replacement itself becomes durable in order with later changes).
  virtual Status PutContent(std::string_view path, std::string_view content, bool durable) = 0;

  // Creates the object only if nothing is at `path`: of several creators racing for one
  // path, in any processes, exactly one succeeds; the others get AlreadyExists and change
  // nothing. The content shows whole; with `durable` it is on stable storage before it
  // shows (without, it survives a crash of the process but maybe not of the machine). For
  // records that must never be overwritten, such as the change log's entries. (A Delete
  // frees the path again.)
  virtual Status CreateContent(std::string_view path, std::string_view content,
                               bool durable = true) = 0;

  // Opens for reading at `offset`. NotFound if missing; a directory is NotFound too.
  virtual Result<std::unique_ptr<FileReader>> OpenReader(std::string_view path,
                                                         uint64_t offset) = 0;
  // Opens for writing, creating parents. With `append` the existing content is kept and
  // writes go to its end; without, the file is truncated (on an object store: replaced on
  // Close). One writer per path at a time: callers serialise writers of a path.
  virtual Result<std::unique_ptr<FileWriter>> OpenWriter(std::string_view path, bool append) = 0;

  // Names (not paths) of the direct children of a directory, in no particular order.
  // Directories are implied: one exists exactly while something lies below it, on every
  // driver. NotFound when the directory does not exist. An object store's listing may lag
  // its writes (eventual consistency of some stores); the filesystem's never does.
  virtual Result<std::vector<std::string>> List(std::string_view path) = 0;

  // Moves a file, replacing `to` if it exists. Readers see either the old or the new object.
  virtual Status Move(std::string_view from, std::string_view to) = 0;

  // Deletes a file or a whole directory tree. NotFound if nothing was there.
  virtual Status Delete(std::string_view path) = 0;

  // Waits for, then holds, the exclusive lock called `name` (any text): one holder at a time
  // among every thread of every process using this storage, so writers can keep a change of
  // several objects (a manifest and the tags on it) from interleaving with another. Distinct
  // names may share a lock. A holder that dies releases it. The filesystem driver locks
  // files under <root>/regfs/locks/ with flock(2), outside registry:2's tree; an object store
  // will need a lease of its own (a conditional write or a lock service).
  virtual Result<std::unique_ptr<StorageLock>> Lock(std::string_view name) = 0;

  // A lease for a role one process plays at a time among all using this storage (e.g.
  // delivering one webhook endpoint's events), held for as long as the holder keeps the
  // returned object. Unlike Lock it never waits and never shares: each name is its own
  // lease, apart from every Lock. FailedPrecondition when another holder has it now. A
  // holder that dies loses it: on the filesystem at once (flock on regfs/leases/<hash>), on
  // an object store once its expiry passes (seconds; the holder renews it meanwhile).
  virtual Result<std::unique_ptr<StorageLock>> TryLease(std::string_view name) = 0;

  // Removes what interrupted writes of this driver left in the directory `dir` (files List
  // never shows, e.g. the filesystem's temporary files of a process killed mid-write) that
  // were last changed before `cutoff`; with `dry_run` only counts them. Returns how many.
  // Drivers whose writes leave nothing behind there return 0.
  virtual Result<uint64_t> RemoveLeftovers(std::string_view dir,
                                           std::chrono::system_clock::time_point cutoff,
                                           bool dry_run) {
    (void)dir;
    (void)cutoff;
    (void)dry_run;
    return uint64_t{0};
  }

  // A URL that lets anyone holding it GET the object at `path` for `ttl`, without further
  // credentials (capabilities().presigned_urls). FailedPrecondition when the driver has none.
  virtual Result<std::string> SignedURL(std::string_view path, std::chrono::seconds ttl) {
    (void)path;
    (void)ttl;
    return Status::FailedPrecondition(Describe() + " cannot sign URLs");
  }
};

// The local POSIX filesystem below `root` (created if missing). Fails if root can't be
// created or written.
Result<std::shared_ptr<StorageDriver>> NewFilesystemDriver(const std::string& root);
// Everything in process memory; for tests and throwaway registries.
std::shared_ptr<StorageDriver> NewInMemoryDriver();

// True when `path` is a well-formed driver path (see the file comment).
bool IsValidDriverPath(std::string_view path);

}  // namespace regfs
