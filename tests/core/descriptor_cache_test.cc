// The blob descriptor cache, in memory and in a real Redis (started per suite by
// tests/support/redis_server.sh): hits after a miss, invalidation by every deletion before
// it returns, the race of a reader storing after a delete, two replicas sharing one Redis,
// Redis down (the registry serves from storage) and invalidations lost meanwhile.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "regfs/core/descriptor_cache.h"
#include "regfs/core/registry.h"
#include "registry_pushes.h"

namespace regfs {
namespace {

using Kind = DescriptorCache::Kind;

std::string RedisScript() { return REGFS_REDIS_SERVER_SCRIPT; }

int Run(const std::string& command) { return std::system(command.c_str()); }

// One Redis for the suite, in a folder of its own.
class RedisFixture {
 public:
  RedisFixture() {
    char tmpl[] = "/tmp/regfs-redis-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ::rmdir(dir_.c_str());  // redis_server.sh wants to create it
    started_ = Run(RedisScript() + " start " + dir_ + " >/dev/null 2>&1") == 0;
    if (started_) ReadEnv();
  }
  ~RedisFixture() {
    if (started_) (void)Run(RedisScript() + " stop " + dir_ + " >/dev/null 2>&1");
  }
  bool started() const { return started_; }
  std::string addr() const { return addr_; }
  void Kill() { ASSERT_EQ(Run(RedisScript() + " kill " + dir_ + " >/dev/null 2>&1"), 0); }
  void Restart() {
    ASSERT_EQ(Run(RedisScript() + " restart " + dir_ + " >/dev/null 2>&1"), 0);
    ReadEnv();
  }

 private:
  void ReadEnv() {
    std::ifstream in(dir_ + "/env");
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("REDIS_ADDR=")) addr_ = line.substr(11);
    }
  }
  std::string dir_;
  std::string addr_;
  bool started_ = false;
};

RedisFixture* redis = nullptr;

class RedisEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { redis = new RedisFixture; }
  void TearDown() override {
    delete redis;
    redis = nullptr;
  }
};
const auto* const kRedisEnvironment = ::testing::AddGlobalTestEnvironment(new RedisEnvironment);

RedisCacheOptions OptionsFor(const std::string& addr) {
  RedisCacheOptions o;
  o.addrs = {addr};
  o.dial_timeout = std::chrono::milliseconds(300);
  o.read_timeout = std::chrono::milliseconds(500);
  return o;
}

using testing::PushBlob;

// A fresh repository name per test: the suite shares one Redis.
std::string FreshRepo() {
  static int n = 0;
  return "cache/" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

class DescriptorCacheTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "redis" && (redis == nullptr || !redis->started())) {
      GTEST_SKIP() << "redis-server could not be started (Debian package redis-server)";
    }
    driver_ = NewInMemoryDriver();
  }
  std::shared_ptr<DescriptorCache> NewCache() {
    if (GetParam() == "inmemory") {
      // Replicas cannot share process memory: both "replicas" share one object here.
      if (!memory_) memory_ = NewInMemoryDescriptorCache();
      return memory_;
    }
    return NewRedisDescriptorCache(OptionsFor(redis->addr()), driver_, nullptr);
  }
  std::unique_ptr<Registry> OpenReplica(std::shared_ptr<DescriptorCache> cache) {
    auto r = Registry::Open(
        {.driver = driver_, .delete_enabled = true, .descriptor_cache = std::move(cache)});
    EXPECT_TRUE(r.ok());
    return std::move(*r);
  }
  std::shared_ptr<StorageDriver> driver_;
  std::shared_ptr<DescriptorCache> memory_;
};

TEST_P(DescriptorCacheTest, AMissIsStoredAndThenHits) {
  auto cache = NewCache();
  std::string repo = FreshRepo();
  Digest d = Digest::Sha256Of("x");
  auto first = cache->Lookup(repo, Kind::kBlob, d);
  EXPECT_FALSE(first.hit);
  ASSERT_FALSE(first.token.empty());
  cache->Store(repo, Kind::kBlob, d, {.size = 1}, first.token);
  auto second = cache->Lookup(repo, Kind::kBlob, d);
  ASSERT_TRUE(second.hit);
  EXPECT_EQ(second.hit->size, 1u);
  // Manifests carry their media type; kinds do not mix.
  cache->Store(repo, Kind::kManifest, d, {.size = 7, .media_type = "application/x.y+json"},
               second.token);
  auto manifest = cache->Lookup(repo, Kind::kManifest, d);
  ASSERT_TRUE(manifest.hit);
  EXPECT_EQ(manifest.hit->media_type, "application/x.y+json");
  EXPECT_EQ(cache->stats().hits, 2u);
}

TEST_P(DescriptorCacheTest, AReaderStoringAfterADeleteStoresNothingAnyoneReads) {
  auto cache = NewCache();
  std::string repo = FreshRepo();
  Digest d = Digest::Sha256Of("y");
  auto before = cache->Lookup(repo, Kind::kBlob, d);  // a reader looks, misses...
  cache->OnChange({.kind = ChangeEvent::Kind::kBlobUnlinked, .repository = repo, .digest = d});
  cache->Store(repo, Kind::kBlob, d, {.size = 1}, before.token);  // ...and stores too late
  EXPECT_FALSE(cache->Lookup(repo, Kind::kBlob, d).hit);
}

