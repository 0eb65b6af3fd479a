#include "proxy/blob_fetch.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <streambuf>
#include <thread>
#include <vector>

#include "proxy/upstream_client.h"

namespace regfs::httpd::proxy {

namespace {

constexpr size_t kChunk = 256 * 1024;

// An anonymous file in `dir`: nothing is left behind by a crash.
Result<int> OpenSpoolFile(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
    return Status::IOError("cannot create a spool file in " + dir + ": " + std::strerror(errno));
  }
  std::string path = dir + "/fetch-XXXXXX";
  fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) {
    return Status::IOError("cannot create a spool file in " + dir + ": " + std::strerror(errno));
  }
  ::unlink(path.c_str());
  return fd;
}

// The upload's input: reads the upstream body (never past its announced size), writes
// each chunk to the spool file and reports it, so clients can have it while it is stored.
class TeeBuf : public std::streambuf {
 public:
  TeeBuf(std::istream& upstream, uint64_t size, int spool_fd,
         std::function<void(uint64_t)> arrived)
      : upstream_(upstream), size_(size), spool_fd_(spool_fd), arrived_(std::move(arrived)),
        buf_(kChunk) {}

  uint64_t total() const { return total_; }
  const std::string& error() const { return error_; }

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    if (total_ >= size_ || !error_.empty()) return traits_type::eof();
    const auto want = static_cast<std::streamsize>(std::min<uint64_t>(buf_.size(), size_ - total_));
    upstream_.read(buf_.data(), want);
    const auto n = static_cast<size_t>(upstream_.gcount());
    if (n == 0) {
      error_ = upstream_.bad() ? "the upstream connection failed"
                               : "the upstream closed the connection early";
      return traits_type::eof();
    }
    for (size_t written = 0; written < n;) {
      ssize_t w = ::pwrite(spool_fd_, buf_.data() + written, n - written,
                           static_cast<off_t>(total_ + written));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        error_ = std::string("cannot write the spool file: ") + std::strerror(errno);
        return traits_type::eof();
      }
      written += static_cast<size_t>(w);
    }
    total_ += n;
    arrived_(total_);
    setg(buf_.data(), buf_.data(), buf_.data() + n);
    return traits_type::to_int_type(*gptr());
  }

 private:
  std::istream& upstream_;
  const uint64_t size_;
  const int spool_fd_;
  std::function<void(uint64_t)> arrived_;
  std::vector<char> buf_;
  uint64_t total_ = 0;
  std::string error_;
};

}  // namespace

BlobFetch::BlobFetch(Registry& registry, std::string repo, Digest digest,
                     std::unique_ptr<UpstreamBody> body, std::string upload_id, int spool_fd)
    : registry_(registry), repo_(std::move(repo)), digest_(std::move(digest)),
      size_(body->size()), spool_fd_(spool_fd), body_(std::move(body)),
      upload_id_(std::move(upload_id)) {}

BlobFetch::~BlobFetch() { ::close(spool_fd_); }

Result<std::shared_ptr<BlobFetch>> BlobFetch::Open(Registry& registry, const std::string& repo,
                                                   const Digest& digest, const Opener& open,
                                                   const std::string& spool_directory) {
  auto body = open();
  if (!body.ok()) return body.status();
  auto fd = OpenSpoolFile(spool_directory);
  if (!fd.ok()) return fd.status();
  auto upload = registry.StartUpload(repo);
  if (!upload.ok()) {
    ::close(*fd);
    return upload.status();
  }
  return std::shared_ptr<BlobFetch>(
      new BlobFetch(registry, repo, digest, std::move(*body), upload->id, *fd));
}

void BlobFetch::Launch(std::function<void(const Status&)> done) {
  std::thread([self = shared_from_this(), done = std::move(done)]() mutable {
    self->Run(std::move(done));
  }).detach();
}

void BlobFetch::Arrived(uint64_t total) {
  {
    std::lock_guard lock(mu_);
    spooled_ = total;
  }
  changed_.notify_all();
}

void BlobFetch::Finish(Status status) {
  {
    std::lock_guard lock(mu_);
    finished_ = true;
    result_ = std::move(status);
  }
  changed_.notify_all();
}

