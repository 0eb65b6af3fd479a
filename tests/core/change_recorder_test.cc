// What the change recorder puts in the change log for registry operations: one entry per
// scope with its actor and request, single entries outside scopes, no upload start/end,
// and entries kept for a retry while the storage refuses them.
#include "regfs/core/change_recorder.h"

#include <gtest/gtest.h>

#include <mutex>
#include <sstream>
#include <thread>

#include "faulty_driver.h"
#include "test_drivers.h"

namespace regfs {
namespace {

class ChangeRecorderTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    driver_ = factory_.Make();
    log_ = OpenChangeLog(driver_);
    recorder_ = ChangeRecorder::Start({.log = log_,
                                       .instance = "instance-1",
                                       .source_addr = "host:5000",
                                       .default_actor = "maintenance",
                                       .retry_interval = std::chrono::milliseconds(20)});
    RegistryOptions options;
    options.driver = driver_;
    options.delete_enabled = true;
    options.listeners.push_back(recorder_);
    auto opened = Registry::Open(std::move(options));
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    registry_ = std::move(*opened);
  }

  Digest PushBlob(const std::string& repo, const std::string& content) {
    auto up = registry_->StartUpload(repo);
    EXPECT_TRUE(up.ok());
    std::istringstream body(content);
    EXPECT_TRUE(registry_->AppendUpload(repo, up->id, body, std::nullopt).ok());
    const Digest d = Digest::Sha256Of(content);
    EXPECT_TRUE(registry_->CommitUpload(repo, up->id, d).ok());
    return d;
  }

  std::vector<ChangeRecord> Records() {
    auto batch = log_->Read(0, 1000);
    EXPECT_TRUE(batch.ok());
    std::vector<ChangeRecord> out;
    for (const auto& e : batch->entries) {
      auto r = DecodeChangeRecord(e.body);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) out.push_back(*r);
    }
    return out;
  }

  testing::DriverFactory factory_{GetParam()};
  std::shared_ptr<StorageDriver> driver_;
  std::shared_ptr<ChangeLog> log_;
  std::shared_ptr<ChangeRecorder> recorder_;
  std::unique_ptr<Registry> registry_;
};

TEST_P(ChangeRecorderTest, OneEntryPerScopeWithItsActorAndRequest) {
  std::optional<Digest> layer;
  {
    ChangeRecorder::Scope scope(recorder_.get(),
                                {.id = "req-1", .addr = "10.0.0.1:4000", .host = "reg:5000",
                                 .method = "PUT", .user_agent = "docker/27"},
                                "anonymous");
    scope.set_actor("alice");
    layer = PushBlob("team/app", "layer bytes");
    ASSERT_TRUE(scope.Flush().ok());
    EXPECT_EQ(*log_->Newest(), 1u);  // durable before the front end answers
    scope.Add({.kind = ChangeEvent::Kind::kBlobPulled, .repository = "team/app",
               .digest = layer, .size = 11});
  }
  // Outside any scope: the default actor, no request.
  ASSERT_TRUE(registry_->DeleteBlob("team/app", *layer).ok());

  auto records = Records();
  ASSERT_EQ(records.size(), 3u);
  const ChangeRecord& push = records[0];
  ASSERT_EQ(push.events.size(), 1u);  // the blob link; upload start and end are not logged
  EXPECT_EQ(push.events[0].kind, ChangeEvent::Kind::kBlobLinked);
  EXPECT_EQ(push.events[0].repository, "team/app");
  EXPECT_EQ(push.events[0].digest, layer);
  EXPECT_EQ(push.events[0].size, 11u);
  EXPECT_EQ(push.actor, "alice");
  EXPECT_EQ(push.instance, "instance-1");
  EXPECT_EQ(push.source_addr, "host:5000");
  EXPECT_EQ(push.request.id, "req-1");
  EXPECT_EQ(push.request.addr, "10.0.0.1:4000");
  EXPECT_EQ(push.request.host, "reg:5000");
  EXPECT_EQ(push.request.method, "PUT");
  EXPECT_EQ(push.request.user_agent, "docker/27");
  // What was added after the flush went out as a next entry when the scope closed.
  ASSERT_EQ(records[1].events.size(), 1u);
  EXPECT_EQ(records[1].events[0].kind, ChangeEvent::Kind::kBlobPulled);
  EXPECT_EQ(records[2].events[0].kind, ChangeEvent::Kind::kBlobUnlinked);
  EXPECT_EQ(records[2].actor, "maintenance");
  EXPECT_TRUE(records[2].request.id.empty());
}

