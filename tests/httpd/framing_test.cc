// Where a request ends (RFC 9112 §6.3) and what a connection may hold: heads that could be
// read two ways are refused and their connection closed, so nothing hidden in a body runs as
// a request; chunked bodies are decoded strictly; a request without a length has no body;
// slow request heads and too many connections from one address are cut off.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <thread>

#include "raw_connection.h"
#include "registry_test.h"

namespace regfs::testing {
namespace {

using namespace std::chrono_literals;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

class FramingTest : public RegistryTest {
 protected:
  void SetUp() override {
    RegistryTest::SetUp();
    repo_ = NewRepo();
    PushedManifest image;
    ASSERT_TRUE(PushImage(http(), repo_, "v1", media::kOciManifest, repo_, &image));
    smuggled_ = "DELETE " + ManifestPath(repo_, "v1") + " HTTP/1.1\r\nHost: x\r\n\r\n";
  }

  // Sends one request on its own connection; returns what came back within `timeout`.
  std::string RoundTrip(const std::string& bytes, std::chrono::milliseconds timeout = 5s) {
    RawConnection c(server().port());
    EXPECT_TRUE(c.ok());
    EXPECT_TRUE(c.Send(bytes));
    return c.ReadAll(timeout);
  }

  bool TagStillThere() {
    return http().Head(ManifestPath(repo_, "v1"), ManifestAccept()).status == 200;
  }

  std::string UploadPath() {
    HttpResponse started = http().Post(UploadsPath(repo_));
    EXPECT_EQ(started.status, 202) << started.Describe();
    return LocationPath(started.Header("Location"));
  }

  std::string repo_;
  std::string smuggled_;  // a request that, if ever run, deletes the tag v1
};

TEST_F(FramingTest, Http11RequestWithoutHostIsRefused) {
  std::string answer = RoundTrip("POST " + UploadsPath(repo_) + " HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400")) << answer;
  EXPECT_NE(Lower(answer).find("connection: close"), std::string::npos) << answer;
}

TEST_F(FramingTest, Http10RequestWithoutHostGetsARelativeLocation) {
  std::string answer = RoundTrip("POST " + UploadsPath(repo_) + " HTTP/1.0\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.0 202")) << answer;
  EXPECT_NE(answer.find("Location: /v2/" + repo_ + "/blobs/uploads/"), std::string::npos)
      << answer;
}

TEST_F(FramingTest, HeadsThatCouldBeReadTwoWaysAreRefused) {
  const std::string n = std::to_string(smuggled_.size());
  struct Case {
    std::string headers;
    std::string status;
  };
  const std::vector<Case> cases = {
      {"Content-Length: 0\r\nContent-Length: " + n + "\r\n", "400"},
      {"Content-Length: -1\r\n", "400"},
      // Poco cannot read this one at all and closes the connection without an answer.
      {"Content-Length: 0x10\r\n", ""},
      {"Content-Length: " + n + "\r\nTransfer-Encoding: chunked\r\n", "400"},
      {"Transfer-Encoding: gzip, chunked\r\n", "501"},
      {"Transfer-Encoding: chunked, identity\r\n", "501"},
      {"Transfer-Encoding: identity\r\n", "501"},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "501"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.headers);
    std::string answer =
        RoundTrip("PATCH " + UploadPath() + " HTTP/1.1\r\nHost: x\r\n" + c.headers + "\r\n" +
                  smuggled_);
    if (c.status.empty()) {
      EXPECT_EQ(answer, "");
    } else {
      EXPECT_TRUE(answer.starts_with("HTTP/1.1 " + c.status)) << answer;
      // One answer only, and the connection closed after it.
      EXPECT_EQ(answer.find("HTTP/1.1", 1), std::string::npos) << answer;
      EXPECT_NE(Lower(answer).find("connection: close"), std::string::npos) << answer;
    }
    EXPECT_TRUE(TagStillThere());
  }
}

TEST_F(FramingTest, MalformedChunkedBodiesAreRefusedNotCutShort) {
  for (const std::string& body :
       {std::string("zz\r\nabc\r\n0\r\n\r\n"), std::string("-1\r\nabc\r\n0\r\n\r\n"),
        std::string("ffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
        std::string("3\r\nabcXX\r\n0\r\n\r\n"), std::string("3 junk\r\nabc\r\n0\r\n\r\n")}) {
    SCOPED_TRACE(body);
    std::string upload = UploadPath();
    std::string answer = RoundTrip("PATCH " + upload +
                                   " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                   body + smuggled_);
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 400")) << answer;
    EXPECT_NE(answer.find("BLOB_UPLOAD_INVALID"), std::string::npos) << answer;
    EXPECT_EQ(answer.find("HTTP/1.1", 1), std::string::npos) << answer;
    EXPECT_TRUE(TagStillThere());
  }
  // A manifest body too.
  std::string answer = RoundTrip("PUT " + ManifestPath(repo_, "v2") +
                                 " HTTP/1.1\r\nHost: x\r\nContent-Type: " +
                                 std::string(media::kOciManifest) +
                                 "\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nzz\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400")) << answer;
  EXPECT_EQ(http().Head(ManifestPath(repo_, "v2"), ManifestAccept()).status, 404);
}

TEST_F(FramingTest, ChunkExtensionsAndTrailersAreAccepted) {
  std::string answer =
      RoundTrip("PATCH " + UploadPath() +
                " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: Chunked\r\n\r\n"
                "3;name=value\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: 1\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 202")) << answer;
  EXPECT_NE(answer.find("Range: 0-4"), std::string::npos) << answer;
}

