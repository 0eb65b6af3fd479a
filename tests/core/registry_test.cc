// The Registry model over every storage driver.
#include "regfs/core/registry.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>

#include <sstream>
#include <thread>

#include "test_drivers.h"

namespace regfs {
namespace {

class RecordingListener : public ChangeListener {
 public:
  void OnChange(const ChangeEvent& e) override {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
  }
  std::mutex mu;
  std::vector<ChangeEvent> events;
};

class RegistryTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    driver_ = factory_.Make();
    registry_ = Open({.delete_enabled = true});
  }
  std::unique_ptr<Registry> Open(RegistryOptions options) {
    options.driver = driver_;
    options.listeners.push_back(listener_);
    auto r = Registry::Open(std::move(options));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(*r);
  }

  Digest PushBlob(const std::string& repo, const std::string& content) {
    auto up = registry_->StartUpload(repo);
    EXPECT_TRUE(up.ok());
    std::istringstream body(content);
    EXPECT_TRUE(registry_->AppendUpload(repo, up->id, body, std::nullopt).ok());
    Digest d = Digest::Sha256Of(content);
    auto blob = registry_->CommitUpload(repo, up->id, d);
    EXPECT_TRUE(blob.ok()) << blob.status().ToString();
    return d;
  }

  std::string ImageManifest(const Digest& config, const Digest& layer,
                            const std::string& extra = "") {
    return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
           R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
           config.ToString() +
           R"(","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
           layer.ToString() + R"(","size":5}])" + extra + "}";
  }

  testing::DriverFactory factory_{GetParam()};
  std::shared_ptr<StorageDriver> driver_;
  std::shared_ptr<RecordingListener> listener_ = std::make_shared<RecordingListener>();
  std::unique_ptr<Registry> registry_;
};

TEST_P(RegistryTest, ChunkedUploadCommitsAndLinks) {
  auto up = registry_->StartUpload("team/app");
  ASSERT_TRUE(up.ok());
  std::istringstream a("hel"), b("lo");
  ASSERT_TRUE(registry_->AppendUpload("team/app", up->id, a, 0).ok());
  auto mid = registry_->AppendUpload("team/app", up->id, b, 3);
  ASSERT_TRUE(mid.ok()) << mid.status().ToString();
  EXPECT_EQ(mid->size, 5u);
  auto blob = registry_->CommitUpload("team/app", up->id, Digest::Sha256Of("hello"));
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  EXPECT_EQ(blob->size, 5u);
  auto stat = registry_->StatBlob("team/app", Digest::Sha256Of("hello"));
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->size, 5u);
  // The link file holds the digest without a newline, as registry:2 writes it.
  auto link = driver_->GetContent("docker/registry/v2/repositories/team/app/_layers/sha256/" +
                                      Digest::Sha256Of("hello").hex() + "/link",
                                  200);
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(*link, Digest::Sha256Of("hello").ToString());
  // The upload is gone.
  EXPECT_EQ(registry_->StatUpload("team/app", up->id).status().reason(),
            Status::Reason::kBlobUploadUnknown);
}

TEST_P(RegistryTest, OutOfOrderChunkIsRefused) {
  auto up = registry_->StartUpload("a");
  std::istringstream a("abc"), b("def");
  ASSERT_TRUE(registry_->AppendUpload("a", up->id, a, 0).ok());
  auto r = registry_->AppendUpload("a", up->id, b, 5);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), Status::Reason::kRangeInvalid);
  EXPECT_EQ(registry_->StatUpload("a", up->id)->size, 3u);
}

