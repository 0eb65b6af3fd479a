// The write-ordering claims of registry.h, checked step by step: a push (blob upload, manifest,
// tag move) is stopped at every change it makes to storage, by a failure or by a "crash", and
// a registry opened afterwards on what storage holds must be consistent (no tag without its
// manifest, no manifest without its blobs, no link without its bytes) and must still have
// everything that was committed before.
#include <gtest/gtest.h>

#include <sstream>

#include "faulty_driver.h"
#include "regfs/core/registry.h"
#include "test_drivers.h"

namespace regfs {
namespace {

using testing::FaultyDriver;

std::string ImageManifest(const Digest& config, const Digest& layer, size_t layer_size) {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
         config.ToString() +
         R"(","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
         layer.ToString() + R"(","size":)" + std::to_string(layer_size) + "}]}";
}

Status PushBlob(Registry& registry, const std::string& repo, const std::string& content) {
  auto up = registry.StartUpload(repo);
  if (!up.ok()) return up.status();
  // Two chunks, as a chunked client sends them.
  std::istringstream first(content.substr(0, content.size() / 2));
  std::istringstream second(content.substr(content.size() / 2));
  auto a = registry.AppendUpload(repo, up->id, first, 0);
  if (!a.ok()) return a.status();
  auto b = registry.AppendUpload(repo, up->id, second, a->size);
  if (!b.ok()) return b.status();
  return registry.CommitUpload(repo, up->id, Digest::Sha256Of(content)).status();
}

class CrashConsistencyTest : public ::testing::TestWithParam<std::tuple<std::string, bool>> {
 protected:
  const std::string kRepo = "crash/app";
  const std::string config_ = "{}";
  const std::string old_layer_ = "the layer of v1";
  const std::string new_layer_ = std::string(3000, 'n') + " the layer of v2";
  const std::string old_manifest_ =
      ImageManifest(Digest::Sha256Of(config_), Digest::Sha256Of(old_layer_), old_layer_.size());
  const std::string new_manifest_ =
      ImageManifest(Digest::Sha256Of(config_), Digest::Sha256Of(new_layer_), new_layer_.size());

  std::unique_ptr<Registry> OpenOn(std::shared_ptr<StorageDriver> driver) {
    auto r = Registry::Open({.driver = std::move(driver), .delete_enabled = true});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }

  // What was committed before any fault: v1 -> the old manifest.
  void Commit(Registry& registry) {
    ASSERT_TRUE(PushBlob(registry, kRepo, config_).ok());
    ASSERT_TRUE(PushBlob(registry, kRepo, old_layer_).ok());
    ASSERT_TRUE(registry.PutManifest(kRepo, "v1", "", old_manifest_).ok());
  }

  // The change under test: a new layer, v2 on a new manifest, then v1 moved to it. Returns
  // how far it got (the steps that succeeded).
  int Change(Registry& registry) {
    if (!PushBlob(registry, kRepo, new_layer_).ok()) return 0;
    if (!registry.PutManifest(kRepo, "v2", "", new_manifest_).ok()) return 1;
    if (!registry.PutManifest(kRepo, "v1", "", new_manifest_).ok()) return 2;
    return 3;
  }

