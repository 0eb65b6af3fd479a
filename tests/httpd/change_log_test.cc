// The change log as regfs-httpd writes it: every committed request is an entry, durable by
// the time the client has its answer, naming the request; reads and failures write nothing.
#include <gtest/gtest.h>

#include <filesystem>

#include "object_store_env.h"
#include "regfs/core/backend.h"
#include "regfs/core/change_log.h"
#include "regfs/core/change_record.h"
#include "registry_test.h"

namespace regfs::testing {
namespace {

class ChangeLogTest : public RegistryTest {
 protected:
  // The server's storage, opened as another process would.
  std::shared_ptr<ChangeLog> ServerLog() {
    StorageOptions storage;
    if (auto s3 = ReadObjectStoreEnv()) {
      storage.driver = "s3";
      storage.s3.region_endpoint = s3->at("RGW_ENDPOINT");
      storage.s3.region = s3->at("RGW_REGION");
      storage.s3.access_key = s3->at("RGW_ACCESS_KEY");
      storage.s3.secret_key = s3->at("RGW_SECRET_KEY");
      storage.s3.bucket = kTestBucket;
      storage.s3.root_directory = std::filesystem::path(server().dir()).filename().string();
    } else {
      storage.root_directory = server().root_directory();
    }
    auto backend = OpenBackend(storage);
    EXPECT_TRUE(backend.ok()) << backend.status().ToString();
    return backend.ok() ? backend->log : nullptr;
  }

  // The records after `after` that concern `repo`.
  std::vector<ChangeRecord> RecordsOf(const std::string& repo, uint64_t after) {
    std::vector<ChangeRecord> out;
    auto batch = ServerLog()->Read(after, 10000);
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    for (const auto& entry : batch->entries) {
      auto record = DecodeChangeRecord(entry.body);
      EXPECT_TRUE(record.ok()) << record.status().ToString();
      if (record.ok() && !record->events.empty() && record->events[0].repository == repo) {
        out.push_back(*record);
      }
    }
    return out;
  }
};

TEST_F(ChangeLogTest, EachCommittedRequestIsOneEntryOnceAnswered) {
  const std::string repo = NewRepo();
  const uint64_t start = *ServerLog()->Newest();
  PushedManifest image;
  ASSERT_TRUE(PushImage(http(), repo, "v1", "application/vnd.oci.image.manifest.v1+json",
                        "change log", &image));
  // Answered, so already in the log: no waiting here.
  auto records = RecordsOf(repo, start);
  ASSERT_EQ(records.size(), 3u);  // config blob, layer blob, manifest with its tag
  for (const auto& r : records.front().events) {
    EXPECT_EQ(r.kind, ChangeEvent::Kind::kBlobLinked);
  }
  const ChangeRecord& manifest = records.back();
  ASSERT_EQ(manifest.events.size(), 2u);
  EXPECT_EQ(manifest.events[0].kind, ChangeEvent::Kind::kManifestPut);
  EXPECT_EQ(manifest.events[0].digest->ToString(), image.digest);
  EXPECT_EQ(manifest.events[0].media_type, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(manifest.events[0].size, image.body.size());
  EXPECT_EQ(manifest.events[1].kind, ChangeEvent::Kind::kTagSet);
  EXPECT_EQ(manifest.events[1].tag, "v1");
  EXPECT_EQ(manifest.request.method, "PUT");
  EXPECT_EQ(manifest.request.host, "127.0.0.1:" + std::to_string(server().port()));
  EXPECT_TRUE(manifest.request.addr.starts_with("127.0.0.1:")) << manifest.request.addr;
  EXPECT_EQ(manifest.request.id.size(), 36u);
  EXPECT_NE(manifest.request.id, records.front().request.id);
  EXPECT_FALSE(manifest.instance.empty());
  EXPECT_TRUE(manifest.actor.empty());  // anonymous

  // Reads (pull events are off without a notification endpoint), HEADs and failed requests
  // add nothing; a delete does.
  const uint64_t before_reads = *ServerLog()->Newest();
  EXPECT_EQ(http().Get(ManifestPath(repo, "v1")).status, 200);
  EXPECT_EQ(http().Head(ManifestPath(repo, "v1")).status, 200);
  EXPECT_EQ(http().Get(ManifestPath(repo, "nope")).status, 404);
  EXPECT_EQ(http().Delete(ManifestPath(repo, "nope")).status, 404);
  EXPECT_EQ(*ServerLog()->Newest(), before_reads);
  EXPECT_EQ(http().Delete(ManifestPath(repo, "v1")).status, 202);
  records = RecordsOf(repo, before_reads);
  ASSERT_EQ(records.size(), 1u);
  ASSERT_EQ(records[0].events.size(), 1u);
  EXPECT_EQ(records[0].events[0].kind, ChangeEvent::Kind::kTagDeleted);
  EXPECT_EQ(records[0].request.method, "DELETE");
}

}  // namespace
}  // namespace regfs::testing