TEST_P(RegistryTest, DigestMismatchLeavesNothing) {
  auto up = registry_->StartUpload("a");
  std::istringstream a("abc");
  ASSERT_TRUE(registry_->AppendUpload("a", up->id, a, std::nullopt).ok());
  auto r = registry_->CommitUpload("a", up->id, Digest::Sha256Of("abd"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().reason(), Status::Reason::kDigestInvalid);
  EXPECT_FALSE(registry_->StatBlob("a", Digest::Sha256Of("abc")).ok());
  EXPECT_FALSE(registry_->StatBlob("a", Digest::Sha256Of("abd")).ok());
  EXPECT_FALSE(registry_->StatUpload("a", up->id).ok());
}

TEST_P(RegistryTest, AnotherReplicaContinuesAnUpload) {
  // Upload state is in storage: a second Registry on the same storage (another process,
  // or this one after a restart) continues and completes the upload.
  auto up = registry_->StartUpload("a");
  std::istringstream a("hel");
  ASSERT_TRUE(registry_->AppendUpload("a", up->id, a, 0).ok());
  auto replica = Open({.delete_enabled = true});
  std::istringstream b("lo");
  ASSERT_TRUE(replica->AppendUpload("a", up->id, b, 3).ok());
  auto blob = replica->CommitUpload("a", up->id, Digest::Sha256Of("hello"));
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
}

TEST_P(RegistryTest, UploadHashStatesAreKeptAsRegistry2KeepsThem) {
  // After each chunk, the hash so far under _uploads/<id>/hashstates/sha256/<offset>: a
  // process that did not receive that chunk continues from it without reading the bytes.
  auto up = registry_->StartUpload("a");
  std::istringstream a("hel"), b("lo");
  ASSERT_TRUE(registry_->AppendUpload("a", up->id, a, 0).ok());
  ASSERT_TRUE(registry_->AppendUpload("a", up->id, b, 3).ok());
  for (auto [offset, prefix] : {std::pair{3, "hel"}, std::pair{5, "hello"}}) {
    auto saved = driver_->GetContent("docker/registry/v2/repositories/a/_uploads/" + up->id +
                                         "/hashstates/sha256/" + std::to_string(offset),
                                     512);
    ASSERT_TRUE(saved.ok()) << offset << ": " << saved.status().ToString();
    auto restored = DigestHasher::RestoreState("sha256", *saved);
    ASSERT_TRUE(restored.has_value());
    EXPECT_EQ(restored->Current(), Digest::Sha256Of(prefix));
  }
  // A replica, with nothing cached, finishes from the saved state.
  auto replica = Open({.delete_enabled = true});
  auto blob = replica->CommitUpload("a", up->id, Digest::Sha256Of("hello"));
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
}

TEST_P(RegistryTest, UploadIdsCannotEscape) {
  for (const char* bad : {"..", "../../x", "a/b", "", "%2e%2e"}) {
    EXPECT_EQ(registry_->StatUpload("a", bad).status().reason(), Status::Reason::kBlobUploadUnknown)
        << bad;
    std::istringstream body("x");
    EXPECT_FALSE(registry_->AppendUpload("a", bad, body, std::nullopt).ok());
  }
}

TEST_P(RegistryTest, MountLinksWithoutCopying) {
  Digest d = PushBlob("src", "shared");
  auto m = registry_->MountBlob("dst", "src", d);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(registry_->StatBlob("dst", d).ok());
  EXPECT_TRUE(registry_->MountBlob("dst2", "nothere", d).status().IsNotFound());
  EXPECT_FALSE(registry_->StatBlob("dst2", d).ok());
}

TEST_P(RegistryTest, ManifestPutGetTagAndDelete) {
  Digest config = PushBlob("r", "{}");
  Digest layer = PushBlob("r", "layer");
  std::string body = ImageManifest(config, layer);
  auto put = registry_->PutManifest("r", "v1", "application/vnd.oci.image.manifest.v1+json", body);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->digest, Digest::Sha256Of(body));
  auto got = registry_->GetManifest("r", "v1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->bytes, body);
  EXPECT_EQ(got->info.media_type, "application/vnd.oci.image.manifest.v1+json");
  auto stat = registry_->StatManifest("r", put->digest.ToString());
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->size, body.size());

  ASSERT_TRUE(registry_->PutManifest("r", "v2", "", body).ok());
  ASSERT_TRUE(registry_->DeleteManifest("r", "v1").ok());  // untag only
  EXPECT_TRUE(registry_->GetManifest("r", put->digest.ToString()).ok());
  EXPECT_EQ(registry_->ListTags("r", "", 100)->entries, std::vector<std::string>{"v2"});
  ASSERT_TRUE(registry_->DeleteManifest("r", put->digest.ToString()).ok());
  EXPECT_EQ(registry_->GetManifest("r", "v2").status().reason(), Status::Reason::kManifestUnknown);
  EXPECT_TRUE(registry_->ListTags("r", "", 100)->entries.empty());
}

