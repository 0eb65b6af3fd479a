// FaultyDriver: a StorageDriver wrapper that fails, or "crashes", at the Nth change it is
// asked to make, to check the write-ordering claims of registry.h one step at a time.
//
// Changes are the calls that alter storage: PutContent, Move, Delete, and a writer's Write
// and Close. In kFail mode only the Nth change fails (with IOError) and everything else goes
// through; in kCrash mode the Nth change and every call after it fail, reads included, as
// if the process had been killed there: what the inner driver holds is what a restarted
// process would find. Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "regfs/core/storage_driver.h"

namespace regfs::testing {

class FaultyDriver final : public StorageDriver {
 public:
  enum class Mode { kFail, kCrash };
  FaultyDriver(std::shared_ptr<StorageDriver> inner, uint64_t fault_at, Mode mode)
      : inner_(std::move(inner)), fault_at_(fault_at), mode_(mode) {}

  // Changes asked for so far (the faulty one included).
  uint64_t changes() const { return changes_.load(); }
  // An outage: while refusing, every change fails with Unavailable (reads still work), as
  // when an object store turns writes away; independent of the Nth-change fault.
  void set_refusing(bool refusing) { refusing_ = refusing; }
  bool crashed() const { return crashed_.load(); }

  DriverCapabilities capabilities() const override { return inner_->capabilities(); }
  std::string Describe() const override { return "faulty:" + inner_->Describe(); }

  Result<FileInfo> Stat(std::string_view path) override {
    REGFS_RETURN_IF_ERROR(Alive());
    return inner_->Stat(path);
  }
  Result<std::string> GetContent(std::string_view path, size_t max_size) override {
    REGFS_RETURN_IF_ERROR(Alive());
    return inner_->GetContent(path, max_size);
  }
  Status PutContent(std::string_view path, std::string_view content, bool durable) override {
    REGFS_RETURN_IF_ERROR(Change("PutContent " + std::string(path)));
    return inner_->PutContent(path, content, durable);
  }
  Status CreateContent(std::string_view path, std::string_view content, bool durable) override {
    REGFS_RETURN_IF_ERROR(Change("CreateContent " + std::string(path)));
    return inner_->CreateContent(path, content, durable);
  }
  Result<std::unique_ptr<FileReader>> OpenReader(std::string_view path, uint64_t offset) override {
    REGFS_RETURN_IF_ERROR(Alive());
    return inner_->OpenReader(path, offset);
  }
  Result<std::unique_ptr<FileWriter>> OpenWriter(std::string_view path, bool append) override {
    REGFS_RETURN_IF_ERROR(Alive());
    auto w = inner_->OpenWriter(path, append);
    if (!w.ok()) return w.status();
    return std::unique_ptr<FileWriter>(new Writer(this, std::move(*w), std::string(path)));
  }
  Result<std::vector<std::string>> List(std::string_view path) override {
    REGFS_RETURN_IF_ERROR(Alive());
    return inner_->List(path);
  }
  Status Move(std::string_view from, std::string_view to) override {
    REGFS_RETURN_IF_ERROR(Change("Move " + std::string(from)));
    return inner_->Move(from, to);
  }
  Status Delete(std::string_view path) override {
    REGFS_RETURN_IF_ERROR(Change("Delete " + std::string(path)));
    return inner_->Delete(path);
  }
  Result<uint64_t> RemoveLeftovers(std::string_view dir,
                                   std::chrono::system_clock::time_point cutoff,
                                   bool dry_run) override {
    if (!dry_run) REGFS_RETURN_IF_ERROR(Change("RemoveLeftovers " + std::string(dir)));
    return inner_->RemoveLeftovers(dir, cutoff, dry_run);
  }
  Result<std::unique_ptr<StorageLock>> TryLease(std::string_view name) override {
    REGFS_RETURN_IF_ERROR(Alive());
    return inner_->TryLease(name);
  }
  Result<std::unique_ptr<StorageLock>> Lock(std::string_view name) override {
    REGFS_RETURN_IF_ERROR(Alive());
    return inner_->Lock(name);
  }

 private:
  class Writer final : public FileWriter {
   public:
    Writer(FaultyDriver* owner, std::unique_ptr<FileWriter> inner, std::string path)
        : owner_(owner), inner_(std::move(inner)), path_(std::move(path)) {}
    Status Write(const char* data, size_t size) override {
      REGFS_RETURN_IF_ERROR(owner_->Change("Write " + path_));
      return inner_->Write(data, size);
    }
    uint64_t size() const override { return inner_->size(); }
    Status Commit() override {
      REGFS_RETURN_IF_ERROR(owner_->Alive());
      return inner_->Commit();
    }
    Status Close() override {
      REGFS_RETURN_IF_ERROR(owner_->Change("Close " + path_));
      return inner_->Close();
    }

   private:
    FaultyDriver* owner_;
    std::unique_ptr<FileWriter> inner_;
    std::string path_;
  };

  Status Alive() const {
    return crashed_ ? Status::IOError("the process crashed here (fault injected)") : Status::Ok();
  }
  Status Change(const std::string& what) {
    REGFS_RETURN_IF_ERROR(Alive());
    if (refusing_) return Status::Unavailable("storage refuses writes (outage injected): " + what);
    if (changes_.fetch_add(1) + 1 != fault_at_) return Status::Ok();
    if (mode_ == Mode::kCrash) crashed_ = true;
    return Status::IOError("fault injected at change " + std::to_string(fault_at_) + ": " + what);
  }

  std::shared_ptr<StorageDriver> inner_;
  const uint64_t fault_at_;
  const Mode mode_;
  std::atomic<uint64_t> changes_{0};
  std::atomic<bool> crashed_{false};
  std::atomic<bool> refusing_{false};
};

}  // namespace regfs::testing
