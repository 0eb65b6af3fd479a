// Every storage driver the core tests run against: one conformance suite for all drivers.
//
// "s3" runs only when REGFS_TEST_S3_ENV names the env file of a running test object store
// (tests/support/rgw_server.sh writes one; ctest's core.s3 entry starts it): each test then
// gets its own key prefix in one bucket, with part sizes at the store's minimum so that
// multipart paths are taken by small tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "object_store_env.h"
#include "regfs/core/backend.h"
#include "regfs/core/storage_driver.h"

namespace regfs::testing {

// The test object store's settings, if one is configured.
inline std::optional<S3StorageOptions> TestS3Options() {
  static const std::optional<S3StorageOptions> options = []() -> std::optional<S3StorageOptions> {
    auto env = ReadObjectStoreEnv();
    if (!env) return std::nullopt;
    S3StorageOptions o;
    o.region_endpoint = env->at("RGW_ENDPOINT");
    o.access_key = env->at("RGW_ACCESS_KEY");
    o.secret_key = env->at("RGW_SECRET_KEY");
    o.region = env->at("RGW_REGION");
    o.bucket = kTestBucket;
    o.chunk_size = o.min_part_size;
    o.multipart_copy_chunk_size = o.min_part_size;
    o.multipart_copy_threshold = o.min_part_size;
    return o;
  }();
  return options;
}

// The kinds to instantiate suites with: s3 only when a test object store is configured.
inline std::vector<std::string> TestDriverKinds() {
  std::vector<std::string> kinds = {"filesystem", "inmemory"};
  if (TestS3Options()) kinds.push_back("s3");
  return kinds;
}

// Creates a driver; a filesystem driver gets a fresh temporary root, removed on Reset.
class DriverFactory {
 public:
  explicit DriverFactory(std::string kind) : kind_(std::move(kind)) {}
  ~DriverFactory() { Reset(); }

  std::shared_ptr<StorageDriver> Make() {
    if (kind_ == "inmemory") return memory_ = NewInMemoryDriver();
    if (kind_ == "s3") {
      static std::atomic<int> counter{0};
      s3_ = *TestS3Options();
      s3_.root_directory = "t" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1)) + "-" +
                           std::to_string(std::rand() % 100000);
      return MakeSecond();
    }
    char tmpl[] = "/tmp/regfs-core-test-XXXXXX";
    root_ = mkdtemp(tmpl);
    return MakeSecond();
  }
  // Another driver on the same storage, as another process would open it.
  std::shared_ptr<StorageDriver> MakeSecond() {
    if (kind_ == "inmemory") return memory_;
    auto d = kind_ == "s3" ? NewS3Driver(s3_) : NewFilesystemDriver(root_);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? *d : nullptr;
  }
  const std::string& root() const { return root_; }
  const std::string& kind() const { return kind_; }
  void Reset() {
    if (!root_.empty()) std::filesystem::remove_all(root_);
    root_.clear();
  }

 private:
  std::string kind_;
  std::string root_;
  S3StorageOptions s3_;
  std::shared_ptr<StorageDriver> memory_;
};

inline std::string DriverName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace regfs::testing