TEST_P(ChangeRecorderTest, AManifestPushByTagIsOneEntry) {
  const Digest config = PushBlob("team/app", "{}");
  const std::string manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      config.ToString() + R"(","size":2},"layers":[]})";
  {
    ChangeRecorder::Scope scope(recorder_.get(), {.id = "req-2", .method = "PUT"}, "bob");
    ASSERT_TRUE(registry_
                    ->PutManifest("team/app", "v1", "application/vnd.oci.image.manifest.v1+json",
                                  manifest)
                    .ok());
  }
  auto records = Records();
  ASSERT_EQ(records.size(), 2u);
  std::vector<ChangeEvent::Kind> kinds;
  for (const auto& e : records[1].events) kinds.push_back(e.kind);
  EXPECT_EQ(kinds, (std::vector<ChangeEvent::Kind>{ChangeEvent::Kind::kManifestPut,
                                                   ChangeEvent::Kind::kTagSet}));
  EXPECT_EQ(records[1].events[1].tag, "v1");
  EXPECT_EQ(records[1].events[0].media_type, "application/vnd.oci.image.manifest.v1+json");
}

TEST_P(ChangeRecorderTest, NestedScopesRecordOnceInTheOuter) {
  {
    ChangeRecorder::Scope outer(recorder_.get(), {.id = "outer"}, "a");
    ChangeRecorder::Scope inner(recorder_.get(), {.id = "inner"}, "b");
    PushBlob("team/app", "x");
    EXPECT_TRUE(inner.Flush().ok());
    EXPECT_EQ(*log_->Newest(), 0u);
  }
  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].request.id, "outer");
}

TEST_P(ChangeRecorderTest, ChangesCommittedTogetherShareEntries) {
  std::vector<ChangeEvent> unlinked;
  for (int i = 0; i < 450; ++i) {
    unlinked.push_back({.kind = ChangeEvent::Kind::kBlobUnlinked,
                        .repository = "team/app",
                        .digest = Digest::Sha256Of(std::to_string(i))});
  }
  recorder_->OnChanges(unlinked);  // outside any scope, as a garbage collection does
  auto records = Records();
  ASSERT_EQ(records.size(), 3u);  // 200 + 200 + 50, not 450 entries
  EXPECT_EQ(records[0].events.size(), ChangeRecorder::kMaxEventsPerEntry);
  EXPECT_EQ(records[2].events.size(), 50u);
  EXPECT_EQ(records[2].events.back().digest, unlinked.back().digest);
}

TEST_P(ChangeRecorderTest, NullRecorderScopeRecordsNothing) {
  ChangeRecorder::Scope scope(nullptr, {.id = "r"}, "a");
  scope.Add({.kind = ChangeEvent::Kind::kBlobPulled, .repository = "x"});
  EXPECT_TRUE(scope.Flush().ok());
}

INSTANTIATE_TEST_SUITE_P(AllDrivers, ChangeRecorderTest,
                         ::testing::ValuesIn(testing::TestDriverKinds()), testing::DriverName);

// A storage that refuses writes for a while: the entry waits, in order, and goes in once the
// storage recovers; the operation itself succeeded.
TEST(ChangeRecorderRetryTest, EntriesWaitForTheStorageInOrder) {
  auto inner = NewInMemoryDriver();
  auto faulty = std::make_shared<testing::FaultyDriver>(inner, 0, testing::FaultyDriver::Mode::kFail);
  auto log = OpenChangeLog(faulty);
  std::vector<Status> reported;
  std::mutex mu;
  auto recorder = ChangeRecorder::Start({.log = log,
                                         .on_error =
                                             [&](const Status& s) {
                                               std::lock_guard<std::mutex> l(mu);
                                               reported.push_back(s);
                                             },
                                         .retry_interval = std::chrono::milliseconds(10)});
  faulty->set_refusing(true);
  recorder->OnChange({.kind = ChangeEvent::Kind::kTagSet, .repository = "a", .tag = "1"});
  recorder->OnChange({.kind = ChangeEvent::Kind::kTagSet, .repository = "a", .tag = "2"});
  EXPECT_EQ(recorder->pending(), 2u);
  EXPECT_GE(recorder->failed_appends(), 2u);
  faulty->set_refusing(false);
  for (int i = 0; i < 500 && recorder->pending() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(recorder->pending(), 0u);
  auto batch = OpenChangeLog(inner)->Read(0, 10);
  ASSERT_EQ(batch->entries.size(), 2u);
  EXPECT_EQ(DecodeChangeRecord(batch->entries[0].body)->events[0].tag, "1");
  EXPECT_EQ(DecodeChangeRecord(batch->entries[1].body)->events[0].tag, "2");
  std::lock_guard<std::mutex> l(mu);
  ASSERT_FALSE(reported.empty());
  EXPECT_FALSE(reported.front().ok());
  EXPECT_TRUE(reported.back().ok());  // "accepts entries again"
}

}  // namespace
}  // namespace regfs