TEST_P(RegistryTest, ManifestReferencingMissingBlobIsRefused) {
  Digest config = PushBlob("r", "{}");
  auto put =
      registry_->PutManifest("r", "v1", "", ImageManifest(config, Digest::Sha256Of("missing")));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().reason(), Status::Reason::kManifestBlobUnknown);
  // A blob of another repository does not count.
  Digest other = PushBlob("other", "layer");
  put = registry_->PutManifest("r", "v1", "", ImageManifest(config, other));
  EXPECT_EQ(put.status().reason(), Status::Reason::kManifestBlobUnknown);
}

TEST_P(RegistryTest, PutByDigestMustMatch) {
  Digest config = PushBlob("r", "{}");
  Digest layer = PushBlob("r", "layer");
  std::string body = ImageManifest(config, layer);
  auto put = registry_->PutManifest("r", Digest::Sha256Of("x").ToString(), "", body);
  EXPECT_EQ(put.status().reason(), Status::Reason::kDigestInvalid);
  EXPECT_TRUE(registry_->PutManifest("r", Digest::Sha256Of(body).ToString(), "", body).ok());
}

TEST_P(RegistryTest, TagsAndCatalogPaginateInLexicalOrder) {
  Digest config = PushBlob("r", "{}");
  Digest layer = PushBlob("r", "layer");
  std::string body = ImageManifest(config, layer);
  for (const char* t : {"b", "a", "c", "B", "a1"})
    ASSERT_TRUE(registry_->PutManifest("r", t, "", body).ok());
  auto p1 = registry_->ListTags("r", "", 2);
  EXPECT_EQ(p1->entries, (std::vector<std::string>{"B", "a"}));
  EXPECT_TRUE(p1->more);
  auto p2 = registry_->ListTags("r", "a", 10);
  EXPECT_EQ(p2->entries, (std::vector<std::string>{"a1", "b", "c"}));
  EXPECT_FALSE(p2->more);
  EXPECT_EQ(registry_->ListTags("nope", "", 10).status().reason(), Status::Reason::kNameUnknown);

  for (const char* repo : {"x/y/z", "x", "m/n"}) {
    Digest c = PushBlob(repo, "{}");
    Digest l = PushBlob(repo, "layer");
    ASSERT_TRUE(registry_->PutManifest(repo, "t", "", ImageManifest(c, l)).ok());
  }
  auto repos = registry_->ListRepositories("", 100);
  EXPECT_EQ(repos->entries, (std::vector<std::string>{"m/n", "r", "x", "x/y/z"}));
  auto after = registry_->ListRepositories("r", 1);
  EXPECT_EQ(after->entries, std::vector<std::string>{"x"});
  EXPECT_TRUE(after->more);
}

