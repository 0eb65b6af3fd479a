// StorageDriver in process memory. Files are immutable snapshots (shared_ptr<const string>)
// replaced as a whole on every change, so readers never see a torn write; directories are
// implied by the paths of the files below them.
#include <array>
#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "regfs/core/storage_driver.h"

namespace regfs {
namespace {

using Blob = std::shared_ptr<const std::string>;

struct Entry {
  Blob data;
  std::chrono::system_clock::time_point modified;
};

class MemoryState {
 public:
  std::mutex mu;
  std::array<std::mutex, 64> named_locks;  // StorageDriver::Lock, by hash of the name
  std::map<std::string, Entry, std::less<>> files;  // GUARDED_BY(mu)
  std::set<std::string, std::less<>> leases;         // held TryLease names; GUARDED_BY(mu)

  // True when some file lies below `dir`. REQUIRES: mu held.
  bool HasChildren(const std::string& dir) {
    auto it = files.lower_bound(dir + "/");
    return it != files.end() && it->first.starts_with(dir + "/");
  }
};

class MemoryReader final : public FileReader {
 public:
  MemoryReader(Blob data, uint64_t offset) : data_(std::move(data)), pos_(offset) {}
  Result<size_t> Read(char* buffer, size_t size) override {
    if (pos_ >= data_->size()) return size_t{0};
    size_t n = std::min<size_t>(size, data_->size() - pos_);
    std::copy_n(data_->data() + pos_, n, buffer);
    pos_ += n;
    return n;
  }
  Result<size_t> ReadAt(uint64_t offset, char* buffer, size_t size) override {
    if (offset >= data_->size()) return size_t{0};
    size_t n = std::min<size_t>(size, data_->size() - offset);
    std::copy_n(data_->data() + offset, n, buffer);
    return n;
  }
  uint64_t size() const override { return data_->size(); }

 private:
  Blob data_;
  uint64_t pos_;
};

class MemoryLock final : public StorageLock {
 public:
  MemoryLock(std::shared_ptr<MemoryState> state, std::mutex& mu)
      : state_(std::move(state)), lock_(mu) {}

 private:
  std::shared_ptr<MemoryState> state_;  // keeps the mutex alive
  std::unique_lock<std::mutex> lock_;
};

class MemoryLease final : public StorageLock {
 public:
  MemoryLease(std::shared_ptr<MemoryState> state, std::string name)
      : state_(std::move(state)), name_(std::move(name)) {}
  ~MemoryLease() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->leases.erase(name_);
  }

 private:
  std::shared_ptr<MemoryState> state_;
  std::string name_;
};

class MemoryWriter final : public FileWriter {
 public:
  MemoryWriter(std::shared_ptr<MemoryState> state, std::string path)
      : state_(std::move(state)), path_(std::move(path)) {}
  Status Write(const char* data, size_t size) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    auto& e = state_->files[path_];
    auto next = std::make_shared<std::string>(e.data ? *e.data : std::string());
    next->append(data, size);
    e.data = std::move(next);
    e.modified = std::chrono::system_clock::now();
    return Status::Ok();
  }
  uint64_t size() const override {
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->files.find(path_);
    return it == state_->files.end() || !it->second.data ? 0 : it->second.data->size();
  }
  Status Commit() override { return Status::Ok(); }
  Status Close() override { return Status::Ok(); }

 private:
  std::shared_ptr<MemoryState> state_;
  std::string path_;
};

class MemoryDriver final : public StorageDriver {
 public:
  DriverCapabilities capabilities() const override {
    return DriverCapabilities{.fd_backed_reads = false, .atomic_move = true};
  }
  std::string Describe() const override { return "inmemory"; }

