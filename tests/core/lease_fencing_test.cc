// Writes under a lock stop once the lock may be another process's (StorageLock::held()
// false: an object store's lease not renewed in time): nothing more lands, the caller gets
// Unavailable and can retry, and what was there stays whole.
#include <gtest/gtest.h>

#include <atomic>
#include <sstream>

#include "regfs/core/registry.h"
#include "registry_pushes.h"

namespace regfs {
namespace {

// Forwards everything to an in-memory driver; the locks it grants lose their hold when
// the test says so.
class LosingLocksDriver final : public StorageDriver {
 public:
  std::atomic<bool> locks_held{true};

  DriverCapabilities capabilities() const override { return inner_->capabilities(); }
  std::string Describe() const override { return "losing-locks"; }
  Result<FileInfo> Stat(std::string_view p) override { return inner_->Stat(p); }
  Result<std::string> GetContent(std::string_view p, size_t m) override {
    return inner_->GetContent(p, m);
  }
  Status PutContent(std::string_view p, std::string_view c, bool d) override {
    return inner_->PutContent(p, c, d);
  }
  Status CreateContent(std::string_view p, std::string_view c, bool d) override {
    return inner_->CreateContent(p, c, d);
  }
  Result<std::unique_ptr<FileReader>> OpenReader(std::string_view p, uint64_t o) override {
    return inner_->OpenReader(p, o);
  }
  Result<std::unique_ptr<FileWriter>> OpenWriter(std::string_view p, bool a) override {
    return inner_->OpenWriter(p, a);
  }
  Result<std::vector<std::string>> List(std::string_view p) override { return inner_->List(p); }
  Status Move(std::string_view f, std::string_view t) override { return inner_->Move(f, t); }
  Status Delete(std::string_view p) override { return inner_->Delete(p); }
  Result<std::unique_ptr<StorageLock>> Lock(std::string_view name) override {
    auto lock = inner_->Lock(name);
    if (!lock.ok()) return lock.status();
    return std::unique_ptr<StorageLock>(new Losing(std::move(*lock), locks_held));
  }
  Result<std::unique_ptr<StorageLock>> TryLease(std::string_view name) override {
    auto lease = inner_->TryLease(name);
    if (!lease.ok()) return lease.status();
    return std::unique_ptr<StorageLock>(new Losing(std::move(*lease), locks_held));
  }

 private:
  class Losing final : public StorageLock {
   public:
    Losing(std::unique_ptr<StorageLock> inner, const std::atomic<bool>& held)
        : inner_(std::move(inner)), held_(held) {}
    bool held() const override { return held_.load(); }

   private:
    std::unique_ptr<StorageLock> inner_;
    const std::atomic<bool>& held_;
  };
  std::shared_ptr<StorageDriver> inner_ = NewInMemoryDriver();
};

using testing::PushBlob;

TEST(LeaseFencing, NothingIsWrittenUnderALockThatMayHavePassedOn) {
  auto driver = std::make_shared<LosingLocksDriver>();
  auto opened = Registry::Open({.driver = driver, .delete_enabled = true});
  ASSERT_TRUE(opened.ok());
  std::unique_ptr<Registry> registry = std::move(*opened);
  Digest config = PushBlob(*registry, "r", "{}");
  Digest layer = PushBlob(*registry, "r", "layer");
  std::string manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      config.ToString() +
      R"(","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
      layer.ToString() + R"(","size":5}]})";
  ASSERT_TRUE(registry->PutManifest("r", "v1", "", manifest).ok());
  Digest garbage = PushBlob(*registry, "r", "no manifest uses this");

  driver->locks_held = false;
  auto put = registry->PutManifest("r", "v2", "", manifest);
  EXPECT_EQ(put.status().code(), Status::Code::kUnavailable) << put.status().ToString();
  EXPECT_TRUE(registry->StatManifest("r", "v2").status().IsNotFound());
  EXPECT_EQ(registry->DeleteBlob("r", layer).code(), Status::Code::kUnavailable);
  EXPECT_EQ(registry->DeleteManifest("r", "v1").code(), Status::Code::kUnavailable);
  auto up = registry->StartUpload("r");
  EXPECT_FALSE(up.ok());
  GcOptions gc;
  gc.grace = std::chrono::seconds(0);
  gc.delete_untagged = true;
  EXPECT_FALSE(registry->CollectGarbage(gc).ok());
  EXPECT_TRUE(registry->StatBlob("r", garbage).ok());  // the collection removed nothing
  // What was committed is all still there.
  EXPECT_TRUE(registry->StatManifest("r", "v1").ok());
  EXPECT_TRUE(registry->StatBlob("r", layer).ok());

  driver->locks_held = true;
  EXPECT_TRUE(registry->PutManifest("r", "v2", "", manifest).ok());
}

}  // namespace
}  // namespace regfs