TEST_P(DescriptorCacheTest, ADeleteOnOneReplicaIsSeenByTheOtherAtOnce) {
  auto one = OpenReplica(NewCache());
  auto two = OpenReplica(NewCache());
  std::string repo = FreshRepo();
  Digest blob = PushBlob(*one, repo, "layer bytes");
  ASSERT_TRUE(two->StatBlob(repo, blob).ok());  // miss, stored
  ASSERT_TRUE(two->StatBlob(repo, blob).ok());  // hit
  ASSERT_TRUE(one->DeleteBlob(repo, blob).ok());
  auto after = two->StatBlob(repo, blob);
  EXPECT_TRUE(after.status().IsNotFound()) << after.status().ToString();
  EXPECT_TRUE(two->OpenBlob(repo, blob, 0).status().IsNotFound());

  // Manifests: HEAD by digest and by tag from the cache, gone once deleted elsewhere.
  Digest config = PushBlob(*one, repo, "{}");
  Digest layer = PushBlob(*one, repo, "layer two");
  std::string manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      config.ToString() +
      R"(","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
      layer.ToString() + R"(","size":9}]})";
  ASSERT_TRUE(one->PutManifest(repo, "v1", "", manifest).ok());
  Digest digest = Digest::Sha256Of(manifest);
  for (int i = 0; i < 2; ++i) {
    auto by_tag = two->StatManifest(repo, "v1");
    ASSERT_TRUE(by_tag.ok()) << by_tag.status().ToString();
    EXPECT_EQ(by_tag->media_type, "application/vnd.oci.image.manifest.v1+json");
    EXPECT_EQ(by_tag->size, manifest.size());
    ASSERT_TRUE(two->StatManifest(repo, digest.ToString()).ok());
  }
  ASSERT_TRUE(one->DeleteManifest(repo, digest.ToString()).ok());
  EXPECT_TRUE(two->StatManifest(repo, digest.ToString()).status().IsNotFound());
  EXPECT_TRUE(two->GetManifest(repo, digest.ToString()).status().IsNotFound());
}

TEST_P(DescriptorCacheTest, GarbageCollectionInvalidatesWhatItRemoves) {
  auto one = OpenReplica(NewCache());
  auto two = OpenReplica(NewCache());
  std::string repo = FreshRepo();
  Digest blob = PushBlob(*one, repo, "unreferenced layer");
  ASSERT_TRUE(two->StatBlob(repo, blob).ok());
  GcOptions options;
  options.grace = std::chrono::seconds(0);
  auto report = one->CollectGarbage(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(two->StatBlob(repo, blob).status().IsNotFound());
}

INSTANTIATE_TEST_SUITE_P(Caches, DescriptorCacheTest, ::testing::Values("inmemory", "redis"),
                         [](const auto& info) { return info.param; });

class RedisOutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (redis == nullptr || !redis->started()) GTEST_SKIP() << "no redis-server";
    driver_ = NewInMemoryDriver();
  }
  std::unique_ptr<Registry> Open(std::shared_ptr<DescriptorCache> cache) {
    auto r = Registry::Open(
        {.driver = driver_, .delete_enabled = true, .descriptor_cache = std::move(cache)});
    EXPECT_TRUE(r.ok());
    return std::move(*r);
  }
  std::shared_ptr<StorageDriver> driver_;
};

TEST_F(RedisOutageTest, RedisDownMeansServedFromStorageAndBackMeansCachedAgain) {
  auto cache = NewRedisDescriptorCache(OptionsFor(redis->addr()), driver_, nullptr);
  auto registry = Open(cache);
  std::string repo = FreshRepo();
  Digest blob = PushBlob(*registry, repo, "survives an outage");
  ASSERT_TRUE(registry->StatBlob(repo, blob).ok());
  redis->Kill();
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(registry->StatBlob(repo, blob).ok());
  // Bypassed after the first failure: twenty lookups do not each wait for a timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
  EXPECT_FALSE(cache->available());
  EXPECT_GT(cache->stats().errors, 0u);
  // A delete while Redis is down leaves a note for whoever reaches Redis first.
  ASSERT_TRUE(registry->DeleteBlob(repo, blob).ok());
  EXPECT_TRUE(registry->StatBlob(repo, blob).status().IsNotFound());
  auto notes = driver_->List("regfs/cache/stale");
  ASSERT_TRUE(notes.ok());
  EXPECT_EQ(notes->size(), 1u);
  redis->Restart();
  ASSERT_TRUE(cache->Probe().ok());
  EXPECT_TRUE(cache->available());
  EXPECT_TRUE(driver_->List("regfs/cache/stale").status().IsNotFound() ||
              driver_->List("regfs/cache/stale")->empty());
}

TEST_F(RedisOutageTest, AnInvalidationOneReplicaCouldNotDeliverDropsEveryonesEntries) {
  // Replica A cannot reach Redis (a partition); replica B can, and has the blob cached.
  auto b_cache = NewRedisDescriptorCache(OptionsFor(redis->addr()), driver_, nullptr);
  auto b = Open(b_cache);
  auto a_cache = NewRedisDescriptorCache(OptionsFor("127.0.0.1:1"), driver_, nullptr);
  auto a = Open(a_cache);
  std::string repo = FreshRepo();
  Digest blob = PushBlob(*b, repo, "cached on b");
  ASSERT_TRUE(b->StatBlob(repo, blob).ok());
  ASSERT_TRUE(b_cache->Lookup(repo, Kind::kBlob, blob).hit);
  ASSERT_TRUE(a->DeleteBlob(repo, blob).ok());
  // B's next probe (every 2 s; called here directly) sees A's note and drops it all.
  ASSERT_TRUE(b_cache->Probe().ok());
  EXPECT_FALSE(b_cache->Lookup(repo, Kind::kBlob, blob).hit);
  EXPECT_TRUE(b->StatBlob(repo, blob).status().IsNotFound());
}

}  // namespace
}  // namespace regfs