  Result<FileInfo> Stat(std::string_view path) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->files.find(path);
    if (it != state_->files.end()) {
      return FileInfo{it->second.data->size(), false, it->second.modified};
    }
    if (state_->HasChildren(std::string(path))) return FileInfo{0, true, {}};
    return Status::NotFound(std::string(path) + " not found");
  }

  Result<std::string> GetContent(std::string_view path, size_t max_size) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->files.find(path);
    if (it == state_->files.end()) return Status::NotFound(std::string(path) + " not found");
    if (it->second.data->size() > max_size) {
      return Status::ResourceExhausted(std::string(path) + " is too large");
    }
    return *it->second.data;
  }

  Status PutContent(std::string_view path, std::string_view content, bool) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->files[std::string(path)] =
        Entry{std::make_shared<const std::string>(content), std::chrono::system_clock::now()};
    return Status::Ok();
  }

  Status CreateContent(std::string_view path, std::string_view content, bool) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::lock_guard<std::mutex> lock(state_->mu);
    auto [it, created] = state_->files.try_emplace(
        std::string(path),
        Entry{std::make_shared<const std::string>(content), std::chrono::system_clock::now()});
    (void)it;
    if (!created) return Status::AlreadyExists(std::string(path) + " exists");
    return Status::Ok();
  }

  Result<std::unique_ptr<FileReader>> OpenReader(std::string_view path, uint64_t offset) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->files.find(path);
    if (it == state_->files.end()) return Status::NotFound(std::string(path) + " not found");
    return std::unique_ptr<FileReader>(new MemoryReader(it->second.data, offset));
  }

  Result<std::unique_ptr<FileWriter>> OpenWriter(std::string_view path, bool append) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::lock_guard<std::mutex> lock(state_->mu);
    auto& e = state_->files[std::string(path)];
    if (!append || !e.data) e.data = std::make_shared<const std::string>();
    e.modified = std::chrono::system_clock::now();
    return std::unique_ptr<FileWriter>(new MemoryWriter(state_, std::string(path)));
  }

  Result<std::vector<std::string>> List(std::string_view path) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::string prefix = std::string(path) + "/";
    std::lock_guard<std::mutex> lock(state_->mu);
    std::set<std::string> names;
    for (auto it = state_->files.lower_bound(prefix);
         it != state_->files.end() && it->first.starts_with(prefix); ++it) {
      std::string rest = it->first.substr(prefix.size());
      names.insert(rest.substr(0, rest.find('/')));
    }
    if (names.empty()) return Status::NotFound(std::string(path) + " not found");
    return std::vector<std::string>(names.begin(), names.end());
  }

  Status Move(std::string_view from, std::string_view to) override {
    if (!IsValidDriverPath(from)) return BadPath(from);
    if (!IsValidDriverPath(to)) return BadPath(to);
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->files.find(from);
    if (it == state_->files.end()) return Status::NotFound(std::string(from) + " not found");
    Entry e = it->second;
    state_->files.erase(it);
    state_->files[std::string(to)] = std::move(e);
    return Status::Ok();
  }

  Status Delete(std::string_view path) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    std::string p(path), prefix = p + "/";
    std::lock_guard<std::mutex> lock(state_->mu);
    bool found = state_->files.erase(p) > 0;
    auto it = state_->files.lower_bound(prefix);
    while (it != state_->files.end() && it->first.starts_with(prefix)) {
      it = state_->files.erase(it);
      found = true;
    }
    return found ? Status::Ok() : Status::NotFound(p + " not found");
  }

  Result<std::unique_ptr<StorageLock>> Lock(std::string_view name) override {
    std::mutex& mu =
        state_->named_locks[std::hash<std::string_view>{}(name) % state_->named_locks.size()];
    return std::unique_ptr<StorageLock>(new MemoryLock(state_, mu));
  }

  Result<std::unique_ptr<StorageLock>> TryLease(std::string_view name) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->leases.emplace(name).second) {
      return Status::FailedPrecondition("lease " + std::string(name) + " is held");
    }
    return std::unique_ptr<StorageLock>(new MemoryLease(state_, std::string(name)));
  }

 private:
  static Status BadPath(std::string_view path) {
    return Status::InvalidArgument("invalid storage path '" + std::string(path) + "'");
  }
  std::shared_ptr<MemoryState> state_ = std::make_shared<MemoryState>();
};

}  // namespace

std::shared_ptr<StorageDriver> NewInMemoryDriver() { return std::make_shared<MemoryDriver>(); }

}  // namespace regfs
