// The change feed of a filesystem storage: numbered journal segments in one directory.
//
//   <directory>/00000000000000000001.journal   {"kind":"tag_set","repository":"a/b",...}\n
//   <directory>/00000000000000000002.journal   ...
//
// Writers (any number, in any number of processes) append one line per event with a single
// write() on an O_APPEND descriptor: the kernel serialises appends to one file, so lines
// never interleave. The newest segment is the current one. A writer that finds it full
// (>= segment_bytes) creates the next one and deletes the oldest beyond max_segments.
//
// The one race of that scheme: a writer that saw the segment not yet full appends after a
// reader already moved on to the next segment, and the reader never sees the line. So
// writers hold a shared flock on the segment from the size check to the write, and a reader
// leaving a segment first takes the exclusive lock once: after that, nobody can write there.
//
// A crash inside write() (or a full disk) can leave a line without its newline. The next
// writer starts its line with a newline, so the torn piece stays a line of its own that
// readers skip, reporting a gap.
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <sstream>

#include "change_event_json.h"
#include "regfs/core/change_feed.h"

namespace regfs {

namespace {

constexpr std::string_view kSegmentSuffix = ".journal";
// Lines stay far below the size the kernel appends in one piece on local filesystems.
constexpr size_t kMaxLineBytes = 4096;
// How much of a segment one Read looks at per pass.
constexpr size_t kReadChunkBytes = 1 << 20;

std::string SegmentName(uint64_t number) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(number));
  return buf + std::string(kSegmentSuffix);
}

