// Behaviour switched by config.yml: delete disabled, read-only maintenance
// mode and custom response headers. Startup failures and config warnings
// are in startup_test.cc.
#include "registry_test.h"

namespace regfs::testing {
namespace {

// ---- storage.delete.enabled: false
class DeleteDisabledTest : public RegistryTest {
 protected:
  static void SetUpTestSuite() { StartSharedServer({.delete_enabled = false}); }
};

TEST_F(DeleteDisabledTest, DeletesAreUnsupported) {
  std::string repo = NewRepo();
  PushedManifest image;
  ASSERT_TRUE(PushImage(http(), repo, "v1", media::kOciManifest, repo, &image));
  std::string blob = "a blob that must survive";
  ASSERT_TRUE(PushBlob(http(), repo, blob));

  EXPECT_TRUE(
      IsRegistryError(http().Delete(BlobPath(repo, Sha256Digest(blob))), 405, "UNSUPPORTED"));
  EXPECT_TRUE(IsRegistryError(http().Delete(ManifestPath(repo, image.digest)), 405, "UNSUPPORTED"));
  EXPECT_TRUE(IsRegistryError(http().Delete(ManifestPath(repo, "v1")), 405, "UNSUPPORTED"));

  EXPECT_EQ(http().Head(BlobPath(repo, Sha256Digest(blob))).status, 200);
  EXPECT_EQ(http().Get(ManifestPath(repo, "v1"), ManifestAccept()).status, 200);
  EXPECT_EQ(http().Get(ManifestPath(repo, image.digest), ManifestAccept()).status, 200);
}

TEST_F(DeleteDisabledTest, UnknownContentIsStillUnsupportedNotServerError) {
  std::string repo = NewRepo();
  HttpResponse response = http().Delete(BlobPath(repo, Sha256Digest("absent")));
  EXPECT_TRUE(response.status == 405 || response.status == 404) << response.Describe();
}

// ---- storage.maintenance.readonly.enabled: true
class ReadOnlyTest : public RegistryTest {
 protected:
  static void SetUpTestSuite() {}
  static void TearDownTestSuite() {}

  // Each test gets a server with content pushed while writable, then
  // restarted read-only on the same storage.
  void SetUp() override {
    StartSharedServer({});
    RegistryTest::SetUp();
    if (HasFatalFailure()) return;
    repo_ = NewRepo();
    blob_ = "read-only blob " + repo_;
    ASSERT_TRUE(PushImage(http(), repo_, "v1", media::kOciManifest, repo_, &image_));
    ASSERT_TRUE(PushBlob(http(), repo_, blob_));
    ASSERT_TRUE(server().Restart({.storage_extra = "maintenance: {readonly: {enabled: true}}"}));
  }
  void TearDown() override {
    RegistryTest::TearDown();
    StopSharedServer();
  }

  std::string repo_;
  std::string blob_;
  PushedManifest image_;
};

TEST_F(ReadOnlyTest, PushesAreUnsupported) {
  EXPECT_TRUE(IsRegistryError(http().Post(UploadsPath(repo_)), 405, "UNSUPPORTED"));
  std::string content = "new content";
  EXPECT_TRUE(IsRegistryError(http().Post(UploadsPath(repo_) + "?digest=" + Sha256Digest(content),
                                          content, {{"Content-Type", "application/octet-stream"}}),
                              405, "UNSUPPORTED"));
  EXPECT_TRUE(IsRegistryError(http().Post(UploadsPath(NewRepo("other")) +
                                          "?mount=" + Sha256Digest(blob_) + "&from=" + repo_),
                              405, "UNSUPPORTED"));
  EXPECT_TRUE(IsRegistryError(http().Put(ManifestPath(repo_, "v2"), image_.body,
                                         {{"Content-Type", std::string(media::kOciManifest)}}),
                              405, "UNSUPPORTED"));
  EXPECT_EQ(http().Get(ManifestPath(repo_, "v2"), ManifestAccept()).status, 404);
}

TEST_F(ReadOnlyTest, DeletesAreUnsupported) {
  EXPECT_TRUE(
      IsRegistryError(http().Delete(BlobPath(repo_, Sha256Digest(blob_))), 405, "UNSUPPORTED"));
  EXPECT_TRUE(
      IsRegistryError(http().Delete(ManifestPath(repo_, image_.digest)), 405, "UNSUPPORTED"));
  EXPECT_EQ(http().Get(ManifestPath(repo_, "v1"), ManifestAccept()).status, 200);
}

TEST_F(ReadOnlyTest, PullsWork) {
  HttpResponse manifest = http().Get(ManifestPath(repo_, "v1"), ManifestAccept());
  ASSERT_EQ(manifest.status, 200) << manifest.Describe();
  EXPECT_EQ(manifest.body, image_.body);
  EXPECT_EQ(http().Head(ManifestPath(repo_, image_.digest), ManifestAccept()).status, 200);

  HttpResponse blob = http().Get(BlobPath(repo_, Sha256Digest(blob_)));
  ASSERT_EQ(blob.status, 200) << blob.Describe();
  EXPECT_EQ(blob.body, blob_);

  HttpResponse tags = http().Get("/v2/" + repo_ + "/tags/list");
  ASSERT_EQ(tags.status, 200) << tags.Describe();
  EXPECT_EQ(StringArray(ParseObject(tags.body), "tags"), std::vector<std::string>{"v1"});

  HttpResponse catalog = http().Get("/v2/_catalog");
  ASSERT_EQ(catalog.status, 200) << catalog.Describe();
  EXPECT_EQ(StringArray(ParseObject(catalog.body), "repositories"),
            std::vector<std::string>{repo_});
  EXPECT_EQ(http().Get("/v2/").status, 200);
}

// ---- http.headers
class CustomHeadersTest : public RegistryTest {
 protected:
  static void SetUpTestSuite() {
    StartSharedServer({.http_extra = "headers: {X-Custom: [value], X-Other: [\"a b\"]}"});
  }
};

TEST_F(CustomHeadersTest, HeadersOnSuccessesAndErrors) {
  std::string repo = NewRepo();
  std::string blob = "custom headers";
  ASSERT_TRUE(PushBlob(http(), repo, blob));
  const std::vector<HttpRequest> requests = {
      {"GET", "/v2/"},
      {"HEAD", BlobPath(repo, Sha256Digest(blob))},
      {"GET", BlobPath(repo, Sha256Digest(blob))},
      {"GET", BlobPath(repo, Sha256Digest("missing"))},
      {"POST", UploadsPath(repo)},
  };
  for (const HttpRequest& request : requests) {
    SCOPED_TRACE(request.method + " " + request.target);
    HttpResponse response = http().Send(request);
    ASSERT_NE(response.status, 0) << response.Describe();
    EXPECT_EQ(response.Header("X-Custom"), "value") << response.Describe();
    EXPECT_EQ(response.Header("X-Other"), "a b") << response.Describe();
  }
}

}  // namespace
}  // namespace regfs::testing
