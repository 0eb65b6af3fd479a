// Every storage driver the core tests run against: one conformance suite for all drivers.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "regfs/core/storage_driver.h"

namespace regfs::testing {

// Creates a driver; a filesystem driver gets a fresh temporary root, removed on Reset.
class DriverFactory {
 public:
  explicit DriverFactory(std::string kind) : kind_(std::move(kind)) {}
  ~DriverFactory() { Reset(); }

  std::shared_ptr<StorageDriver> Make() {
    if (kind_ == "inmemory") return NewInMemoryDriver();
    char tmpl[] = "/tmp/regfs-core-test-XXXXXX";
    root_ = mkdtemp(tmpl);
    auto d = NewFilesystemDriver(root_);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return *d;
  }
  const std::string& root() const { return root_; }
  void Reset() {
    if (!root_.empty()) std::filesystem::remove_all(root_);
    root_.clear();
  }

 private:
  std::string kind_;
  std::string root_;
};

inline std::string DriverName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

}  // namespace regfs::testing
