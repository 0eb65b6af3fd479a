// Registry::CollectGarbage over every driver: what goes, what stays, the grace window, the
// fence against writers linking a blob while it is being deleted, and crashes midway.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include <atomic>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "faulty_driver.h"
#include "layout.h"
#include "regfs/core/registry.h"
#include "sweep_fence.h"
#include "test_drivers.h"

namespace regfs {
namespace {

using testing::FaultyDriver;
using namespace std::chrono_literals;

constexpr const char* kImageType = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kIndexType = "application/vnd.oci.image.index.v1+json";

std::unique_ptr<Registry> OpenOn(std::shared_ptr<StorageDriver> driver) {
  auto r = Registry::Open({.driver = std::move(driver), .delete_enabled = true});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(*r) : nullptr;
}

Result<Digest> TryPush(Registry& registry, const std::string& repo, const std::string& content) {
  auto up = registry.StartUpload(repo);
  if (!up.ok()) return up.status();
  std::istringstream body(content);
  auto appended = registry.AppendUpload(repo, up->id, body, std::nullopt);
  if (!appended.ok()) return appended.status();
  auto blob = registry.CommitUpload(repo, up->id, Digest::Sha256Of(content));
  if (!blob.ok()) return blob.status();
  return blob->digest;
}

Digest Push(Registry& registry, const std::string& repo, const std::string& content) {
  auto pushed = TryPush(registry, repo, content);
  EXPECT_TRUE(pushed.ok()) << pushed.status().ToString();
  return Digest::Sha256Of(content);
}

std::string Image(const Digest& config, const Digest& layer, const std::string& extra = "") {
  return std::string(R"({"schemaVersion":2,"mediaType":")") + kImageType +
         R"(","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
         config.ToString() +
         R"(","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
         layer.ToString() + R"(","size":5}])" + extra + "}";
}

std::string Subject(const Digest& subject) {
  return std::string(R"(,"artifactType":"application/x.sig","subject":{"mediaType":")") +
         kImageType + R"(","digest":")" + subject.ToString() + R"(","size":1})";
}

std::string Index(const std::vector<Digest>& children) {
  std::string out = std::string(R"({"schemaVersion":2,"mediaType":")") + kIndexType +
                    R"(","manifests":[)";
  for (size_t i = 0; i < children.size(); ++i) {
    if (i > 0) out += ",";
    out += std::string(R"({"mediaType":")") + kImageType + R"(","digest":")" +
           children[i].ToString() + R"(","size":1,"platform":{"architecture":"a)" +
           std::to_string(i) + R"(","os":"linux"}})";
  }
  return out + "]}";
}

Digest PutManifest(Registry& registry, const std::string& repo, const std::string& reference,
                   const std::string& bytes) {
  auto put = registry.PutManifest(repo, reference, "", bytes);
  EXPECT_TRUE(put.ok()) << put.status().ToString();
  return Digest::Sha256Of(bytes);
}

// Every tag of every repository resolves to a manifest whose blobs (and children, and
// their blobs) all read back whole.
void ExpectEveryTagPulls(Registry& registry) {
  auto repos = registry.ListRepositories("", 100000);
  ASSERT_TRUE(repos.ok()) << repos.status().ToString();
  for (const std::string& repo : repos->entries) {
    auto tags = registry.ListTags(repo, "", 100000);
    ASSERT_TRUE(tags.ok()) << tags.status().ToString();
    std::function<void(const std::string&)> pull = [&](const std::string& reference) {
      auto manifest = registry.GetManifest(repo, reference);
      ASSERT_TRUE(manifest.ok()) << repo << ":" << reference << ": "
                                 << manifest.status().ToString();
      auto parsed = ParseManifest(manifest->bytes, manifest->info.media_type);
      ASSERT_TRUE(parsed.ok());
      for (const Descriptor& child : parsed->children) pull(child.digest.ToString());
      for (const Descriptor& blob : parsed->blobs) {
        auto stream = registry.OpenBlob(repo, blob.digest, 0);
        ASSERT_TRUE(stream.ok()) << repo << ": " << blob.digest.ToString() << ": "
                                 << stream.status().ToString();
        DigestHasher hasher(blob.digest.algorithm());
        char buffer[4096];
        while (true) {
          auto n = stream->reader->Read(buffer, sizeof buffer);
          ASSERT_TRUE(n.ok());
          if (*n == 0) break;
          hasher.Update(buffer, *n);
        }
        EXPECT_EQ(hasher.Current(), blob.digest);
      }
    };
    for (const std::string& tag : tags->entries) pull(tag);
  }
}

class GarbageCollectionTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    driver_ = factory_.Make();
    registry_ = OpenOn(driver_);
  }
  bool Stored(const Digest& d) { return registry_->StatContent(d).ok(); }
  GcReport Collect(GcOptions options) {
    auto report = registry_->CollectGarbage(options);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : GcReport{};
  }

  testing::DriverFactory factory_{GetParam()};
  std::shared_ptr<StorageDriver> driver_;
  std::unique_ptr<Registry> registry_;
};

TEST_P(GarbageCollectionTest, RemovesWhatNoManifestUsesAndKeepsTheRest) {
  Digest config = Push(*registry_, "app", "{}");
  Digest kept_layer = Push(*registry_, "app", "layer-a");
  Digest old_layer = Push(*registry_, "app", "layer-b");
  Digest kept = PutManifest(*registry_, "app", "v1", Image(config, kept_layer));
  Digest gone = PutManifest(*registry_, "app", "v2", Image(config, old_layer));
  ASSERT_TRUE(registry_->DeleteManifest("app", gone.ToString()).ok());
  Digest stray = Push(*registry_, "scratch", "never in a manifest");

  std::vector<std::string> lines;
  GcReport report = Collect({.grace = 0s, .on_line = [&](const std::string& l) {
                               lines.push_back(l);
                             }});
  EXPECT_EQ(report.repositories, 2u);
  EXPECT_EQ(report.manifests_marked, 1u);
  EXPECT_EQ(report.blobs_marked, 3u);  // the manifest's bytes, its config, its layer
  EXPECT_EQ(report.blobs_deleted, 3u);  // old layer, old manifest's bytes, stray blob
  EXPECT_EQ(report.layer_links_deleted, 2u);
  EXPECT_EQ(report.repositories_removed, 1u);
  EXPECT_TRUE(Stored(config) && Stored(kept_layer) && Stored(kept));
  EXPECT_FALSE(Stored(old_layer) || Stored(gone) || Stored(stray));
  EXPECT_EQ(registry_->StatBlob("app", old_layer).status().reason(), Status::Reason::kBlobUnknown);
  EXPECT_EQ(registry_->ListRepositories("", 100)->entries, std::vector<std::string>{"app"});
  EXPECT_TRUE(registry_->ListFolder("scratch").status().IsNotFound());
  ExpectEveryTagPulls(*registry_);
  // registry:2's lines: what is marked, a count, what is eligible.
  auto has = [&](const std::string& l) {
    return std::find(lines.begin(), lines.end(), l) != lines.end();
  };
  EXPECT_TRUE(has("app: marking manifest " + kept.ToString()));
  EXPECT_TRUE(has("app: marking blob " + kept_layer.ToString()));
  EXPECT_TRUE(has("3 blobs marked, 3 blobs and 0 manifests eligible for deletion"));
  EXPECT_TRUE(has("blob eligible for deletion: " + old_layer.ToString()));

  // A second run finds nothing more.
  report = Collect({.grace = 0s});
  EXPECT_EQ(report.blobs_deleted + report.layer_links_deleted + report.manifests_deleted, 0u);
}