TEST_P(RegistryTest, ReferrersFollowSubjects) {
  Digest config = PushBlob("r", "{}");
  Digest layer = PushBlob("r", "layer");
  std::string image = ImageManifest(config, layer);
  Digest subject = registry_->PutManifest("r", "v1", "", image)->digest;
  std::string sig = ImageManifest(
      config, layer,
      R"(,"artifactType":"application/x.sig","subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
          subject.ToString() + R"(","size":1})");
  auto put = registry_->PutManifest("r", Digest::Sha256Of(sig).ToString(), "", sig);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  ASSERT_TRUE(put->subject.has_value());
  auto refs = registry_->ListReferrers("r", subject, "");
  ASSERT_TRUE(refs.ok());
  ASSERT_EQ(refs->size(), 1u);
  EXPECT_EQ((*refs)[0].artifact_type, "application/x.sig");
  EXPECT_EQ(registry_->ListReferrers("r", subject, "application/other")->size(), 0u);
}

TEST_P(RegistryTest, DeletesAndWritesCanBeSwitchedOff) {
  Digest d = PushBlob("r", "x");
  auto no_delete = Open({.delete_enabled = false});
  EXPECT_EQ(no_delete->DeleteBlob("r", d).reason(), Status::Reason::kUnsupported);
  EXPECT_EQ(no_delete->DeleteManifest("r", "v1").reason(), Status::Reason::kUnsupported);
  auto ro = Open({.read_only = true});
  EXPECT_EQ(ro->StartUpload("r").status().reason(), Status::Reason::kUnsupported);
  EXPECT_TRUE(ro->StatBlob("r", d).ok());
}

TEST_P(RegistryTest, SameBlobPushedConcurrentlyIsStoredOnce) {
  const std::string content(1 << 20, 'z');
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      auto up = registry_->StartUpload("c");
      if (!up.ok()) return;
      std::istringstream body(content);
      if (!registry_->AppendUpload("c", up->id, body, std::nullopt).ok()) return;
      if (registry_->CommitUpload("c", up->id, Digest::Sha256Of(content)).ok()) ok++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 16);
  auto blob = registry_->OpenBlob("c", Digest::Sha256Of(content), 0);
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(blob->info.size, content.size());
}

TEST_P(RegistryTest, PutsRacingDeletesLeaveNoTagWithoutItsManifest) {
  // Tag PUTs and deletes of the same manifest, and layer links and their deletes, at once:
  // each call either happens or fails cleanly, and no tag outlives its manifest.
  Digest config = PushBlob("race", "{}");
  Digest layer = PushBlob("race", "layer");
  PushBlob("source", "layer");
  const std::string body = ImageManifest(config, layer);
  const Digest digest = Digest::Sha256Of(body);
  // The deletes go through a second registry on its own driver over the same storage, as
  // another process (a mount, a replica) would.
  auto opened = Registry::Open({.driver = factory_.MakeSecond(), .delete_enabled = true});
  ASSERT_TRUE(opened.ok());
  std::unique_ptr<Registry> replica = std::move(*opened);
  std::atomic<bool> stop{false};
  std::atomic<int> unexpected{0};
  auto expect_clean = [&](const Status& s) {
    if (!s.ok() && s.reason() != Status::Reason::kManifestUnknown &&
        s.reason() != Status::Reason::kManifestBlobUnknown &&
        s.reason() != Status::Reason::kBlobUnknown) {
      ADD_FAILURE() << s.ToString();
      unexpected++;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 60 && unexpected == 0; ++i)
        expect_clean(registry_->PutManifest("race", "t" + std::to_string(t), "", body).status());
    });
  }
  threads.emplace_back([&] {
    while (!stop && unexpected == 0) expect_clean(replica->DeleteManifest("race", digest.ToString()));
  });
  threads.emplace_back([&] {
    while (!stop && unexpected == 0) {
      expect_clean(replica->DeleteBlob("race", layer));
      expect_clean(registry_->MountBlob("race", "source", layer).status());
    }
  });
  for (int t = 0; t < 4; ++t) threads[t].join();
  stop = true;
  for (size_t t = 4; t < threads.size(); ++t) threads[t].join();
  auto tags = registry_->ListTags("race", "", 100);
  ASSERT_TRUE(tags.ok());
  for (const std::string& tag : tags->entries) {
    auto m = registry_->GetManifest("race", tag);
    EXPECT_TRUE(m.ok()) << tag << ": " << m.status().ToString();
  }
}

