// Server startup: warnings for config keys regfs does not implement, and
// clean non-zero exits when the port is taken or the storage root cannot
// be created. Each test runs its own server process.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "registry_server.h"

namespace regfs::testing {
namespace {

using std::chrono::seconds;

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return text;
}

// Some log line is a warning and names `key`.
::testing::AssertionResult HasWarningNaming(const RegistryServer& server, const std::string& key) {
  // Warnings are written during startup, but give a slow logger a moment.
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::istringstream log(server.ReadLog());
    for (std::string line; std::getline(log, line);) {
      if (line.find(key) != std::string::npos && Lower(line).find("warn") != std::string::npos) {
        return ::testing::AssertionSuccess();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return ::testing::AssertionFailure() << "no warning line in the log names \"" << key << "\"";
}

// A TCP socket listening on 127.0.0.1:<free port>, closed on destruction.
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        listen(fd_, 1) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return;
    }
    port_ = ntohs(address.sin_port);
  }
  ~Listener() {
    if (fd_ >= 0) close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

TEST(StartupTest, UnknownTopLevelKeyIsWarnedAbout) {
  RegistryServer server({.top_level_extra = "foo: bar"});
  ASSERT_TRUE(server.Start());
  EXPECT_EQ(server.Client().Get("/v2/").status, 200);
  EXPECT_TRUE(HasWarningNaming(server, "foo"));
}

TEST(StartupTest, AnUnreachableNotificationReceiverIsWarnedAbout) {
  RegistryServer server({.top_level_extra =
                             "notifications: {endpoints: [{name: hook, url: "
                             "\"http://127.0.0.1:9/hook\", timeout: 1s, threshold: 1, "
                             "backoff: 1s}]}"});
  ASSERT_TRUE(server.Start());
  EXPECT_EQ(server.Client().Get("/v2/").status, 200);
  EXPECT_TRUE(HasWarningNaming(server, "notifications endpoint hook: the receiver does not accept"));
}

TEST(StartupTest, PortAlreadyTakenExitsNonZero) {
  Listener taken;
  ASSERT_NE(taken.port(), 0) << "could not set up a listening socket";
  std::string port = std::to_string(taken.port());
  RegistryServer server({.addr = "127.0.0.1:" + port});
  server.Launch();
  std::optional<int> code = server.WaitForExit(seconds(5));
  ASSERT_TRUE(code.has_value()) << "server still running with its port taken";
  EXPECT_NE(*code, 0);
  EXPECT_LT(*code, 128) << "expected an exit, not death by signal " << *code - 128;
  std::string log = server.ReadLog();
  EXPECT_NE(log.find(port), std::string::npos) << "the log does not mention the address";
}

TEST(StartupTest, UnwritableStorageRootExitsNonZero) {
  // Root privileges defeat permission bits, but nobody can create a
  // directory below a regular file.
  RegistryServer blocked;
  std::string blocker = blocked.dir() + "/not-a-directory";
  std::ofstream(blocker) << "a regular file\n";
  blocked.options().root_directory = blocker + "/storage";
  blocked.Launch();
  std::optional<int> code = blocked.WaitForExit(seconds(10));
  ASSERT_TRUE(code.has_value()) << "server still running without a usable storage root";
  EXPECT_NE(*code, 0);
  EXPECT_LT(*code, 128) << "expected an exit, not death by signal " << *code - 128;
  std::string log = blocked.ReadLog();
  EXPECT_NE(log.find(blocker), std::string::npos) << "the log does not name " << blocker;
}

TEST(StartupTest, StopsOnSigterm) {
  RegistryServer server;
  ASSERT_TRUE(server.Start());
  pid_t pid = server.pid();
  ASSERT_GT(pid, 0);
  kill(pid, SIGTERM);
  std::optional<int> code = server.WaitForExit(seconds(10));
  ASSERT_TRUE(code.has_value()) << "server ignored SIGTERM for 10 s";
  // Either a clean exit or the default SIGTERM disposition is fine.
  EXPECT_TRUE(*code == 0 || *code == 128 + SIGTERM) << "exit code " << *code;
}

}  // namespace
// An object store that refuses the credentials, or lacks the bucket, stops the server at
// start with a line naming the bucket and the store's answer, and no secret in it.
TEST(StartupTest, UnusableBucketExitsWithAClearError) {
  if (!ReadObjectStoreEnv()) GTEST_SKIP() << "needs the test object store (REGFS_TEST_S3_ENV)";
  struct Case {
    const char* variable;
    const char* value;
    const char* expected;
  };
  for (const Case& c : {Case{"REGISTRY_STORAGE_S3_SECRETKEY", "a-wrong-secret-0123456789",
                             "refused the credentials"},
                        Case{"REGISTRY_STORAGE_S3_BUCKET", "no-such-bucket", "does not exist"}}) {
    ::setenv(c.variable, c.value, 1);
    RegistryServer server;
    server.Launch();
    std::optional<int> code = server.WaitForExit(seconds(30));
    ::unsetenv(c.variable);
    ASSERT_TRUE(code.has_value()) << c.variable << ": still running";
    EXPECT_EQ(*code, 1) << c.variable;
    std::string log = server.ReadLog();
    EXPECT_NE(log.find(c.expected), std::string::npos) << log;
    EXPECT_EQ(log.find(ReadObjectStoreEnv()->at("RGW_SECRET_KEY")), std::string::npos) << log;
    EXPECT_EQ(log.find("a-wrong-secret"), std::string::npos) << log;
  }
}

}  // namespace regfs::testing