TEST_P(GarbageCollectionTest, CacheExpiryRemovesWhatWasNotPulledWithinTheTtl) {
  // A pull-through cache's repository holds manifests whose blobs come when first pulled.
  Digest config = Push(*registry_, "hub/app", "{}");
  Digest used_layer = Push(*registry_, "hub/app", "layer-used");
  Digest idle_layer = Push(*registry_, "hub/app", "layer-idle");
  auto mirror = [&](const std::string& tag, const std::string& bytes) {
    auto put = registry_->PutMirroredManifest("hub/app", tag, "", bytes);
    EXPECT_TRUE(put.ok()) << put.status().ToString();
    return Digest::Sha256Of(bytes);
  };
  Digest used = mirror("used", Image(config, used_layer));
  Digest idle = mirror("idle", Image(config, idle_layer));
  Digest partial = mirror("partial", Image(config, Digest::Sha256Of("never fetched")));
  // An ordinary repository beside it, which expiry leaves alone.
  Push(*registry_, "mine", "{}");
  Digest mine_layer = Push(*registry_, "mine", "mine-layer");
  PutManifest(*registry_, "mine", "v1", Image(config, mine_layer));
  // The ordinary PUT still wants its blobs.
  EXPECT_EQ(registry_->PutManifest("mine", "v2", "", Image(config, Digest::Sha256Of("absent")))
                .status()
                .reason(),
            Status::Reason::kManifestBlobUnknown);

  const auto before_pull = std::chrono::system_clock::now();
  std::this_thread::sleep_for(2100ms);  // past any store's time resolution (S3: a second)
  ASSERT_TRUE(registry_->NoteManifestUse("hub/app", used, 0s).ok());
  EXPECT_TRUE(registry_->NoteManifestUse("hub/app", Digest::Sha256Of("x"), 0s).IsNotFound());

  auto expiry = [&](std::chrono::system_clock::time_point cutoff) {
    return [cutoff](const std::string& repo) -> std::optional<std::chrono::system_clock::time_point> {
      if (repo.starts_with("hub/")) return cutoff;
      return std::nullopt;
    };
  };
  GcReport dry = Collect(
      {.grace = 0s, .expire_unused_before = expiry(before_pull + 1s), .dry_run = true});
  EXPECT_EQ(dry.tags_expired, 2u);
  EXPECT_TRUE(registry_->StatManifest("hub/app", "idle").ok());

  std::vector<std::string> lines;
  GcReport report = Collect({.grace = 0s,
                             .expire_unused_before = expiry(before_pull + 1s),
                             .on_line = [&](const std::string& l) { lines.push_back(l); }});
  EXPECT_EQ(report.tags_expired, 2u);  // idle and partial
  EXPECT_EQ(report.manifests_deleted, 2u);
  EXPECT_TRUE(registry_->StatManifest("hub/app", "used").ok());
  EXPECT_TRUE(registry_->StatManifest("hub/app", "idle").status().IsNotFound());
  EXPECT_TRUE(registry_->StatManifest("hub/app", partial.ToString()).status().IsNotFound());
  EXPECT_TRUE(registry_->StatManifest("hub/app", idle.ToString()).status().IsNotFound());
  EXPECT_TRUE(Stored(used_layer) && Stored(mine_layer) && Stored(config));
  EXPECT_FALSE(Stored(idle_layer));
  EXPECT_TRUE(registry_->StatManifest("mine", "v1").ok());
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      "hub/app: tag idle expired: " + idle.ToString() +
                          " was not pulled within the cache's ttl"),
            lines.end());
  ExpectEveryTagPulls(*registry_);

  // Nothing pulled since: the cached repository goes whole, the ordinary one stays.
  report = Collect({.grace = 0s,
                    .expire_unused_before = expiry(std::chrono::system_clock::now() + 1h)});
  EXPECT_EQ(report.tags_expired, 1u);
  EXPECT_TRUE(registry_->ListFolder("hub/app").status().IsNotFound());
  EXPECT_EQ(registry_->ListRepositories("", 100)->entries, std::vector<std::string>{"mine"});
  EXPECT_FALSE(Stored(used_layer));
  ExpectEveryTagPulls(*registry_);
}

