// StorageDriver over a local POSIX filesystem. Atomic replacement is temp file + rename in
// the same directory; durability is fdatasync of the file before the rename. Temp files are named
// ".tmp-*" beside their target; a crash can leave one behind, which nothing reads.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "drivers/name_hash.h"
#include "regfs/core/storage_driver.h"

namespace regfs {
namespace {

std::string ParentOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

// Creates every missing directory of `dir` (an absolute path).
Status MakeDirs(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    return S_ISDIR(st.st_mode) ? Status::Ok() : Status::FromErrno("mkdir " + dir, ENOTDIR);
  }
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::FromErrno("mkdir " + prefix, errno);
    }
  }
  return Status::Ok();
}

std::string TempName(const std::string& target) {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}());
  return ParentOf(target) + "/.tmp-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter.fetch_add(1)) + "-" + std::to_string(rng() % 1000000007ULL);
}

Status WriteAll(int fd, const char* data, size_t size, const std::string& what) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write " + what, errno);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

class FdReader final : public FileReader {
 public:
  FdReader(int fd, uint64_t size) : fd_(fd), size_(size) {}
  ~FdReader() override { ::close(fd_); }
  Result<size_t> Read(char* buffer, size_t size) override {
    while (true) {
      ssize_t n = ::read(fd_, buffer, size);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return Status::FromErrno("read", errno);
    }
  }
  Result<size_t> ReadAt(uint64_t offset, char* buffer, size_t size) override {
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pread(fd_, buffer + done, size - done, static_cast<off_t>(offset + done));
      if (n == 0) break;
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno("read", errno);
      }
      done += static_cast<size_t>(n);
    }
    return done;
  }
  uint64_t size() const override { return size_; }
  int fd() const override { return fd_; }

 private:
  int fd_;
  uint64_t size_;
};

class FdWriter final : public FileWriter {
 public:
  FdWriter(int fd, uint64_t size, std::string path)
      : fd_(fd), size_(size), path_(std::move(path)) {}
  ~FdWriter() override { ::close(fd_); }
  Status Write(const char* data, size_t size) override {
    Status s = WriteAll(fd_, data, size, path_);
    if (s.ok()) {
      size_ += size;
    } else {
      struct stat st;
      if (::fstat(fd_, &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
    }
    return s;
  }
  uint64_t size() const override { return size_; }
  Status Commit() override {
    if (::fdatasync(fd_) != 0) return Status::FromErrno("fdatasync " + path_, errno);
    return Status::Ok();
  }
  // Writes went straight to the file: there is nothing left to publish.
  Status Close() override { return Status::Ok(); }

 private:
  int fd_;
  uint64_t size_;
  std::string path_;
};

// A flock(2) on an open lock file; closing the descriptor releases it, also when the
// process dies.
class FlockLock final : public StorageLock {
 public:
  explicit FlockLock(int fd) : fd_(fd) {}
  ~FlockLock() override { ::close(fd_); }

 private:
  int fd_;
};

// The lock file for a name: 256 files at most, named by a hash every process computes alike
// (FNV-1a, not std::hash, whose values are not promised to agree between builds).
std::string LockFileName(std::string_view name) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(Fnv1a64(name) % 256));
  return buf;
}

class FilesystemDriver final : public StorageDriver {
 public:
  explicit FilesystemDriver(std::string root) : root_(std::move(root)) {}

  DriverCapabilities capabilities() const override {
    return DriverCapabilities{.fd_backed_reads = true, .atomic_move = true};
  }
  std::string Describe() const override { return "filesystem:" + root_; }