TEST_F(FramingTest, RequestWithoutLengthHasNoBody) {
  // Answered at once (there is no body to wait for), and the next request on the
  // connection is read as a request.
  RawConnection c(server().port());
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.Send("PATCH " + UploadPath() + " HTTP/1.1\r\nHost: x\r\nContent-Range: 0-4\r\n\r\n" +
                     "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string answer = c.ReadAll(10s);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400")) << answer;
  EXPECT_NE(answer.find("SIZE_INVALID"), std::string::npos) << answer;
  EXPECT_NE(answer.find("HTTP/1.1 200", 1), std::string::npos) << answer;
}

TEST_F(FramingTest, BodyOfAHeadRequestIsNotRunAsARequest) {
  std::string answer =
      RoundTrip("HEAD " + ManifestPath(repo_, "v1") + " HTTP/1.1\r\nHost: x\r\nAccept: " +
                    ManifestAcceptHeader() + "\r\nContent-Length: " +
                    std::to_string(smuggled_.size()) + "\r\n\r\n" + smuggled_,
                2s);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
  EXPECT_EQ(answer.find("HTTP/1.1", 1), std::string::npos) << answer;
  EXPECT_TRUE(TagStillThere());
}

TEST_F(FramingTest, CredentialsInTheTargetAreRefusedAndNotLogged) {
  std::string answer = RoundTrip("GET http://alice:Url-Secret-91@127.0.0.1:" +
                                 std::to_string(server().port()) +
                                 "/v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400")) << answer;
  ASSERT_TRUE(server().WaitForLog("status=400"));
  EXPECT_EQ(server().ReadLog().find("Url-Secret-91"), std::string::npos);
}

// ---- the connection guard (servers of their own: the limits are part of their config)

// An IPv4 address of this host that is not loopback, or "" (the per-address limit exempts
// loopback, so it can only be seen from another address).
std::string NonLoopbackAddress() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    auto* in = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if ((ntohl(in->sin_addr.s_addr) >> 24) == 127) continue;
    char text[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) != nullptr) found = text;
  }
  freeifaddrs(list);
  return found;
}

TEST(ConnectionGuardTest, ATricklingRequestHeadIsCutOff) {
  RegistryServer server({.top_level_extra = "limits: {headtimeout: 2s}"});
  ASSERT_TRUE(server.Start());
  RawConnection slow(server.port());
  ASSERT_TRUE(slow.ok());
  ASSERT_TRUE(slow.Send("GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  // A byte every 200 ms is never silent for Poco's 60 s timeout; the head deadline ends it.
  bool closed = false;
  auto started = std::chrono::steady_clock::now();
  while (!closed && std::chrono::steady_clock::now() - started < 30s) {
    if (!slow.Send("a")) break;
    std::string got = slow.ReadAll(200ms, &closed);
    EXPECT_TRUE(got.empty()) << got;
  }
  EXPECT_TRUE(closed || !slow.Send("a")) << "still open after 30 s";
  EXPECT_EQ(server.Client().Get("/v2/").status, 200);
  // A keep-alive connection that is between requests gets the same deadline.
  RawConnection idle(server.port());
  ASSERT_TRUE(idle.Send("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string answer = idle.ReadAll(20s, &closed);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
  EXPECT_TRUE(closed);
}

TEST(ConnectionGuardTest, OneAddressMayHoldOnlySoManyConnections) {
  const std::string address = NonLoopbackAddress();
  if (address.empty()) GTEST_SKIP() << "this host has no IPv4 address but loopback";
  const uint16_t port = RegistryServer::FindFreePort();
  RegistryServer server({.top_level_extra = "limits: {connectionsperclient: 2}",
                         .addr = "0.0.0.0:" + std::to_string(port)});
  ASSERT_TRUE(server.Start());
  RawConnection first(port, address);
  auto second = std::make_unique<RawConnection>(port, address);
  ASSERT_TRUE(first.ok() && second->ok());
  ASSERT_TRUE(first.Send("GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"));  // both admitted and held
  EXPECT_TRUE(first.ReadAll(1s).starts_with("HTTP/1.1 200"));
  {
    RawConnection third(port, address);
    ASSERT_TRUE(third.ok());
    std::string answer = third.ReadAll(5s);
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 429")) << answer;
    EXPECT_NE(answer.find("TOOMANYREQUESTS"), std::string::npos) << answer;
  }
  // Loopback is exempt, and a connection given back makes room again.
  EXPECT_EQ(server.Client().Get("/v2/").status, 200);
  second.reset();
  std::this_thread::sleep_for(300ms);
  RawConnection again(port, address);
  ASSERT_TRUE(again.Send("GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  EXPECT_TRUE(again.ReadAll(5s).starts_with("HTTP/1.1 200"));
}

}  // namespace
}  // namespace regfs::testing
