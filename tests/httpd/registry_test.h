// Base fixture: one registry server per test suite (starting one per test
// would dominate the run time), fresh repository names per test, and the
// server log of the failing test printed on failure.
#ifndef REGFS_TESTS_HTTPD_REGISTRY_TEST_H_
#define REGFS_TESTS_HTTPD_REGISTRY_TEST_H_

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "http_client.h"
#include "registry_helpers.h"
#include "registry_server.h"

namespace regfs::testing {

class RegistryTest : public ::testing::Test {
 protected:
  // Suites needing other config define their own SetUpTestSuite() that
  // calls StartSharedServer(options).
  static void SetUpTestSuite() { StartSharedServer({}); }
  static void TearDownTestSuite() { StopSharedServer(); }
  static void StartSharedServer(ServerOptions options);
  static void StopSharedServer();

  void SetUp() override;
  void TearDown() override;

  RegistryServer& server() { return *server_; }
  // A client for the current server (its port changes on Restart()).
  HttpClient http() const { return server_->Client(); }

  // "<suite>/<test>-<n>" in lower case: unique within the server, and a
  // valid repository name.
  std::string NewRepo(std::string_view suffix = "");

  // Every path under the server's temp dir outside the storage root (with
  // sizes of regular files; server.log excluded as it grows with each
  // request). Compared before/after hostile requests to prove that nothing
  // outside the storage root was written.
  std::set<std::string> FilesOutsideStorage();

 private:
  static std::unique_ptr<RegistryServer> server_;
  static std::string startup_failure_;
  static int repo_counter_;
  size_t log_offset_ = 0;
};

}  // namespace regfs::testing

#endif  // REGFS_TESTS_HTTPD_REGISTRY_TEST_H_
