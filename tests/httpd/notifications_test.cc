// Webhook notifications against a real receiver (tests/support/webhook_receiver.py): the
// events registry:2 sends, delivered at least once and in order through receiver failures,
// a kill -9 of the server and two replicas on one storage; signatures and CloudEvents.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "regfs/core/digest.h"
#include "registry_helpers.h"
#include "registry_server.h"

namespace regfs::testing {
namespace {

using Poco::JSON::Object;
namespace fs = std::filesystem;

// The receiver process, started on a free port and stopped by its PID.
class WebhookReceiver {
 public:
  struct Request {
    std::map<std::string, std::string> headers;
    std::string body;
  };

  WebhookReceiver() {
    char tmpl[] = "/tmp/regfs-webhook-XXXXXX";
    dir_ = mkdtemp(tmpl);
    const std::string script = REGFS_WEBHOOK_RECEIVER;
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      execlp("python3", "python3", script.c_str(), dir_.c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 200 && !fs::exists(dir_ + "/port"); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    std::ifstream in(dir_ + "/port");
    in >> port_;
  }
  ~WebhookReceiver() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }

  bool running() const { return port_ > 0; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/events"; }
  void SetMode(const std::string& mode) {
    std::ofstream(dir_ + "/mode.tmp") << mode;
    fs::rename(dir_ + "/mode.tmp", dir_ + "/mode");
  }

  std::vector<Request> Requests() const {
    std::vector<Request> out;
    std::ifstream in(dir_ + "/requests.jsonl");
    for (std::string line; std::getline(in, line);) {
      auto o = Poco::JSON::Parser().parse(line).extract<Object::Ptr>();
      Request r;
      for (const auto& [k, v] : *o->getObject("headers")) r.headers[k] = v.toString();
      r.body = o->getValue<std::string>("body");
      out.push_back(std::move(r));
    }
    return out;
  }

  // The registry:2 events of every accepted envelope, in arrival order.
  std::vector<Object::Ptr> Events() const {
    std::vector<Object::Ptr> out;
    for (const auto& r : Requests()) {
      auto envelope = Poco::JSON::Parser().parse(r.body).extract<Object::Ptr>();
      auto events = envelope->getArray("events");
      if (!events) continue;
      for (size_t i = 0; i < events->size(); ++i) {
        out.push_back(events->getObject(static_cast<unsigned>(i)));
      }
    }
    return out;
  }

  // Waits until at least `n` events arrived; returns them all.
  std::vector<Object::Ptr> WaitForEvents(size_t n, std::chrono::seconds timeout =
                                                        std::chrono::seconds(15)) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto events = Events();
    while (events.size() < n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      events = Events();
    }
    return events;
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

std::string Action(const Object::Ptr& e) { return e->getValue<std::string>("action"); }
Object::Ptr Target(const Object::Ptr& e) { return e->getObject("target"); }
std::string TargetField(const Object::Ptr& e, const std::string& key) {
  return Target(e)->optValue<std::string>(key, "");
}

std::string EndpointYaml(const WebhookReceiver& receiver, const std::string& extra = "") {
  return "notifications: {endpoints: [{name: ci, url: \"" + receiver.url() +
         "\", timeout: 1s, threshold: 2, backoff: 200ms, headers: {Authorization: [Bearer "
         "hush-hush-token]}" +
         (extra.empty() ? "" : ", " + extra) + "}]}";
}

class NotificationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(receiver_.running());
    ServerOptions options;
    options.top_level_extra = EndpointYaml(receiver_, Extra());
    server_ = std::make_unique<RegistryServer>(options);
    ASSERT_TRUE(server_->Start());
  }
  void TearDown() override {
    if (HasFailure()) server_->PrintLog();
  }
  virtual std::string Extra() const { return ""; }
  HttpClient http() const { return server_->Client(); }