  // Storage is consistent, and holds what was committed (`done` steps of Change included).
  void ExpectConsistent(Registry& registry, int done, const std::string& where) {
    SCOPED_TRACE(where);
    auto tags = registry.ListTags(kRepo, "", 100);
    ASSERT_TRUE(tags.ok()) << tags.status().ToString();
    for (const std::string& tag : tags->entries) {
      auto m = registry.GetManifest(kRepo, tag);
      ASSERT_TRUE(m.ok()) << "tag " << tag << " without its manifest: " << m.status().ToString();
      EXPECT_TRUE(m->bytes == old_manifest_ || m->bytes == new_manifest_) << tag;
    }
    auto digests = registry.ListManifestDigests(kRepo);
    ASSERT_TRUE(digests.ok());
    for (const Digest& d : *digests) {
      auto m = registry.GetManifest(kRepo, d.ToString());
      ASSERT_TRUE(m.ok()) << "manifest " << d.ToString() << ": " << m.status().ToString();
      const std::string& layer = m->bytes == old_manifest_ ? old_layer_ : new_layer_;
      EXPECT_TRUE(registry.StatBlob(kRepo, Digest::Sha256Of(layer)).ok())
          << "manifest " << d.ToString() << " without its layer";
      EXPECT_TRUE(registry.StatBlob(kRepo, Digest::Sha256Of(config_)).ok());
    }
    auto blobs = registry.ListBlobDigests(kRepo);
    ASSERT_TRUE(blobs.ok());
    for (const Digest& d : *blobs) {
      auto info = registry.StatBlob(kRepo, d);
      ASSERT_TRUE(info.ok()) << "link without bytes: " << d.ToString();
      auto reader = registry.OpenBlob(kRepo, d, 0);
      ASSERT_TRUE(reader.ok());
      std::string bytes(info->size, '\0');
      auto n = reader->reader->ReadAt(0, bytes.data(), bytes.size());
      ASSERT_TRUE(n.ok());
      EXPECT_EQ(Digest::Sha256Of(bytes), d) << "blob bytes differ from their digest";
    }
    // Committed before the fault: never lost.
    auto v1 = registry.GetManifest(kRepo, "v1");
    ASSERT_TRUE(v1.ok()) << "v1 was committed before the fault";
    if (done >= 3) {
      EXPECT_EQ(v1->bytes, new_manifest_);
    }
    if (done >= 2) {
      EXPECT_EQ(registry.GetManifest(kRepo, "v2")->bytes, new_manifest_);
    }
    if (done >= 1) {
      EXPECT_TRUE(registry.StatBlob(kRepo, Digest::Sha256Of(new_layer_)).ok());
    }
  }
};

TEST_P(CrashConsistencyTest, EveryStopOfAPushLeavesAConsistentRegistry) {
  const auto& [kind, crash] = GetParam();
  // How many changes the whole push makes, counted on a run without faults.
  uint64_t total = 0;
  {
    testing::DriverFactory factory(kind);
    auto counting = std::make_shared<FaultyDriver>(factory.Make(), 0, FaultyDriver::Mode::kFail);
    auto registry = OpenOn(counting);
    Commit(*registry);
    uint64_t before = counting->changes();
    ASSERT_EQ(Change(*registry), 3);
    total = counting->changes() - before;
  }
  ASSERT_GT(total, 5u);
  RecordProperty("changes_of_the_push", std::to_string(total));
  for (uint64_t at = 1; at <= total; ++at) {
    testing::DriverFactory factory(kind);
    auto inner = factory.Make();
    {
      auto clean = OpenOn(inner);
      Commit(*clean);
    }
    int done = 0;
    // Opening makes changes of its own (a write probe): count them and move the fault past.
    uint64_t open_changes = 0;
    {
      auto probe = std::make_shared<FaultyDriver>(inner, 0, FaultyDriver::Mode::kFail);
      OpenOn(probe);
      open_changes = probe->changes();
    }
    auto victim = std::make_shared<FaultyDriver>(
        inner, open_changes + at, crash ? FaultyDriver::Mode::kCrash : FaultyDriver::Mode::kFail);
    {
      auto registry = OpenOn(victim);
      done = Change(*registry);
    }
    // A restarted process: a new registry on what storage holds.
    auto after = OpenOn(factory.MakeSecond());
    ExpectConsistent(*after, done, (crash ? "crash" : "failure") + std::string(" at change ") +
                                       std::to_string(at) + " of " + std::to_string(total));
    // And the interrupted push can be done again.
    EXPECT_EQ(Change(*after), 3) << "redoing the push after change " << at;
    ExpectConsistent(*after, 3, "after redoing the push");
    if (HasFailure()) return;
  }
}

std::vector<std::tuple<std::string, bool>> Cases() {
  std::vector<std::tuple<std::string, bool>> out;
  for (const std::string& kind : testing::TestDriverKinds()) {
    out.emplace_back(kind, true);
    // Failed calls take the same paths in the registry whatever the driver; a crash is what
    // differs (what an object store has made visible when the process dies).
    if (kind != "s3") out.emplace_back(kind, false);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllDrivers, CrashConsistencyTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) {
                           return std::get<0>(info.param) +
                                  (std::get<1>(info.param) ? "_crash" : "_failure");
                         });

}  // namespace
}  // namespace regfs