TEST_P(RegistryTest, ChangesAreAnnounced) {
  Digest config = PushBlob("r", "{}");
  Digest layer = PushBlob("r", "layer");
  ASSERT_TRUE(registry_->PutManifest("r", "v1", "", ImageManifest(config, layer)).ok());
  std::lock_guard<std::mutex> lock(listener_->mu);
  ASSERT_GE(listener_->events.size(), 4u);
  EXPECT_EQ(listener_->events.back().kind, ChangeEvent::Kind::kTagSet);
  EXPECT_EQ(listener_->events.back().tag, "v1");
}

TEST_P(RegistryTest, PurgeRemovesOnlyOldUploads) {
  auto up = registry_->StartUpload("p");
  ASSERT_TRUE(up.ok());
  auto past = std::chrono::system_clock::now() - std::chrono::hours(1);
  EXPECT_EQ(*registry_->PurgeUploads(past, false), 0u);
  EXPECT_TRUE(registry_->StatUpload("p", up->id).ok());
  auto future = std::chrono::system_clock::now() + std::chrono::hours(1);
  EXPECT_EQ(*registry_->PurgeUploads(future, true), 1u);
  EXPECT_TRUE(registry_->StatUpload("p", up->id).ok());
  EXPECT_EQ(*registry_->PurgeUploads(future, false), 1u);
  EXPECT_FALSE(registry_->StatUpload("p", up->id).ok());
}

// What the hot read paths cost in backend requests once warm (a remote store's requests
// are what pulls wait for). Recorded in the test's properties; the bounds keep them from
// growing unnoticed.
TEST_P(RegistryTest, ReadsCostFewBackendRequests) {
  Digest config = PushBlob("cost", "{}");
  Digest layer = PushBlob("cost", "layer");
  const std::string body = ImageManifest(config, layer);
  ASSERT_TRUE(registry_->PutManifest("cost", "v1", "", body).ok());
  const Digest digest = Digest::Sha256Of(body);
  ASSERT_TRUE(registry_->GetManifest("cost", "v1").ok());  // warm whatever caches there are
  auto cost = [&](const char* name, const std::function<bool()>& operation) {
    uint64_t before = driver_->requests_sent();
    EXPECT_TRUE(operation()) << name;
    uint64_t spent = driver_->requests_sent() - before;
    RecordProperty(name, std::to_string(spent));
    std::printf("%s: %llu backend requests\n", name, static_cast<unsigned long long>(spent));
    return spent;
  };
  uint64_t blob_head = cost("blob_head", [&] { return registry_->StatBlob("cost", layer).ok(); });
  uint64_t by_tag = cost("manifest_get_by_tag", [&] { return registry_->GetManifest("cost", "v1").ok(); });
  uint64_t by_digest = cost("manifest_get_by_digest", [&] {
    return registry_->GetManifest("cost", digest.ToString()).ok();
  });
  uint64_t head = cost("manifest_head_by_tag", [&] { return registry_->StatManifest("cost", "v1").ok(); });
  uint64_t tags = cost("tags_list", [&] { return registry_->ListTags("cost", "", 100).ok(); });
  if (GetParam() != "s3") return;  // local drivers count nothing
  // One request each: the link that says the repository has it (a blob's link, a tag, a
  // revision); what the content is (size, media type, a manifest's bytes) never changes
  // for a digest, so every replica may keep it.
  EXPECT_LE(blob_head, 1u);
  EXPECT_LE(by_tag, 1u);
  EXPECT_LE(by_digest, 1u);
  EXPECT_LE(head, 1u);
  EXPECT_LE(tags, 2u);
}

INSTANTIATE_TEST_SUITE_P(AllDrivers, RegistryTest, ::testing::ValuesIn(testing::TestDriverKinds()),
                         testing::DriverName);

}  // namespace
}  // namespace regfs