  WebhookReceiver receiver_;
  std::unique_ptr<RegistryServer> server_;
};

constexpr char kOci[] = "application/vnd.oci.image.manifest.v1+json";

TEST_F(NotificationsTest, PushPullAndDeleteGiveRegistry2sEvents) {
  PushedManifest image;
  ASSERT_TRUE(PushImage(http(), "ci/app", "v1", kOci, "events", &image));
  const auto manifest = http().Get(ManifestPath("ci/app", "v1"));
  ASSERT_EQ(manifest.status, 200);
  ASSERT_EQ(http().Head(ManifestPath("ci/app", "v1")).status, 200);  // HEAD is no pull
  auto events = receiver_.WaitForEvents(4);
  ASSERT_GE(events.size(), 4u);
  const std::string layer = TargetField(events[1], "digest");
  ASSERT_EQ(http().Get(BlobPath("ci/app", layer)).status, 200);
  ASSERT_EQ(http().Delete(ManifestPath("ci/app", "v1")).status, 202);
  events = receiver_.WaitForEvents(6);
  ASSERT_EQ(events.size(), 6u);

  // Blob pushes (config, layer), the manifest push with its tag, the pulls, the untag.
  std::vector<std::string> actions;
  for (const auto& e : events) actions.push_back(Action(e));
  EXPECT_EQ(actions, (std::vector<std::string>{"push", "push", "push", "pull", "pull", "delete"}));
  const auto& push = events[2];
  EXPECT_EQ(TargetField(push, "mediaType"), kOci);
  EXPECT_EQ(TargetField(push, "digest"), image.digest);
  EXPECT_EQ(Target(push)->getValue<uint64_t>("size"), image.body.size());
  EXPECT_EQ(Target(push)->getValue<uint64_t>("length"), image.body.size());
  EXPECT_EQ(TargetField(push, "repository"), "ci/app");
  EXPECT_EQ(TargetField(push, "tag"), "v1");
  EXPECT_EQ(TargetField(push, "url"), "http://127.0.0.1:" + std::to_string(server_->port()) +
                                          "/v2/ci/app/manifests/" + image.digest);
  EXPECT_EQ(push->getObject("request")->getValue<std::string>("method"), "PUT");
  EXPECT_EQ(push->getObject("request")->getValue<std::string>("id").size(), 36u);
  EXPECT_FALSE(push->getObject("source")->getValue<std::string>("instanceID").empty());
  EXPECT_TRUE(push->getObject("actor")->size() == 0);  // anonymous
  EXPECT_EQ(TargetField(events[0], "mediaType"), "application/octet-stream");
  EXPECT_EQ(TargetField(events[3], "tag"), "v1");
  EXPECT_EQ(events[3]->getObject("request")->getValue<std::string>("method"), "GET");
  EXPECT_EQ(TargetField(events[4], "digest"), layer);
  EXPECT_EQ(TargetField(events[5], "tag"), "v1");
  std::set<std::string> ids;
  for (const auto& e : events) {
    ids.insert(e->getValue<std::string>("id"));
    EXPECT_TRUE(e->getValue<std::string>("timestamp").ends_with("Z"));
  }
  EXPECT_EQ(ids.size(), events.size());

  auto requests = receiver_.Requests();
  EXPECT_EQ(requests[0].headers["Content-Type"], "application/vnd.docker.distribution.events.v1+json");
  EXPECT_EQ(requests[0].headers["Authorization"], "Bearer hush-hush-token");
  // Credentials in headers never reach the log.
  EXPECT_EQ(server_->ReadLog().find("hush-hush"), std::string::npos);
}

TEST_F(NotificationsTest, AFailingReceiverGetsEverythingInOrderOnceItRecovers) {
  receiver_.SetMode("fail");
  for (const std::string tag : {"t1", "t2", "t3"}) {
    PushedManifest image;
    ASSERT_TRUE(PushImage(http(), "ci/retry", tag, kOci, "retry-" + tag, &image));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_TRUE(receiver_.Events().empty());
  EXPECT_TRUE(server_->WaitForLog("HTTP 500"));
  receiver_.SetMode("ok");
  auto events = receiver_.WaitForEvents(9);
  ASSERT_EQ(events.size(), 9u);
  std::vector<std::string> tags;
  for (const auto& e : events) {
    if (!TargetField(e, "tag").empty()) tags.push_back(TargetField(e, "tag"));
  }
  EXPECT_EQ(tags, (std::vector<std::string>{"t1", "t2", "t3"}));
  EXPECT_TRUE(server_->WaitForLog("delivered again after"));
}

TEST_F(NotificationsTest, AnEventOfAKilledServerIsDeliveredAfterItsRestart) {
  receiver_.SetMode("fail");
  ASSERT_TRUE(PushBlob(http(), "ci/crash", "pushed just before the crash"));
  server_->Kill();
  receiver_.SetMode("ok");
  ASSERT_TRUE(server_->Restart(server_->options()));
  auto events = receiver_.WaitForEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(TargetField(events[0], "digest"),
            Digest::Sha256Of("pushed just before the crash").ToString());
}

TEST_F(NotificationsTest, AHangingReceiverTimesOutAndIsRetried) {
  receiver_.SetMode("hang");
  ASSERT_TRUE(PushBlob(http(), "ci/hang", "hung"));
  EXPECT_TRUE(server_->WaitForLog("no answer from", std::chrono::seconds(5)));
  receiver_.SetMode("ok");
  EXPECT_EQ(receiver_.WaitForEvents(1).size(), 1u);
}

class SignedCloudEventsTest : public NotificationsTest {
 protected:
  std::string Extra() const override {
    return "format: cloudevents, secret: \"s3cr3t\", ignore: {actions: [pull]}";
  }
};

TEST_F(SignedCloudEventsTest, EachEventIsACloudEventWithASignature) {
  ASSERT_TRUE(PushBlob(http(), "ci/ce", "cloud"));
  ASSERT_EQ(http().Get(BlobPath("ci/ce", Digest::Sha256Of("cloud").ToString())).status, 200);
  std::vector<WebhookReceiver::Request> requests;
  for (int i = 0; i < 200 && requests.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    requests = receiver_.Requests();
  }
  ASSERT_EQ(requests.size(), 1u);  // the pull is ignored
  EXPECT_EQ(requests[0].headers["Content-Type"], "application/cloudevents+json");
  EXPECT_EQ(requests[0].headers["X-Regfs-Signature-256"],
            "sha256=" + LowerHex(HmacSha256("s3cr3t", requests[0].body)));
  auto ce = Poco::JSON::Parser().parse(requests[0].body).extract<Object::Ptr>();
  EXPECT_EQ(ce->getValue<std::string>("specversion"), "1.0");
  EXPECT_EQ(ce->getValue<std::string>("type"), "regfs.registry.push");
  EXPECT_EQ(ce->getValue<std::string>("subject"), "ci/ce");
  EXPECT_EQ(ce->getObject("data")->getObject("target")->getValue<std::string>("digest"),
            Digest::Sha256Of("cloud").ToString());
  EXPECT_EQ(ce->getValue<std::string>("id"), ce->getObject("data")->getValue<std::string>("id"));
  EXPECT_EQ(server_->ReadLog().find("s3cr3t"), std::string::npos);
}

class LimitedEndpointTest : public NotificationsTest {
 protected:
  std::string Extra() const override { return "maxage: 1s, maxevents: 3"; }
};

TEST_F(LimitedEndpointTest, EventsRefusedPastTheLimitsAreDroppedWithALogLine) {
  receiver_.SetMode("fail");
  ASSERT_TRUE(PushBlob(http(), "ci/limits", "too old to deliver"));
  EXPECT_TRUE(server_->WaitForLog("dropped 1 events of log entries", std::chrono::seconds(5)));
  EXPECT_TRUE(server_->WaitForLog("limits (maxevents 3, maxage 1s)"));
  receiver_.SetMode("ok");
  ASSERT_TRUE(PushBlob(http(), "ci/limits", "in time"));
  auto events = receiver_.WaitForEvents(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  events = receiver_.Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(TargetField(events[0], "digest"), Digest::Sha256Of("in time").ToString());
}

class ReferencesTest : public NotificationsTest {
 protected:
  // includereferences is a section key, not an endpoint's: a whole section here.
  void SetUp() override {
    ASSERT_TRUE(receiver_.running());
    ServerOptions options;
    options.top_level_extra = "notifications: {events: {includereferences: true}, endpoints: "
                              "[{name: ci, url: \"" + receiver_.url() + "\"}]}";
    server_ = std::make_unique<RegistryServer>(options);
    ASSERT_TRUE(server_->Start());
  }
};

TEST_F(ReferencesTest, ManifestEventsListWhatTheManifestRefersTo) {
  PushedManifest image;
  ASSERT_TRUE(PushImage(http(), "ci/refs", "v1", kOci, "refs", &image));
  auto events = receiver_.WaitForEvents(3);
  ASSERT_EQ(events.size(), 3u);
  auto refs = Target(events[2])->getArray("references");
  ASSERT_TRUE(refs);
  ASSERT_EQ(refs->size(), 2u);  // config and layer
  EXPECT_EQ(refs->getObject(0)->getValue<std::string>("digest"), TargetField(events[0], "digest"));
  EXPECT_EQ(refs->getObject(1)->getValue<std::string>("digest"), TargetField(events[1], "digest"));
  EXPECT_FALSE(Target(events[0])->has("references"));  // blobs refer to nothing
}

// Two replicas on one storage deliver each event once between them, and the survivor takes
// over when the delivering one dies.
TEST(NotificationReplicasTest, EachEventOnceAndTakenOverWhenTheDelivererDies) {
  WebhookReceiver receiver;
  ASSERT_TRUE(receiver.running());
  char tmpl[] = "/tmp/regfs-replicas-XXXXXX";
  const std::string root = mkdtemp(tmpl);
  ServerOptions options;
  options.root_directory = root;
  options.top_level_extra = EndpointYaml(receiver);
  RegistryServer a(options), b(options);
  ASSERT_TRUE(a.Start());
  ASSERT_TRUE(b.Start());
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(PushBlob((i % 2 ? a : b).Client(), "ci/replicas", "blob " + std::to_string(i)));
  }
  auto events = receiver.WaitForEvents(6);
  std::this_thread::sleep_for(std::chrono::seconds(1));  // room for a duplicate to show
  events = receiver.Events();
  ASSERT_EQ(events.size(), 6u);
  std::set<std::string> ids, digests;
  for (const auto& e : events) {
    ids.insert(e->getValue<std::string>("id"));
    digests.insert(TargetField(e, "digest"));
  }
  EXPECT_EQ(ids.size(), 6u);
  EXPECT_EQ(digests.size(), 6u);

  RegistryServer& deliverer = a.ReadLog().find("delivering to") != std::string::npos ? a : b;
  RegistryServer& other = &deliverer == &a ? b : a;
  EXPECT_EQ(other.ReadLog().find("delivering to"), std::string::npos);
  deliverer.Kill();
  ASSERT_TRUE(PushBlob(other.Client(), "ci/replicas", "after the takeover"));
  events = receiver.WaitForEvents(7);
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(TargetField(events[6], "digest"), Digest::Sha256Of("after the takeover").ToString());
  EXPECT_TRUE(other.WaitForLog("delivering to"));
  a.Stop();
  b.Stop();
  fs::remove_all(root);
}

}  // namespace
}  // namespace regfs::testing