  Result<FileInfo> Stat(std::string_view path) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::string full = Full(path);
    struct stat st;
    if (::stat(full.c_str(), &st) != 0) return Status::FromErrno("stat " + full, errno);
    FileInfo info;
    info.size = static_cast<uint64_t>(st.st_size);
    info.is_directory = S_ISDIR(st.st_mode);
    info.modified = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(st.st_mtim.tv_sec) +
            std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
    return info;
  }

  Result<std::string> GetContent(std::string_view path, size_t max_size) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::string full = Full(path);
    int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("open " + full, errno);
    std::string out;
    char buf[8192];
    while (true) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        // Reading a directory: treat as absent, like every other "not a file" case.
        return err == EISDIR ? Status::NotFound(full + " is a directory")
                             : Status::FromErrno("read " + full, err);
      }
      if (n == 0) break;
      if (out.size() + static_cast<size_t>(n) > max_size) {
        ::close(fd);
        return Status::ResourceExhausted(full + " is larger than " + std::to_string(max_size) +
                                         " bytes");
      }
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  Status PutContent(std::string_view path, std::string_view content, bool durable) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    const std::string full = Full(path);
    // A folder removed between writing the temporary file and renaming it (a collector
    // deleting a blob's folder while a writer stores those bytes anew) takes the temporary
    // file with it: write it again, into the folder made anew.
    for (int attempt = 1;; ++attempt) {
      auto tmp = WriteTemporary(full, content, durable);
      if (!tmp.ok()) return tmp.status();
      if (::rename(tmp->c_str(), full.c_str()) == 0) break;
      int err = errno;
      Status s = Status::FromErrno("rename " + *tmp, err);
      ::unlink(tmp->c_str());
      if (err != ENOENT || attempt == 3) return s;
    }
    // No directory fsync: journaling filesystems commit renames in order, so a link
    // renamed after this one can never survive a power cut that this one does not.
    return Status::Ok();
  }

  Status CreateContent(std::string_view path, std::string_view content, bool durable) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    const std::string full = Full(path);
    auto tmp = WriteTemporary(full, content, durable);
    if (!tmp.ok()) return tmp.status();
    // link(2), unlike rename(2), never replaces: the path's first creator wins, whole.
    Status s = Status::Ok();
    if (::link(tmp->c_str(), full.c_str()) != 0) {
      s = errno == EEXIST ? Status::AlreadyExists(full + " exists")
                          : Status::FromErrno("link " + full, errno);
    }
    ::unlink(tmp->c_str());
    return s;
  }

  Result<std::unique_ptr<FileReader>> OpenReader(std::string_view path, uint64_t offset) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::string full = Full(path);
    int fd = ::open(full.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("open " + full, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
      ::close(fd);
      return Status::NotFound(full + " is not a file");
    }
    if (offset > 0 && ::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
      int err = errno;
      ::close(fd);
      return Status::FromErrno("seek " + full, err);
    }
    return std::unique_ptr<FileReader>(new FdReader(fd, static_cast<uint64_t>(st.st_size)));
  }

  Result<std::unique_ptr<FileWriter>> OpenWriter(std::string_view path, bool append) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::string full = Full(path);
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
    int fd = ::open(full.c_str(), flags, 0644);
    if (fd < 0 && errno == ENOENT) {
      REGFS_RETURN_IF_ERROR(MakeDirs(ParentOf(full)));
      fd = ::open(full.c_str(), flags, 0644);
    }
    if (fd < 0) return Status::FromErrno("open " + full, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return Status::FromErrno("stat " + full, err);
    }
    return std::unique_ptr<FileWriter>(new FdWriter(fd, static_cast<uint64_t>(st.st_size), full));
  }

  Result<std::vector<std::string>> List(std::string_view path) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::string full = Full(path);
    DIR* dir = ::opendir(full.c_str());
    if (dir == nullptr) return Status::FromErrno("opendir " + full, errno);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(dir)) {
      std::string_view n = e->d_name;
      if (n == "." || n == ".." || n.starts_with(".tmp-")) continue;
      names.emplace_back(n);
    }
    ::closedir(dir);
    return names;
  }

  Result<uint64_t> RemoveLeftovers(std::string_view path,
                                   std::chrono::system_clock::time_point cutoff,
                                   bool dry_run) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::string full = Full(path);
    DIR* dir = ::opendir(full.c_str());
    if (dir == nullptr) return Status::FromErrno("opendir " + full, errno);
    std::vector<std::string> temporaries;
    while (struct dirent* e = ::readdir(dir)) {
      if (std::string_view(e->d_name).starts_with(".tmp-")) temporaries.emplace_back(e->d_name);
    }
    ::closedir(dir);
    uint64_t removed = 0;
    for (const std::string& name : temporaries) {
      const std::string file = full + "/" + name;
      struct stat st;
      if (::lstat(file.c_str(), &st) != 0) continue;
      // A writer still filling it keeps changing it; only an old one is debris.
      if (std::chrono::system_clock::from_time_t(st.st_mtime) >= cutoff) continue;
      if (dry_run || ::unlink(file.c_str()) == 0) ++removed;
    }
    return removed;
  }

  Status Move(std::string_view from, std::string_view to) override {
    if (!IsValidDriverPath(from)) return BadPath(from);
    if (!IsValidDriverPath(to)) return BadPath(to);
    std::string src = Full(from), dst = Full(to);
    if (::rename(src.c_str(), dst.c_str()) == 0) return Status::Ok();
    if (errno != ENOENT) return Status::FromErrno("rename " + src, errno);
    struct stat st;
    if (::stat(src.c_str(), &st) != 0) return Status::FromErrno("rename " + src, errno);
    REGFS_RETURN_IF_ERROR(MakeDirs(ParentOf(dst)));
    if (::rename(src.c_str(), dst.c_str()) != 0) return Status::FromErrno("rename " + src, errno);
    return Status::Ok();
  }

  Status Delete(std::string_view path) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    return RemoveTree(Full(path));
  }

  Result<std::unique_ptr<StorageLock>> Lock(std::string_view name) override {
    // Beside docker/registry/v2, not in it: registry:2 reads that tree and nothing else.
    const std::string dir = root_ + "/regfs/locks";
    const std::string path = dir + "/" + LockFileName(name);
    int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT) {
      REGFS_RETURN_IF_ERROR(MakeDirs(dir));
      fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    }
    if (fd < 0) return Status::FromErrno("open lock " + path, errno);
    // Each call opens the file anew, so threads of one process exclude each other too.
    // Read-only is enough for flock, and works on a lock file another user created.
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Status::FromErrno("flock " + path, err);
    }
    return std::unique_ptr<StorageLock>(new FlockLock(fd));
  }

  Result<std::unique_ptr<StorageLock>> TryLease(std::string_view name) override {
    // One file per name (leases are few: one per role), apart from Lock's shared files.
    const std::string dir = root_ + "/regfs/leases";
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(Fnv1a64(name)));
    const std::string path = dir + "/" + hash;
    int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT) {
      REGFS_RETURN_IF_ERROR(MakeDirs(dir));
      fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    }
    if (fd < 0) return Status::FromErrno("open lease " + path, errno);
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return Status::FailedPrecondition("lease " + std::string(name) + " is held");
      }
      return Status::FromErrno("flock " + path, err);
    }
    return std::unique_ptr<StorageLock>(new FlockLock(fd));
  }

 private:
  static Status BadPath(std::string_view path) {
    return Status::InvalidArgument("invalid storage path '" + std::string(path) + "'");
  }
  std::string Full(std::string_view path) const { return root_ + "/" + std::string(path); }

  // Writes `content` to a new temporary file beside `full` (creating the parents), synced
  // when `durable`, and returns its name; leaves nothing behind when it fails.
  Result<std::string> WriteTemporary(const std::string& full, std::string_view content,
                                     bool durable) {
    std::string tmp = TempName(full);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT) {
      REGFS_RETURN_IF_ERROR(MakeDirs(ParentOf(full)));
      fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    }
    if (fd < 0) return Status::FromErrno("create " + tmp, errno);
    Status s = WriteAll(fd, content.data(), content.size(), tmp);
    if (s.ok() && durable && ::fdatasync(fd) != 0) s = Status::FromErrno("fdatasync " + tmp, errno);
    ::close(fd);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    return tmp;
  }

  static Status RemoveTree(const std::string& full) {
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0) return Status::FromErrno("stat " + full, errno);
    if (S_ISDIR(st.st_mode)) {
      DIR* dir = ::opendir(full.c_str());
      if (dir == nullptr) return Status::FromErrno("opendir " + full, errno);
      std::vector<std::string> children;
      while (struct dirent* e = ::readdir(dir)) {
        std::string_view n = e->d_name;
        if (n != "." && n != "..") children.emplace_back(n);
      }
      ::closedir(dir);
      for (const auto& c : children) {
        Status s = RemoveTree(full + "/" + c);
        if (!s.ok() && !s.IsNotFound()) return s;
      }
      if (::rmdir(full.c_str()) != 0 && errno != ENOENT)
        return Status::FromErrno("rmdir " + full, errno);
      return Status::Ok();
    }
    if (::unlink(full.c_str()) != 0) return Status::FromErrno("unlink " + full, errno);
    return Status::Ok();
  }

  std::string root_;
};

}  // namespace

Result<std::shared_ptr<StorageDriver>> NewFilesystemDriver(const std::string& root_in) {
  std::string root = root_in;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (root.empty() || root.front() != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) == nullptr) return Status::FromErrno("getcwd", errno);
    root = std::string(cwd) + "/" + root;
  }
  Status s = MakeDirs(root);
  if (!s.ok()) {
    return Status::PermissionDenied("storage root " + root + " cannot be created: " + s.message());
  }
  if (::access(root.c_str(), W_OK | X_OK) != 0) {
    return Status::PermissionDenied("storage root " + root +
                                    " is not writable: " + std::strerror(errno));
  }
  return std::shared_ptr<StorageDriver>(new FilesystemDriver(root));
}

}  // namespace regfs