std::optional<uint64_t> SegmentNumber(std::string_view name) {
  if (!name.ends_with(kSegmentSuffix)) return std::nullopt;
  name.remove_suffix(kSegmentSuffix.size());
  if (name.empty() || name.size() > 20) return std::nullopt;
  uint64_t n = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

// Segment numbers present in `dir`, ascending.
Result<std::vector<uint64_t>> ListSegments(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Status::FromErrno("journal " + dir, errno);
  std::vector<uint64_t> out;
  while (dirent* e = ::readdir(d)) {
    if (auto n = SegmentNumber(e->d_name)) out.push_back(*n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// An fd closed on every way out.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

// flock held for a scope.
class FileLock {
 public:
  FileLock(int fd, int how) : fd_(fd) {
    while (::flock(fd_, how) != 0 && errno == EINTR) {
    }
  }
  ~FileLock() { ::flock(fd_, LOCK_UN); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

std::string NowRfc3339() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

// One event as one line of JSON (without the newline).
std::string Encode(const ChangeEvent& e, bool with_media_type) {
  Poco::JSON::Object o = EventToJson(e, with_media_type);
  o.set("time", NowRfc3339());
  std::ostringstream out;
  o.stringify(out);
  return out.str();
}

Result<ChangeEvent> Decode(std::string_view line) {
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(std::string(line)).extract<Poco::JSON::Object::Ptr>();
    if (!o) return Status::Corruption("not an object");
    return EventFromJson(*o);
  } catch (const Poco::Exception& ex) {
    return Status::Corruption(ex.displayText());
  } catch (const std::exception& ex) {
    return Status::Corruption(ex.what());
  }
}

// Appends events to the newest segment; shared by every Publisher() of one feed.
class JournalWriter {
 public:
  explicit JournalWriter(const JournalOptions& options) : options_(options) {}

  void Append(const ChangeEvent& event) noexcept {
    try {
      AppendOrThrow(event);
    } catch (const std::exception& ex) {  // never let publishing fail the registry operation
      std::lock_guard<std::mutex> lock(mu_);
      ReportErrorLocked(Status::IOError(std::string("journal: ") + ex.what()));
    }
  }

 private:
  void AppendOrThrow(const ChangeEvent& event) {
    std::string line = Encode(event, true);
    // A line must stay one line and small; a hostile media type is the only thing that
    // could make it otherwise, and the mount does not need it.
    if (line.size() >= kMaxLineBytes || line.find('\n') != std::string::npos) {
      line = Encode(event, false);
    }
    line += '\n';
    std::lock_guard<std::mutex> lock(mu_);
    Status s = AppendLocked(line);
    if (!s.ok()) ReportErrorLocked(s);
  }

  std::string PathOf(uint64_t segment) const {
    return options_.directory + "/" + SegmentName(segment);
  }

  Status AppendLocked(const std::string& line) {
    for (int attempt = 0; attempt < 8; ++attempt) {
      if (!fd_.ok()) REGFS_RETURN_IF_ERROR(OpenNewest());
      FileLock shared(fd_.get(), LOCK_SH);
      struct stat st {};
      if (::fstat(fd_.get(), &st) != 0) return Status::FromErrno(PathOf(segment_), errno);
      if (st.st_nlink == 0) {  // deleted under us (journal reset by hand)
        fd_ = Fd();
        continue;
      }
      if (static_cast<uint64_t>(st.st_size) >= options_.segment_bytes) {
        REGFS_RETURN_IF_ERROR(StartNextSegment());
        continue;
      }
      std::string data;
      char last = '\n';
      if (st.st_size > 0 && ::pread(fd_.get(), &last, 1, st.st_size - 1) == 1 && last != '\n') {
        data = "\n";  // seal a line torn by a crashed writer
      }
      data += line;
      ssize_t n = ::write(fd_.get(), data.data(), data.size());
      if (n < 0) return Status::FromErrno(PathOf(segment_), errno);
      if (static_cast<size_t>(n) != data.size()) {
        return Status::IOError(PathOf(segment_) + ": short write (disk full?)");
      }
      return Status::Ok();
    }
    return Status::Unavailable("journal " + options_.directory + " keeps changing under us");
  }

  // Opens the newest segment for appending, creating the first one in an empty journal.
  Status OpenNewest() {
    auto segments = ListSegments(options_.directory);
    if (!segments.ok() && segments.status().IsNotFound()) {
      // Someone removed the journal: start a new one (readers see a gap).
      std::error_code ec;
      std::filesystem::create_directories(options_.directory, ec);
      segments = ListSegments(options_.directory);
    }
    if (!segments.ok()) return segments.status();
    uint64_t newest = segments->empty() ? 1 : segments->back();
    // Read too: the last byte tells whether a crashed writer left a torn line.
    int flags = O_RDWR | O_APPEND | O_CLOEXEC | (segments->empty() ? O_CREAT : 0);
    int fd = ::open(PathOf(newest).c_str(), flags, 0644);
    if (fd < 0) return Status::FromErrno(PathOf(newest), errno);
    fd_ = Fd(fd);
    segment_ = newest;
    return Status::Ok();
  }

  // Our segment is full: move to the next one, creating it unless another writer did.
  Status StartNextSegment() {
    auto segments = ListSegments(options_.directory);
    if (!segments.ok()) return segments.status();
    fd_ = Fd();
    if (!segments->empty() && segments->back() > segment_) return Status::Ok();  // exists
    const uint64_t next = segment_ + 1;
    int fd = ::open(PathOf(next).c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status::FromErrno(PathOf(next), errno);
    ::close(fd);
    // Bounded disk: only the newest max_segments stay. A reader still in a deleted one
    // learns it fell behind.
    for (uint64_t old : *segments) {
      if (old + options_.max_segments <= next) (void)::unlink(PathOf(old).c_str());
    }
    return Status::Ok();
  }

  void ReportErrorLocked(const Status& s) {
    auto now = std::chrono::steady_clock::now();
    if (!options_.on_error || (reported_ && now - last_report_ < options_.error_interval)) return;
    reported_ = true;
    last_report_ = now;
    options_.on_error(s);
  }

  const JournalOptions options_;
  std::mutex mu_;
  Fd fd_;                 // GUARDED_BY(mu_): the segment we append to
  uint64_t segment_ = 0;  // GUARDED_BY(mu_)
  bool reported_ = false;
  std::chrono::steady_clock::time_point last_report_;  // GUARDED_BY(mu_)
};

class JournalPublisher final : public ChangeListener {
 public:
  explicit JournalPublisher(std::shared_ptr<JournalWriter> writer) : writer_(std::move(writer)) {}
  void OnChange(const ChangeEvent& event) override { writer_->Append(event); }

 private:
  std::shared_ptr<JournalWriter> writer_;
};

class JournalFeed final : public ChangeFeed {
 public:
  explicit JournalFeed(JournalOptions options)
      : options_(std::move(options)), writer_(std::make_shared<JournalWriter>(options_)) {}

  std::shared_ptr<ChangeListener> Publisher() override {
    return std::make_shared<JournalPublisher>(writer_);
  }

  Result<ChangeCursor> End() override {
    auto segments = ListSegments(options_.directory);
    if (!segments.ok()) return segments.status();
    if (segments->empty()) return ChangeCursor{1, 0};
    struct stat st {};
    if (::stat(PathOf(segments->back()).c_str(), &st) != 0) {
      // Deleted between the listing and now: the journal moved on, ask again.
      if (errno == ENOENT) return End();
      return Status::FromErrno(PathOf(segments->back()), errno);
    }
    return ChangeCursor{segments->back(), static_cast<uint64_t>(st.st_size)};
  }

  Result<ChangeBatch> Read(const ChangeCursor& cursor, size_t max_events) override {
    ChangeBatch batch;
    batch.next = cursor;
    if (batch.next.segment == 0) {  // before everything: start at the oldest segment kept
      auto segments = ListSegments(options_.directory);
      if (!segments.ok()) return segments.status();
      if (segments->empty()) return batch;
      batch.gap = segments->front() > 1;
      batch.next = {segments->front(), 0};
    }
    while (batch.events.size() < max_events) {
      Fd fd(::open(PathOf(batch.next.segment).c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.ok()) {
        if (errno != ENOENT) return Status::FromErrno(PathOf(batch.next.segment), errno);
        // Not there: nothing published yet, or the segment was deleted (we fell behind)
        // or the journal was reset.
        auto segments = ListSegments(options_.directory);
        if (!segments.ok()) return segments.status();
        if (segments->empty() && batch.next == ChangeCursor{1, 0}) return batch;
        return Lost(std::move(batch));
      }
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(PathOf(batch.next.segment), errno);
      uint64_t size = static_cast<uint64_t>(st.st_size);
      if (size < batch.next.offset) return Lost(std::move(batch));  // truncated or replaced
      REGFS_RETURN_IF_ERROR(ReadLines(fd.get(), size, false, max_events, batch));
      if (batch.events.size() >= max_events) return batch;
      // At the end of this segment, or at a line not finished yet. Another segment after it
      // means this one is finished: wait for writers still inside it, take what they wrote,
      // skip a line a crash left unfinished, and move on.
      struct stat next_st {};
      const uint64_t next = batch.next.segment + 1;
      if (::stat(PathOf(next).c_str(), &next_st) != 0) {
        if (errno != ENOENT) return Status::FromErrno(PathOf(next), errno);
        auto segments = ListSegments(options_.directory);
        if (!segments.ok()) return segments.status();
        // A newer segment but not the next one: the journal skipped ahead of us.
        if (!segments->empty() && segments->back() > next) return Lost(std::move(batch));
        return batch;
      }
      {
        FileLock exclusive(fd.get(), LOCK_EX);
        if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(PathOf(next - 1), errno);
        REGFS_RETURN_IF_ERROR(ReadLines(fd.get(), static_cast<uint64_t>(st.st_size), true,
                                        static_cast<size_t>(-1), batch));
      }
      batch.next = {next, 0};
    }
    return batch;
  }

 private:
  std::string PathOf(uint64_t segment) const {
    return options_.directory + "/" + SegmentName(segment);
  }

  Result<ChangeBatch> Lost(ChangeBatch batch) {
    auto end = End();
    if (!end.ok()) return end.status();
    batch.gap = true;
    batch.next = *end;
    return batch;
  }

  // Decodes the complete lines of the segment between batch.next.offset and `size` into the
  // batch, up to `max_events`, advancing batch.next past them. With `final` (nobody writes
  // there any more) an unterminated last line is skipped as torn.
  Status ReadLines(int fd, uint64_t size, bool final, size_t max_events, ChangeBatch& batch) {
    std::string buf;
    while (batch.next.offset < size && batch.events.size() < max_events) {
      size_t want =
          static_cast<size_t>(std::min<uint64_t>(size - batch.next.offset, kReadChunkBytes));
      buf.resize(want);
      ssize_t got = ::pread(fd, buf.data(), want, static_cast<off_t>(batch.next.offset));
      if (got < 0) return Status::FromErrno(PathOf(batch.next.segment), errno);
      if (got == 0) break;
      buf.resize(static_cast<size_t>(got));
      size_t pos = 0;
      while (batch.events.size() < max_events) {
        size_t nl = buf.find('\n', pos);
        if (nl == std::string::npos) break;
        std::string_view line(buf.data() + pos, nl - pos);
        pos = nl + 1;
        if (line.empty()) continue;
        auto event = Decode(line);
        if (event.ok()) {
          batch.events.push_back(std::move(*event));
        } else {
          batch.gap = true;  // a torn or foreign line: an event may be missing
        }
      }
      batch.next.offset += pos;
      if (pos == 0) {
        // No newline in what is left: an unfinished line (a writer mid-write, or a line a
        // crash tore). Without `final` wait for it; at a chunk's size it cannot be ours.
        if (final || buf.size() >= kReadChunkBytes) {
          batch.gap = true;
          batch.next.offset += buf.size();
        }
        break;
      }
    }
    return Status::Ok();
  }

  const JournalOptions options_;
  std::shared_ptr<JournalWriter> writer_;
};

}  // namespace

std::string JournalDirectory(const std::string& root_directory) {
  return root_directory + "/regfs/changes";
}

Result<std::shared_ptr<ChangeFeed>> OpenJournalFeed(JournalOptions options) {
  if (options.directory.empty())
    return Status::InvalidArgument("JournalOptions.directory is required");
  if (options.segment_bytes == 0 || options.max_segments < 2) {
    return Status::InvalidArgument("a journal needs segment_bytes > 0 and max_segments >= 2");
  }
  std::error_code ec;
  std::filesystem::create_directories(options.directory, ec);
  if (ec && !std::filesystem::is_directory(options.directory)) {
    return Status::FromErrno("journal " + options.directory, ec.value());
  }
  if (::access(options.directory.c_str(), R_OK | X_OK) != 0) {
    return Status::FromErrno("journal " + options.directory, errno);
  }
  return std::shared_ptr<ChangeFeed>(std::make_shared<JournalFeed>(std::move(options)));
}

}  // namespace regfs
