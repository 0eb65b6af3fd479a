// Answers given before the request body was read (a refusal of a PATCH or PUT still
// streaming) must reach the client: the server half-closes and discards the rest instead of
// closing at once, which would make the kernel reset the connection and throw the answer
// away before the client reads it. Each refusal kind is sent a 64 MiB body from a raw socket
// that keeps sending while it reads, as docker, skopeo and curl do.
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "raw_connection.h"
#include "registry_test.h"

namespace regfs::testing {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kBodySize = 64ULL << 20;

struct EarlyAnswer {
  std::string answer;   // everything received
  bool closed = false;  // the server ended the stream (FIN) after the answer
  int error = 0;        // recv's errno if it failed, ECONNRESET for a reset
  uint64_t sent = 0;    // body bytes the client got out before it stopped
};

// Sends `head` (which declares a kBodySize body) and then the body from a second thread,
// while this thread reads what comes back until the server closes or 10 s pass.
EarlyAnswer SendLargeBody(uint16_t port, const std::string& head) {
  RawConnection c(port);
  EXPECT_TRUE(c.ok());
  EXPECT_TRUE(c.Send(head));
  std::atomic<uint64_t> sent{0};
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    std::string chunk(64 * 1024, 'x');
    while (!stop.load() && sent.load() < kBodySize) {
      ssize_t n = send(c.fd(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) return;  // the server is gone: a client stops sending too
      sent += static_cast<uint64_t>(n);
    }
  });
  EarlyAnswer result;
  result.answer = c.ReadAll(10s, &result.closed, &result.error);
  // Having the answer, a client stops sending and closes (curl, Go's net/http).
  stop = true;
  shutdown(c.fd(), SHUT_RDWR);
  sender.join();
  result.sent = sent.load();
  return result;
}

::testing::AssertionResult AnswerArrivedWhole(const EarlyAnswer& r, const std::string& status) {
  if (!r.answer.starts_with("HTTP/1.1 " + status)) {
    return ::testing::AssertionFailure()
           << "expected HTTP " << status << ", got '" << r.answer.substr(0, 200)
           << "' (recv errno " << r.error << ", " << r.sent << " body bytes sent)";
  }
  if (r.error != 0 || !r.closed) {
    return ::testing::AssertionFailure()
           << "after the answer the connection was "
           << (r.error == ECONNRESET ? "reset" : "not closed") << " (errno " << r.error << ")";
  }
  if (r.answer.find("\r\n\r\n") == std::string::npos) {
    return ::testing::AssertionFailure() << "the head did not arrive whole: " << r.answer;
  }
  return ::testing::AssertionSuccess();
}

std::string Head(const std::string& method, const std::string& target,
                 const std::string& extra = "") {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
         std::to_string(kBodySize) + "\r\nContent-Type: application/octet-stream\r\n" + extra +
         "\r\n";
}

class EarlyAnswerTest : public RegistryTest {
 protected:
  void SetUp() override {
    RegistryTest::SetUp();
    repo_ = NewRepo();
  }
  std::string repo_;
};

TEST_F(EarlyAnswerTest, UnknownUploadPatch) {
  auto r = SendLargeBody(server().port(),
                         Head("PATCH", UploadsPath(repo_) + "0d9c3c2e-6d7b-4b52-9d4e-6f1c1c1f0a11"));
  EXPECT_TRUE(AnswerArrivedWhole(r, "404"));
  EXPECT_NE(r.answer.find("BLOB_UPLOAD_UNKNOWN"), std::string::npos) << r.answer;
}

TEST_F(EarlyAnswerTest, InvalidNamePatch) {
  auto r = SendLargeBody(server().port(), Head("PATCH", "/v2/Bad/Name/blobs/uploads/x"));
  EXPECT_TRUE(AnswerArrivedWhole(r, "400"));
  EXPECT_NE(r.answer.find("NAME_INVALID"), std::string::npos) << r.answer;
}

TEST_F(EarlyAnswerTest, OutOfOrderChunk) {
  HttpResponse started = http().Post(UploadsPath(repo_));
  ASSERT_EQ(started.status, 202) << started.Describe();
  std::string location = LocationPath(started.Header("Location"));
  auto r = SendLargeBody(server().port(),
                         Head("PATCH", location,
                              "Content-Range: 1000-" + std::to_string(1000 + kBodySize - 1) +
                                  "\r\n"));
  EXPECT_TRUE(AnswerArrivedWhole(r, "416"));
}

TEST_F(EarlyAnswerTest, OversizedManifest) {
  auto r = SendLargeBody(server().port(), Head("PUT", ManifestPath(repo_, "big")));
  EXPECT_TRUE(AnswerArrivedWhole(r, "413"));
}

TEST_F(EarlyAnswerTest, MethodNotAllowed) {
  auto r = SendLargeBody(server().port(), Head("PATCH", ManifestPath(repo_, "v1")));
  EXPECT_TRUE(AnswerArrivedWhole(r, "405"));
}

TEST_F(EarlyAnswerTest, RefusedFraming) {
  // A transfer coding we do not take: refused before anything of the body is read.
  auto r = SendLargeBody(server().port(),
                         "PATCH " + UploadsPath(repo_) + "x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Transfer-Encoding: gzip, chunked\r\n\r\n");
  EXPECT_TRUE(AnswerArrivedWhole(r, "501"));
}

TEST_F(EarlyAnswerTest, ConnectionStaysUsableForSmallRefusedBodies) {
  // A small unread body is drained before the answer and the connection kept: no linger.
  RawConnection c(server().port());
  ASSERT_TRUE(c.ok());
  std::string body(1000, 'x');
  std::string request = "PATCH " + UploadsPath(repo_) +
                        "0d9c3c2e-6d7b-4b52-9d4e-6f1c1c1f0a11 HTTP/1.1\r\nHost: x\r\n"
                        "Content-Length: 1000\r\n\r\n" + body +
                        "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_TRUE(c.Send(request));
  std::string answer = c.ReadAll(5s);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 404")) << answer;
  EXPECT_NE(answer.find("HTTP/1.1 200"), std::string::npos) << answer;
}

class EarlyAnswerAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(server_.dir() + "/htpasswd")
        << "alice:$2y$05$hB3n7i5jzFZ0sO9D2iCk4OdS0RV7p8vQv1pUoJ6cX4q2C1nWmQk5e\n";
    server_.options().top_level_extra =
        "auth: {htpasswd: {realm: test, path: " + server_.dir() + "/htpasswd}}";
    ASSERT_TRUE(server_.Start());
  }
  RegistryServer server_;
};

TEST_F(EarlyAnswerAuthTest, UnauthenticatedPatch) {
  auto r = SendLargeBody(server_.port(), Head("PATCH", "/v2/team/app/blobs/uploads/x"));
  EXPECT_TRUE(AnswerArrivedWhole(r, "401"));
  EXPECT_NE(r.answer.find("WWW-Authenticate"), std::string::npos) << r.answer;
}

}  // namespace
}  // namespace regfs::testing
