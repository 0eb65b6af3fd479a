// Concurrent pushes racing on the same blob, the same tag and the same
// repository.
#include <algorithm>
#include <latch>
#include <set>
#include <thread>

#include "registry_test.h"

namespace regfs::testing {
namespace {

class ConcurrencyTest : public RegistryTest {
 protected:
  // Runs body(i) on `threads` threads released together, so that the
  // requests really overlap; joins them all.
  template <typename Body>
  static void RunTogether(int threads, Body body) {
    std::latch start(threads);
    std::vector<std::thread> workers;
    for (int i = 0; i < threads; ++i) {
      workers.emplace_back([&, i] {
        start.arrive_and_wait();
        body(i);
      });
    }
    for (auto& worker : workers) worker.join();
  }
};

TEST_F(ConcurrencyTest, SameBlobFromSixteenSessions) {
  constexpr int kThreads = 16;
  std::string repo = NewRepo();
  std::string content = RandomBytes(1024 * 1024 + 17, repo);
  std::string digest = Sha256Digest(content);

  // Open every session first so that the uploads themselves overlap.
  std::vector<std::string> locations;
  for (int i = 0; i < kThreads; ++i) {
    HttpResponse post = http().Post(UploadsPath(repo));
    ASSERT_EQ(post.status, 202) << post.Describe();
    locations.push_back(ResolveLocation(post.Header("Location"), UploadsPath(repo)));
  }
  std::vector<HttpResponse> results(kThreads);
  HttpClient client = http();
  RunTogether(kThreads, [&](int i) {
    results[i] = client.Put(AppendQuery(locations[i], "digest=" + digest), content,
                            {{"Content-Type", "application/octet-stream"}});
  });
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(results[i].status, 201) << "session " << i << "\n" << results[i].Describe();
  }

  HttpResponse blob = http().Get(BlobPath(repo, digest));
  ASSERT_EQ(blob.status, 200) << blob.Describe();
  EXPECT_EQ(blob.Header("Content-Length"), std::to_string(content.size()));
  EXPECT_EQ(blob.body.size(), content.size());
  EXPECT_TRUE(blob.body == content) << "the blob was not served whole";
}

TEST_F(ConcurrencyTest, SameTagFromEightWriters) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 5;
  std::string repo = NewRepo();
  std::vector<PushedManifest> images(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(PushImage(http(), repo, "img" + std::to_string(i), media::kOciManifest,
                          repo + std::to_string(i), &images[i]));
  }
  std::set<std::string> pushed;
  for (const auto& image : images) pushed.insert(image.digest);

  HttpClient client = http();
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<HttpResponse> results(kThreads);
    RunTogether(kThreads, [&](int i) {
      results[i] = client.Put(ManifestPath(repo, "contended"), images[i].body,
                              {{"Content-Type", std::string(media::kOciManifest)}});
    });
    for (int i = 0; i < kThreads; ++i) {
      EXPECT_EQ(results[i].status, 201) << "writer " << i << "\n" << results[i].Describe();
    }
    HttpResponse tag = http().Get(ManifestPath(repo, "contended"), ManifestAccept());
    ASSERT_EQ(tag.status, 200) << tag.Describe();
    std::string digest = Sha256Digest(tag.body);
    EXPECT_TRUE(pushed.count(digest)) << "the tag serves bytes nobody pushed";
    EXPECT_EQ(tag.Header("Docker-Content-Digest"), digest);
  }

  HttpResponse list = http().Get("/v2/" + repo + "/tags/list");
  ASSERT_EQ(list.status, 200) << list.Describe();
  auto tags = StringArray(ParseObject(list.body), "tags");
  ASSERT_TRUE(tags) << list.body;
  EXPECT_EQ(std::count(tags->begin(), tags->end(), "contended"), 1);
}

TEST_F(ConcurrencyTest, DistinctImagesIntoOneRepository) {
  constexpr int kThreads = 8;
  std::string repo = NewRepo();
  std::vector<::testing::AssertionResult> results(kThreads, ::testing::AssertionSuccess());
  HttpClient client = http();
  RunTogether(kThreads, [&](int i) {
    results[i] = PushImage(client, repo, "tag" + std::to_string(i), media::kOciManifest,
                           repo + "/" + std::to_string(i), nullptr);
  });
  for (int i = 0; i < kThreads; ++i) EXPECT_TRUE(results[i]) << "writer " << i;

  HttpResponse list = http().Get("/v2/" + repo + "/tags/list");
  ASSERT_EQ(list.status, 200) << list.Describe();
  auto tags = StringArray(ParseObject(list.body), "tags");
  ASSERT_TRUE(tags) << list.body;
  std::vector<std::string> expected;
  for (int i = 0; i < kThreads; ++i) expected.push_back("tag" + std::to_string(i));
  std::vector<std::string> got = *tags;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, expected);
}

}  // namespace
}  // namespace regfs::testing