void BlobFetch::Run(std::function<void(const Status&)> done) {
  TeeBuf tee(body_->body(), size_, spool_fd_, [this](uint64_t total) { Arrived(total); });
  std::istream in(&tee);
  auto appended = registry_.AppendUpload(repo_, upload_id_, in, 0);
  Status status;
  if (!tee.error().empty() || (appended.ok() && tee.total() != size_)) {
    status = Status::Unavailable("fetching blob " + digest_.ToString() + " failed after " +
                                 std::to_string(tee.total()) + " of " + std::to_string(size_) +
                                 " bytes: " + (tee.error().empty() ? "short" : tee.error()));
  } else if (!appended.ok()) {
    status = appended.status();
  }
  if (!status.ok()) {
    (void)registry_.CancelUpload(repo_, upload_id_);
  } else if (auto blob = registry_.CommitUpload(repo_, upload_id_, digest_); !blob.ok()) {
    // CommitUpload removed the upload: nothing of these bytes stays.
    status = blob.status().reason() == Status::Reason::kDigestInvalid
                 ? Status::Unavailable("the upstream sent content for blob " +
                                       digest_.ToString() +
                                       " that does not match its digest: nothing was stored")
                 : blob.status();
  }
  body_.reset();  // the upstream connection goes before anyone hears we are done
  // Whoever merges fetches forgets this one before its readers hear the verdict: a pull
  // that comes after a failure starts afresh instead of joining it.
  if (done) done(status);
  Finish(status);
}

Result<size_t> BlobFetch::Read(uint64_t offset, char* buf, size_t len,
                               std::chrono::milliseconds timeout) {
  uint64_t readable;
  {
    std::unique_lock lock(mu_);
    auto limit = [&] {
      if (finished_ && result_.ok()) return size_;
      // The last byte waits for the verdict.
      return size_ == 0 ? uint64_t{0} : std::min(spooled_, size_ - 1);
    };
    const bool settled = changed_.wait_for(lock, timeout, [&] {
      return (finished_ && !result_.ok()) || limit() > offset || (finished_ && offset >= size_);
    });
    if (finished_ && !result_.ok()) return result_;
    if (!settled) {
      return Status::Unavailable("fetching blob " + digest_.ToString() + " stalled at byte " +
                                 std::to_string(offset));
    }
    readable = limit();
  }
  if (offset >= readable) return size_t{0};
  const size_t want = static_cast<size_t>(std::min<uint64_t>(len, readable - offset));
  while (true) {
    ssize_t n = ::pread(spool_fd_, buf, want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::IOError(std::string("reading the spool file: ") + std::strerror(errno));
    return static_cast<size_t>(n);
  }
}

Status BlobFetch::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!changed_.wait_for(lock, timeout, [&] { return finished_; })) {
    return Status::Unavailable("fetching blob " + digest_.ToString() + " takes longer than " +
                               std::to_string(timeout.count() / 1000) + " s");
  }
  return result_;
}

namespace {

class FetchReader : public FileReader {
 public:
  FetchReader(std::shared_ptr<BlobFetch> fetch, std::chrono::milliseconds timeout)
      : fetch_(std::move(fetch)), timeout_(timeout) {}
  Result<size_t> Read(char* buffer, size_t size) override {
    auto n = fetch_->Read(position_, buffer, size, timeout_);
    if (n.ok()) position_ += *n;
    return n;
  }
  Result<size_t> ReadAt(uint64_t offset, char* buffer, size_t size) override {
    return fetch_->Read(offset, buffer, size, timeout_);
  }
  uint64_t size() const override { return fetch_->size(); }

 private:
  std::shared_ptr<BlobFetch> fetch_;
  const std::chrono::milliseconds timeout_;
  uint64_t position_ = 0;
};

}  // namespace

std::unique_ptr<FileReader> BlobFetch::NewReader(std::chrono::milliseconds timeout) {
  return std::make_unique<FetchReader>(shared_from_this(), timeout);
}

}  // namespace regfs::httpd::proxy
