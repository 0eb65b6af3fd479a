// HealthMonitor: thresholds, critical and degrading checks, draining; and the checks the
// health section configures (a file, a TCP port, an HTTP endpoint) against real sockets.
#include <gtest/gtest.h>

#include <Poco/Net/ServerSocket.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "logger.h"
#include "observability/health.h"

namespace regfs::httpd {
namespace {

using namespace std::chrono_literals;

Logger QuietLogger() { return Logger("error", false, {}); }

TEST(HealthMonitor, ACheckFailsOnlyAfterThresholdFailuresInARow) {
  Logger logger = QuietLogger();
  HealthMonitor health(logger);
  std::atomic<bool> up{false};
  health.Add({.name = "flaky",
              .interval = 20ms,
              .threshold = 3,
              .probe = [&] { return up ? Status::Ok() : Status::Unavailable("down"); }});
  health.Start();  // one failure so far
  EXPECT_TRUE(health.Healthy());
  for (int i = 0; i < 100 && health.Healthy(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(health.Healthy());
  EXPECT_EQ(health.Failing().at("flaky"), "down");
  up = true;
  for (int i = 0; i < 100 && !health.Healthy(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(health.Healthy());
  EXPECT_TRUE(health.Failing().empty());
}

TEST(HealthMonitor, ADegradingCheckShowsButKeepsTheReplicaServing) {
  Logger logger = QuietLogger();
  HealthMonitor health(logger);
  health.Add({.name = "redis", .critical = false, .probe = [] {
                return Status::Unavailable("no answer");
              }});
  health.Start();
  EXPECT_TRUE(health.Healthy());
  EXPECT_TRUE(health.Ready());
  EXPECT_EQ(health.Failing().count("redis"), 1u);
  health.SetDraining();
  EXPECT_TRUE(health.Healthy());
  EXPECT_FALSE(health.Ready());
}

TEST(HealthChecks, AFileThatExistsDrainsTheReplica) {
  Config config;
  std::string file = ::testing::TempDir() + "/drain-me";
  std::remove(file.c_str());
  config.health.files.push_back({.path = file, .interval = 20ms});
  Logger logger = QuietLogger();
  HealthMonitor health(logger);
  for (auto& c : ConfiguredChecks(config, NewInMemoryDriver())) health.Add(std::move(c));
  health.Start();
  EXPECT_TRUE(health.Healthy());
  std::ofstream(file) << "maintenance";
  for (int i = 0; i < 100 && health.Healthy(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(health.Healthy());
  EXPECT_EQ(health.Failing().begin()->first, "file:" + file);
  std::remove(file.c_str());
  for (int i = 0; i < 100 && !health.Healthy(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(health.Healthy());
}

TEST(HealthChecks, TcpAndHttpChecksReachRealSockets) {
  Poco::Net::ServerSocket listening(Poco::Net::SocketAddress("127.0.0.1", 0));
  const std::string open_addr = "127.0.0.1:" + std::to_string(listening.address().port());
  // A port nothing listens on: bind, note, close.
  std::string closed_addr;
  {
    Poco::Net::ServerSocket s(Poco::Net::SocketAddress("127.0.0.1", 0));
    closed_addr = "127.0.0.1:" + std::to_string(s.address().port());
  }
  Config config;
  config.health.tcp.push_back({.addr = open_addr, .timeout = 500ms});
  config.health.tcp.push_back({.addr = closed_addr, .timeout = 500ms});
  config.health.http.push_back({.uri = "http://user:secret@" + closed_addr + "/ping?token=abc",
                                .timeout = 500ms});
  Logger logger = QuietLogger();
  HealthMonitor health(logger);
  for (auto& c : ConfiguredChecks(config, NewInMemoryDriver())) health.Add(std::move(c));
  health.Start();
  auto failing = health.Failing();
  EXPECT_EQ(failing.count("tcp:" + open_addr), 0u);
  EXPECT_EQ(failing.count("tcp:" + closed_addr), 1u);
  ASSERT_EQ(failing.count("http:http://" + closed_addr + "/ping"), 1u);
  // Neither the URI's user info nor its query (credentials, tokens) reach a message.
  for (const auto& [name, error] : failing) {
    EXPECT_EQ(name.find("secret"), std::string::npos) << name;
    EXPECT_EQ(error.find("secret"), std::string::npos) << error;
    EXPECT_EQ(error.find("token=abc"), std::string::npos) << error;
  }
}

}  // namespace
}  // namespace regfs::httpd
