// Runs the registry binary under test as a child process.
//
// Each RegistryServer owns a fresh temporary directory holding config.yml,
// the storage root and server.log (the child's stdout and stderr). The
// directory is removed on destruction unless the test failed, so the log
// and the stored files can be inspected afterwards.
#ifndef REGFS_TESTS_HTTPD_REGISTRY_SERVER_H_
#define REGFS_TESTS_HTTPD_REGISTRY_SERVER_H_

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "http_client.h"
#include "object_store_env.h"

namespace regfs::testing {

// What goes into config.yml beyond the defaults. The *_extra strings are
// spliced verbatim into the YAML, so they use registry:2 config syntax.
struct ServerOptions {
  bool delete_enabled = true;
  // Extra entries of the `storage:` flow mapping, e.g.
  // "maintenance: {readonly: {enabled: true}}".
  std::string storage_extra;
  // Extra entries of the `http:` flow mapping, e.g.
  // "headers: {X-Custom: [value]}".
  std::string http_extra;
  // Extra top-level YAML lines, e.g. "catalog: {maxentries: 2}".
  std::string top_level_extra;
  // Overrides; empty means <dir>/storage and 127.0.0.1:<free port>.
  std::string root_directory;
  std::string addr;
  // When REGFS_TEST_S3_ENV names a test object store (object_store_env.h), servers store
  // in its bucket instead of a folder, unless a test sets root_directory.
  // On an object store: answer blob GETs with redirects to presigned URLs (registry:2's
  // default there); the tests read blobs from the registry itself unless they ask.
  bool redirect = false;
};


class RegistryServer {
 public:
  explicit RegistryServer(ServerOptions options = {});
  ~RegistryServer();
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;

  // Writes the config and launches the binary; does not wait for it.
  void Launch();
  // Launch() and wait (up to 10 s) until GET /v2/ answers. On failure the
  // message carries the reason and the server log.
  ::testing::AssertionResult Start();
  // Stops the server and starts it again on the same storage with new
  // options (a new free port unless options.addr is set).
  ::testing::AssertionResult Restart(ServerOptions options);
  // SIGTERM, then SIGKILL after 10 s. Safe to call when not running.
  void Stop();
  // kill -9: no shutdown at all, as in a crash. Safe to call when not running.
  void Kill();
  // Waits for the process to exit by itself. Returns its exit code (128+N
  // for death by signal N), or nullopt if it is still running at the end.
  std::optional<int> WaitForExit(std::chrono::milliseconds timeout);
  bool IsRunning();

  std::string ReadLog() const;
  // Polls the log until it contains `needle` (true) or the timeout passes.
  bool WaitForLog(std::string_view needle,
                  std::chrono::milliseconds timeout = std::chrono::seconds(3)) const;
  // Prints the log from byte `from_offset` on, for failure diagnostics.
  // The destructor prints the whole log of a failed test unless this ran.
  void PrintLog(size_t from_offset = 0) const;
  size_t LogSize() const;

  // Options for the next Launch()/Start(); adjustable until then.
  ServerOptions& options() { return options_; }

  // Keep the temporary directory after destruction (set on failures).
  void KeepFiles() { keep_files_ = true; }

  HttpClient Client() const { return HttpClient("127.0.0.1", port_); }
  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }
  const std::string& root_directory() const { return root_directory_; }
  const std::string& config_path() const { return config_path_; }
  const std::string& log_path() const { return log_path_; }
  pid_t pid() const { return pid_; }

  // $REGFS_HTTPD if set, else the path CMake compiled in. A path with a
  // slash is made absolute (the server runs in its temp dir); a bare name
  // is looked up in $PATH.
  static std::string BinaryPath();
  // A currently unused TCP port on 127.0.0.1 (bind to 0, read, close).
  static uint16_t FindFreePort();

 private:
  void WriteConfig();
  std::string ConfigText() const;
  std::string StorageDriverYaml() const;
  // Reaps the child if it exited; fills exit_code_.
  bool Reap(bool block);

  ServerOptions options_;
  std::string dir_;
  std::string root_directory_;
  std::string config_path_;
  std::string log_path_;
  std::string addr_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  bool keep_files_ = false;
  mutable bool log_printed_ = false;
};

}  // namespace regfs::testing

#endif  // REGFS_TESTS_HTTPD_REGISTRY_SERVER_H_