TEST_P(GarbageCollectionTest, GraceWindowKeepsRecentWritesAndDryRunChangesNothing) {
  Digest layer = Push(*registry_, "app", "uploaded, manifest yet to come");
  GcReport report = Collect({.grace = 3600s});
  EXPECT_EQ(report.blobs_deleted + report.layer_links_deleted, 0u);
  EXPECT_TRUE(registry_->StatBlob("app", layer).ok());

  std::vector<std::string> lines;
  report = Collect({.grace = 0s, .dry_run = true, .on_line = [&](const std::string& l) {
                      lines.push_back(l);
                    }});
  EXPECT_EQ(report.blobs_deleted, 1u);  // would be
  EXPECT_NE(std::find(lines.begin(), lines.end(), "blob eligible for deletion: " + layer.ToString()),
            lines.end());
  EXPECT_TRUE(registry_->StatBlob("app", layer).ok());

  // A dry run needs no write access (uploads to purge counted too).
  auto read_only = Registry::Open({.driver = driver_, .read_only = true});
  ASSERT_TRUE(read_only.ok());
  auto counted = (*read_only)->CollectGarbage(
      {.grace = 0s, .dry_run = true, .purge_uploads_older_than = 0s});
  ASSERT_TRUE(counted.ok()) << counted.status().ToString();
  EXPECT_EQ(counted->blobs_deleted, 1u);
  EXPECT_FALSE((*read_only)->CollectGarbage({.grace = 0s}).ok());
}

TEST_P(GarbageCollectionTest, DeleteUntaggedKeepsIndexChildrenAndReferrers) {
  Digest config = Push(*registry_, "multi", "{}");
  Digest amd = Push(*registry_, "multi", "amd64 layer");
  Digest arm = Push(*registry_, "multi", "arm64 layer");
  Digest orphan_layer = Push(*registry_, "multi", "orphan layer");
  Digest child_amd = PutManifest(*registry_, "multi", Digest::Sha256Of(Image(config, amd)).ToString(),
                                 Image(config, amd));
  Digest child_arm = PutManifest(*registry_, "multi", Digest::Sha256Of(Image(config, arm)).ToString(),
                                 Image(config, arm));
  Digest index = PutManifest(*registry_, "multi", "latest", Index({child_amd, child_arm}));
  // A signature of the index and an SBOM of one child: referrers, untagged.
  std::string sig = Image(config, amd, Subject(index));
  Digest signature = PutManifest(*registry_, "multi", Digest::Sha256Of(sig).ToString(), sig);
  std::string sbom = Image(config, arm, Subject(child_arm));
  Digest sbom_digest = PutManifest(*registry_, "multi", Digest::Sha256Of(sbom).ToString(), sbom);
  // Untagged, referred to by nothing: goes, with the layer only it used.
  std::string lone = Image(config, orphan_layer);
  Digest orphan = PutManifest(*registry_, "multi", Digest::Sha256Of(lone).ToString(), lone);

  GcReport report = Collect({.grace = 0s, .delete_untagged = true});
  EXPECT_EQ(report.manifests_deleted, 1u);
  EXPECT_EQ(report.manifests_marked, 5u);
  for (const Digest& d : {child_amd, child_arm, index, signature, sbom_digest}) {
    EXPECT_TRUE(registry_->StatManifest("multi", d.ToString()).ok()) << d.ToString();
  }
  EXPECT_TRUE(registry_->StatManifest("multi", orphan.ToString()).status().IsNotFound());
  EXPECT_FALSE(Stored(orphan) || Stored(orphan_layer));
  EXPECT_EQ(registry_->ListReferrers("multi", index, "")->size(), 1u);
  EXPECT_EQ(registry_->ListReferrers("multi", child_arm, "")->size(), 1u);
  ExpectEveryTagPulls(*registry_);

  // Untagging the index lets everything go (its referrers with it).
  ASSERT_TRUE(registry_->DeleteManifest("multi", "latest").ok());
  report = Collect({.grace = 0s, .delete_untagged = true});
  EXPECT_EQ(report.manifests_deleted, 5u);
  EXPECT_EQ(report.repositories_removed, 1u);
  EXPECT_TRUE(registry_->ListRepositories("", 100)->entries.empty());
}

