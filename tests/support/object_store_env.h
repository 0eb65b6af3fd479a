// The test object store's settings, shared by the core and HTTP suites: the env file that
// tests/support/rgw_server.sh start writes (RGW_ENDPOINT, RGW_REGION, RGW_ACCESS_KEY,
// RGW_SECRET_KEY), named by REGFS_TEST_S3_ENV. Its bucket regfs-tests is made by
// tests/support/s3_bucket.py in the same setup.
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

namespace regfs::testing {

inline constexpr const char* kTestBucket = "regfs-tests";

// Nothing when REGFS_TEST_S3_ENV is unset; throws when the file lacks a setting.
inline std::optional<std::map<std::string, std::string>> ReadObjectStoreEnv() {
  const char* file = std::getenv("REGFS_TEST_S3_ENV");
  if (file == nullptr || *file == '\0') return std::nullopt;
  std::map<std::string, std::string> env;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  for (const char* key : {"RGW_ENDPOINT", "RGW_REGION", "RGW_ACCESS_KEY", "RGW_SECRET_KEY"}) {
    if (!env.count(key)) throw std::runtime_error(std::string(file) + " lacks " + key);
  }
  return env;
}

}  // namespace regfs::testing
