// The change log as numbered, create-once objects on any driver (see change_log.h).
//
// Finding the end: entries from the floor up are dense, so the first absent number is found
// by a galloping search from the head hint (about 2·log2(distance) Stats). An appender then
// trusts what it learnt for kTrustEnd: a number it believes free is either free or taken by
// a newer entry (AlreadyExists, try the next), never a removed old one, because retention
// removes no entry younger than LogRetention::min_age, which is far longer.
#include "regfs/core/change_log.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "regfs/core/uuid.h"

namespace regfs {
namespace {

constexpr char kEntries[] = "regfs/log/entries";
constexpr char kFloor[] = "regfs/log/floor";
constexpr char kHead[] = "regfs/log/head";
constexpr char kCursors[] = "regfs/log/cursors";
constexpr char kTrimLock[] = "regfs/log/trim";
constexpr char kIdentity[] = "regfs/log/id";
// How long an appender trusts the end of the log it found (see the file comment).
constexpr std::chrono::seconds kTrustEnd{10};
// The head hint is rewritten every this many entries, bounding the search from it.
constexpr uint64_t kHeadEvery = 64;

std::string EntryPath(uint64_t sequence) {
  char name[32];
  std::snprintf(name, sizeof name, "%020" PRIu64, sequence);
  return std::string(kEntries) + "/" + name;
}

std::optional<uint64_t> ParseNumber(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

int64_t UnixMillis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

class StorageChangeLog final : public ChangeLog {
 public:
  explicit StorageChangeLog(std::shared_ptr<StorageDriver> driver) : driver_(std::move(driver)) {}

  Result<uint64_t> Append(std::string_view body, bool durable) override {
    if (body.size() > kMaxBodyBytes) {
      return Status::InvalidArgument("change log entry of " + std::to_string(body.size()) +
                                     " bytes is over the limit");
    }
    const std::string content =
        std::to_string(UnixMillis(std::chrono::system_clock::now())) + "\n" + std::string(body);
    std::lock_guard<std::mutex> lock(append_mu_);
    bool previous_seen = true;  // entry next-1 is known to exist (or next is 1)
    if (std::chrono::steady_clock::now() - next_learnt_ > kTrustEnd) {
      auto found = FindEnd();
      if (!found.ok()) return found.status().WithContext("appending to the change log");
      next_ = found->first_free;
      previous_seen = found->previous_seen;
    }
    int conflicts = 0;
    while (true) {
      Status created = driver_->CreateContent(EntryPath(next_), content, durable);
      if (created.code() == Status::Code::kAlreadyExists) {
        // Another process appended first: the next number, or a fresh search after many.
        previous_seen = true;
        if (++conflicts % 16 == 0) {
          auto found = FindEnd();
          if (!found.ok()) return found.status().WithContext("appending to the change log");
          next_ = std::max(next_ + 1, found->first_free);
        } else {
          ++next_;
        }
        continue;
      }
      if (!created.ok()) {
        next_learnt_ = {};  // search again next time
        return created.WithContext("appending to the change log");
      }
      if (!previous_seen && next_ > 1) {
        // Created at the floor of a log that looked empty: retention may have raised the
        // floor meanwhile, leaving this entry below it where no reader looks.
        auto floor = ReadFloor();
        if (!floor.ok()) return floor.status().WithContext("appending to the change log");
        if (*floor > next_) {
          (void)driver_->Delete(EntryPath(next_));
          next_ = *floor;
          continue;
        }
      }
      const uint64_t appended = next_++;
      next_learnt_ = std::chrono::steady_clock::now();
      if (appended % kHeadEvery == 0) {
        // A hint only: a lost write costs the next search a few more probes.
        (void)driver_->PutContent(kHead, std::to_string(appended), false);
      }
      return appended;
    }
  }

  Result<LogBatch> Read(uint64_t after, size_t max_entries) override {
    LogBatch batch;
    batch.last = after;
    bool floor_checked = false;
    for (uint64_t n = after + 1; batch.entries.size() < max_entries; ++n) {
      auto content = driver_->GetContent(EntryPath(n), kMaxBodyBytes + 32);
      if (content.status().IsNotFound()) {
        // The end, unless retention removed entries this reader had not read yet.
        if (!batch.entries.empty() || floor_checked) break;
        floor_checked = true;
        auto floor = ReadFloor();
        if (!floor.ok()) return floor.status().WithContext("reading the change log");
        if (*floor <= n) break;
        batch.gap = true;
        batch.last = *floor - 1;
        n = *floor - 1;
        continue;
      }
      if (!content.ok()) return content.status().WithContext("reading the change log");
      batch.entries.push_back(ParseEntry(n, std::move(*content)));
      batch.last = n;
    }
    return batch;
  }

  Result<uint64_t> Newest() override {
    auto found = FindEnd();
    if (!found.ok()) return found.status();
    return found->first_free - 1;
  }

  Result<std::string> Identity() override {
    std::lock_guard<std::mutex> lock(identity_mu_);
    if (!identity_.empty()) return identity_;
    Status created = driver_->CreateContent(kIdentity, NewUuid());
    if (!created.ok() && created.code() != Status::Code::kAlreadyExists) {
      return created.WithContext("creating the change log's identity");
    }
    auto content = driver_->GetContent(kIdentity, 64);
    if (!content.ok()) return content.status().WithContext("reading the change log's identity");
    identity_ = *content;
    return identity_;
  }

  Result<std::optional<uint64_t>> LoadCursor(std::string_view consumer) override {
    if (!IsValidConsumerName(consumer)) return BadConsumer(consumer);
    auto content = driver_->GetContent(CursorPath(consumer), 64);
    if (content.status().IsNotFound()) return std::optional<uint64_t>();
    if (!content.ok()) return content.status();
    auto value = ParseNumber(*content);
    if (!value) return Status::Corruption("change log cursor " + std::string(consumer) + " is unreadable");
    return std::optional<uint64_t>(*value);
  }

  Status SaveCursor(std::string_view consumer, uint64_t after) override {
    if (!IsValidConsumerName(consumer)) return BadConsumer(consumer);
    return driver_->PutContent(CursorPath(consumer), std::to_string(after), true);
  }

  Status DropCursor(std::string_view consumer) override {
    if (!IsValidConsumerName(consumer)) return BadConsumer(consumer);
    Status s = driver_->Delete(CursorPath(consumer));
    return s.IsNotFound() ? Status::Ok() : s;
  }

  Result<TrimReport> Trim(const LogRetention& retention) override {
    // One trimmer at a time: two could otherwise write floors out of order.
    auto held = driver_->Lock(kTrimLock);
    if (!held.ok()) return held.status().WithContext("trimming the change log");
    TrimReport report;
    auto floor = ReadFloor();
    if (!floor.ok()) return floor.status();
    report.floor = *floor;
    auto newest = Newest();
    if (!newest.ok()) return newest.status();
    if (*newest <= *floor) return report;  // the newest entry always stays

    // Everything every consumer has handled may go; with no consumers, all of it.
    uint64_t consumed = *newest;
    std::vector<std::pair<std::string, uint64_t>> cursors;
    auto names = driver_->List(kCursors);
    if (!names.ok() && !names.status().IsNotFound()) return names.status();
    if (names.ok()) {
      for (const auto& name : *names) {
        if (!IsValidConsumerName(name)) continue;  // a crashed write's temporary file
        auto cursor = LoadCursor(name);
        if (!cursor.ok()) return cursor.status();
        if (!*cursor) continue;
        cursors.emplace_back(name, **cursor);
        consumed = std::min(consumed, **cursor);
      }
    }
    uint64_t keep_from = consumed + 1;
    if (*newest >= retention.max_entries) keep_from = std::max(keep_from, *newest - retention.max_entries + 1);

    const auto now = std::chrono::system_clock::now();
    uint64_t n = *floor;
    for (; n < *newest; ++n) {
      auto info = driver_->Stat(EntryPath(n));
      if (info.status().IsNotFound()) continue;  // removed by a trim that died midway
      if (!info.ok()) return info.status();
      const auto age = now - info->modified;
      if (age < retention.min_age) break;
      if (n >= keep_from && age < retention.max_age) break;
    }
    const uint64_t new_floor = n;
    if (new_floor == *floor) return report;
    // Floor first: a reader that misses an entry checks the floor and learns of the gap.
    REGFS_RETURN_IF_ERROR(driver_->PutContent(kFloor, std::to_string(new_floor), true));
    for (uint64_t m = *floor; m < new_floor; ++m) {
      Status s = driver_->Delete(EntryPath(m));
      if (!s.ok() && !s.IsNotFound()) return s.WithContext("trimming the change log");
      ++report.removed;
    }
    report.floor = new_floor;
    for (const auto& [name, cursor] : cursors) {
      if (cursor + 1 < new_floor) report.overrun.push_back(name);
    }
    return report;
  }

 private:
  struct End {
    uint64_t first_free = 1;
    bool previous_seen = false;  // first_free - 1 was seen to exist
  };

  // The first free number after the dense run of entries from the floor (or head hint) up.
  Result<End> FindEnd() {
    auto floor = ReadFloor();
    if (!floor.ok()) return floor.status();
    uint64_t start = *floor;
    auto head = driver_->GetContent(kHead, 64);
    if (head.ok()) {
      if (auto h = ParseNumber(*head)) start = std::max(start, *h);
    } else if (!head.status().IsNotFound()) {
      return head.status();
    }
    auto present = Exists(start);
    if (!present.ok()) return present.status();
    if (!*present) return End{start, false};
    // Gallop: lo exists, lo + step does not; then halve the interval.
    uint64_t lo = start, step = 1;
    while (true) {
      auto more = Exists(lo + step);
      if (!more.ok()) return more.status();
      if (!*more) break;
      lo += step;
      step *= 2;
    }
    uint64_t hi = lo + step;
    while (hi - lo > 1) {
      const uint64_t mid = lo + (hi - lo) / 2;
      auto there = Exists(mid);
      if (!there.ok()) return there.status();
      (*there ? lo : hi) = mid;
    }
    return End{hi, true};
  }

  Result<bool> Exists(uint64_t sequence) {
    auto info = driver_->Stat(EntryPath(sequence));
    if (info.ok()) return true;
    if (info.status().IsNotFound()) return false;
    return info.status();
  }

  Result<uint64_t> ReadFloor() {
    auto content = driver_->GetContent(kFloor, 64);
    if (content.status().IsNotFound()) return uint64_t{1};
    if (!content.ok()) return content.status();
    auto value = ParseNumber(*content);
    if (!value || *value == 0) return Status::Corruption("the change log's floor is unreadable");
    return *value;
  }

  // An entry whose time line is damaged keeps its number and gets the whole content as its
  // body (which then fails to decode): readers skip it instead of stopping there for good.
  static LogEntry ParseEntry(uint64_t sequence, std::string content) {
    LogEntry entry;
    entry.sequence = sequence;
    const size_t newline = content.find('\n');
    auto millis = newline == std::string::npos
                      ? std::nullopt
                      : ParseNumber(std::string_view(content).substr(0, newline));
    if (!millis) {
      entry.body = std::move(content);
      return entry;
    }
    entry.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(*millis));
    entry.body = content.substr(newline + 1);
    return entry;
  }

  static std::string CursorPath(std::string_view consumer) {
    return std::string(kCursors) + "/" + std::string(consumer);
  }
  static Status BadConsumer(std::string_view consumer) {
    return Status::InvalidArgument("invalid change log consumer name: " + std::string(consumer));
  }

  const std::shared_ptr<StorageDriver> driver_;
  std::mutex append_mu_;  // one append at a time per process; processes race by CreateContent
  uint64_t next_ = 1;
  std::chrono::steady_clock::time_point next_learnt_{};
  std::mutex identity_mu_;
  std::string identity_;
};

}  // namespace

bool IsValidConsumerName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

std::shared_ptr<ChangeLog> OpenChangeLog(std::shared_ptr<StorageDriver> driver) {
  return std::make_shared<StorageChangeLog>(std::move(driver));
}

}  // namespace regfs