TEST_P(GarbageCollectionTest, AManifestPutJustAfterItsLayerLinkWentStillSucceeds) {
  // A client checks (HEAD) that the repository has a layer, an old one no manifest uses
  // any more; a collection removes that link; then the client puts its manifest.
  Digest config = Push(*registry_, "app", "{}");
  Digest layer = Push(*registry_, "app", "old base layer");
  Digest first = PutManifest(*registry_, "app", "v1", Image(config, layer));
  ASSERT_TRUE(registry_->DeleteManifest("app", first.ToString()).ok());
  std::this_thread::sleep_for(2200ms);  // older than the grace window (1s; mtimes are whole seconds)
  ASSERT_TRUE(registry_->StatBlob("app", layer).ok());  // the client's HEAD
  GcReport report = Collect({.grace = 1s});
  EXPECT_EQ(report.layer_links_deleted, 2u);
  EXPECT_EQ(report.blobs_deleted, 1u);  // the first manifest's bytes; the layer waits
  EXPECT_FALSE(registry_->StatBlob("app", layer).ok());
  std::string second = Image(config, layer, R"(,"annotations":{"n":"2"})");
  auto put = registry_->PutManifest("app", "v2", "", second);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  ExpectEveryTagPulls(*registry_);
  // Once unused for longer than the grace window, it goes for good.
  ASSERT_TRUE(registry_->DeleteManifest("app", put->digest.ToString()).ok());
  std::this_thread::sleep_for(2200ms);
  Collect({.grace = 1s});
  std::this_thread::sleep_for(2200ms);
  Collect({.grace = 1s});
  EXPECT_FALSE(Stored(layer));
  EXPECT_TRUE(registry_->ListRepositories("", 10)->entries.empty());
}

TEST_P(GarbageCollectionTest, AWriterLinkingACondemnedBlobKeepsIt) {
  // An unreferenced blob, linked again by an upload of the same bytes at two points of the
  // sweep: before the collector re-lists links, and after (the verdict decides).
  for (bool after_listing : {false, true}) {
    SCOPED_TRACE(after_listing ? "linked after the listing" : "linked before the listing");
    const std::string content = std::string("shared layer ") + (after_listing ? "1" : "2");
    Digest layer = Push(*registry_, "old", content);
    auto second = OpenOn(factory_.MakeSecond());  // another process on the storage
    Status pushed_meanwhile = Status::Unavailable("not pushed");
    auto push = [&] {
      auto up = second->StartUpload("new");
      ASSERT_TRUE(up.ok());
      std::istringstream body(content);
      ASSERT_TRUE(second->AppendUpload("new", up->id, body, std::nullopt).ok());
      pushed_meanwhile = second->CommitUpload("new", up->id, layer).status();
    };
    GcOptions options{.grace = 0s};
    if (after_listing) {
      options.before_verdicts = push;
    } else {
      options.after_condemn = push;
    }
    GcReport report = Collect(options);
    ASSERT_TRUE(pushed_meanwhile.ok()) << pushed_meanwhile.ToString();
    EXPECT_EQ(report.blobs_rescued, 1u);
    EXPECT_TRUE(Stored(layer));
    EXPECT_TRUE(registry_->StatBlob("new", layer).ok());
    EXPECT_FALSE(registry_->StatBlob("old", layer).ok());  // its stale link went
    ASSERT_TRUE(registry_->DeleteRepository("new").ok());
  }
}

TEST_P(GarbageCollectionTest, AWriterLosingTheVerdictWaitsAndIsToldTheBlobWent) {
  Digest blob = Push(*registry_, "r", "bytes");
  SweepFence collector(*driver_);
  auto lease = driver_->TryLease("gc");  // the collector is alive
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(collector.BeginSweep().ok());
  ASSERT_TRUE(collector.Condemn({blob}).ok());
  const std::string bucket = SweepFence::BucketOf(blob);
  auto claimed = collector.Decide(bucket);
  ASSERT_TRUE(claimed.ok() && claimed->empty());
  std::atomic<bool> returned{false};
  Status claim;
  std::thread writer([&] {
    claim = SweepFence(*factory_.MakeSecond()).Claim({blob});
    returned = true;
  });
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(returned.load());  // waits for the collector to finish with the bucket
  ASSERT_TRUE(driver_->Delete(layout::BlobData(blob)).ok());
  collector.Release(bucket);
  writer.join();
  EXPECT_EQ(claim.code(), Status::Code::kUnavailable) << claim.ToString();

  // A claim before the verdict is seen by it.
  ASSERT_TRUE(driver_->PutContent(layout::BlobData(blob), "bytes", false).ok());
  ASSERT_TRUE(collector.Condemn({blob}).ok());
  EXPECT_TRUE(SweepFence(*driver_).Claim({blob}).ok());
  claimed = collector.Decide(bucket);
  ASSERT_TRUE(claimed.ok());
  EXPECT_EQ(claimed->count(blob), 1u);
  collector.Release(bucket);

  // A writer that stored the bytes anew after the delete keeps them, also when the
  // collector died before releasing (its lease is free).
  ASSERT_TRUE(collector.Condemn({blob}).ok());
  ASSERT_TRUE(collector.Decide(bucket).ok());
  lease->reset();
  EXPECT_TRUE(SweepFence(*driver_).Claim({blob}).ok());
  ASSERT_TRUE(collector.EndSweep().ok());
  EXPECT_TRUE(SweepFence(*driver_).Claim({blob}).ok());
  // Blobs of other buckets, or not condemned, pass at once.
  EXPECT_TRUE(SweepFence(*driver_).Claim({Digest::Sha256Of("other")}).ok());
}

TEST_P(GarbageCollectionTest, PushesWhileCollectingAllSucceedAndStayWhole) {
  // Another process pushes images that share a base layer, untagging the previous one
  // first, so the base layer keeps turning unreferenced and older than the grace window
  // just as it is pushed again; this one collects over and over meanwhile.
  auto pusher = OpenOn(factory_.MakeSecond());
  std::atomic<bool> done{false};
  std::atomic<int> retries{0};
  // A client retries what the registry answers 503 (Unavailable); nothing else may fail.
  auto retrying = [&](const std::function<Status()>& step) {
    for (int attempt = 0;; ++attempt) {
      Status s = step();
      if (s.code() != Status::Code::kUnavailable || attempt == 5) return s;
      ++retries;
    }
  };
  std::thread pushes([&] {
    const int images = GetParam() == "s3" ? 6 : 12;
    std::optional<Digest> previous;
    for (int i = 0; i < images; ++i) {
      if (previous) {
        ASSERT_TRUE(pusher->DeleteManifest("live", previous->ToString()).ok());
      }
      // Long enough for the base layer to leave the grace window now and then.
      std::this_thread::sleep_for(std::chrono::milliseconds(300 * (i % 4) + 100));
      std::string image;
      Status pushed = retrying([&]() -> Status {
        auto base = TryPush(*pusher, "live", "shared base layer");
        if (!base.ok()) return base.status();
        auto config = TryPush(*pusher, "live", "{\"n\":" + std::to_string(i) + "}");
        if (!config.ok()) return config.status();
        image = Image(*config, *base);
        return pusher->PutManifest("live", "t" + std::to_string(i), "", image).status();
      });
      ASSERT_TRUE(pushed.ok()) << pushed.ToString();
      previous = Digest::Sha256Of(image);
    }
    done = true;
  });
  int runs = 0;
  while (!done) {
    auto report = registry_->CollectGarbage({.grace = 2s});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ++runs;
    std::this_thread::sleep_for(5ms);
  }
  pushes.join();
  EXPECT_GT(runs, 1);
  std::printf("%d collections while pushing, %d pushes retried after a 503\n", runs,
              retries.load());
  ExpectEveryTagPulls(*registry_);
  std::this_thread::sleep_for(2100ms);
  auto report = Collect({.grace = 2s});
  EXPECT_GT(report.blobs_deleted, 0u);
  ExpectEveryTagPulls(*registry_);
}

TEST_P(GarbageCollectionTest, OneCollectionAtATime) {
  auto lease = factory_.MakeSecond()->TryLease("gc");
  ASSERT_TRUE(lease.ok());
  auto report = registry_->CollectGarbage({.grace = 0s});
  EXPECT_EQ(report.status().code(), Status::Code::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(Drivers, GarbageCollectionTest,
                         ::testing::ValuesIn(testing::TestDriverKinds()),
                         [](const auto& info) { return info.param; });

// A crash at every step of a collection leaves every tag pullable, and the next run
// finishes the job.
class GarbageCollectionCrashTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GarbageCollectionCrashTest, KilledAnywhereLeavesEveryTagWhole) {
  auto build = [](Registry& r) {
    Digest config = Push(r, "app", "{}");
    Digest a = Push(r, "app", "layer a");
    Digest b = Push(r, "app", "layer b");
    Digest c = Push(r, "lib", "layer c");
    PutManifest(r, "app", "v1", Image(config, a));
    Digest old = PutManifest(r, "app", "v2", Image(config, b));
    std::string lone = Image(config, a, R"(,"annotations":{"x":"y"})");
    PutManifest(r, "app", Digest::Sha256Of(lone).ToString(), lone);
    (void)r.DeleteManifest("app", "v2");
    (void)old;
    (void)c;
  };
  uint64_t total_changes = 0;
  {
    testing::DriverFactory factory(GetParam());
    auto counting = std::make_shared<FaultyDriver>(factory.Make(), 0, FaultyDriver::Mode::kFail);
    build(*OpenOn(counting));
    uint64_t before = counting->changes();
    ASSERT_TRUE(OpenOn(counting)->CollectGarbage({.grace = 0s, .delete_untagged = true}).ok());
    total_changes = counting->changes() - before;
  }
  ASSERT_GT(total_changes, 5u);
  for (uint64_t at = 1; at <= total_changes; ++at) {
    SCOPED_TRACE("crash at change " + std::to_string(at) + " of " + std::to_string(total_changes));
    testing::DriverFactory factory(GetParam());
    auto inner = factory.Make();
    build(*OpenOn(inner));
    {
      auto crashing = std::make_shared<FaultyDriver>(inner, at, FaultyDriver::Mode::kCrash);
      auto r = Registry::Open({.driver = crashing, .delete_enabled = true});
      if (r.ok()) (void)(*r)->CollectGarbage({.grace = 0s, .delete_untagged = true});
    }
    auto after = OpenOn(inner);
    ExpectEveryTagPulls(*after);
    auto finish = after->CollectGarbage({.grace = 0s, .delete_untagged = true});
    ASSERT_TRUE(finish.ok()) << finish.status().ToString();
    ExpectEveryTagPulls(*after);
    EXPECT_FALSE(after->StatContent(Digest::Sha256Of("layer b")).ok());
    EXPECT_FALSE(after->StatContent(Digest::Sha256Of("layer c")).ok());
    EXPECT_TRUE(after->StatContent(Digest::Sha256Of("layer a")).ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Drivers, GarbageCollectionCrashTest,
                         ::testing::Values("inmemory", "filesystem"),
                         [](const auto& info) { return info.param; });

TEST(GarbageCollectionLeftovers, TemporaryFilesOfKilledWritersGoOnceOld) {
  testing::DriverFactory factory("filesystem");
  auto driver = factory.Make();
  auto registry = OpenOn(driver);
  Digest layer = Push(*registry, "app", "layer");
  Digest config = Push(*registry, "app", "{}");
  PutManifest(*registry, "app", "v1", Image(config, layer));
  const std::string data = layout::BlobData(layer);
  const std::string dir = factory.root() + "/" + data.substr(0, data.rfind('/'));
  for (const char* name : {"/.tmp-1-0-7", "/.tmp-1-1-8"}) {
    std::ofstream(dir + name) << "half a manifest";
  }
  struct utimbuf old{.actime = time(nullptr) - 7200, .modtime = time(nullptr) - 7200};
  ASSERT_EQ(::utime((dir + "/.tmp-1-0-7").c_str(), &old), 0);
  auto report = registry->CollectGarbage({.grace = 3600s});
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->leftovers_removed, 1u);
  struct stat st;
  EXPECT_NE(::stat((dir + "/.tmp-1-0-7").c_str(), &st), 0);
  EXPECT_EQ(::stat((dir + "/.tmp-1-1-8").c_str(), &st), 0);  // recent: a writer may own it
  ExpectEveryTagPulls(*registry);
}

}  // namespace
}  // namespace regfs
