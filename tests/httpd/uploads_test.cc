// Blob upload sessions: start, monolithic, POST+PUT, status, cancel,
// digest mismatch, unknown and hostile upload ids. Chunked PATCH uploads
// are in chunked_upload_test.cc, cross-repository mounts in mount_test.cc.
#include <filesystem>

#include "registry_test.h"

namespace regfs::testing {
namespace {

const HeaderList kOctetStream = {{"Content-Type", "application/octet-stream"}};

class UploadsTest : public RegistryTest {
 protected:
  // POST a new session; returns the resolved Location ("" on failure).
  std::string StartUpload(const std::string& repo, HttpResponse* response = nullptr) {
    HttpResponse post = http().Post(UploadsPath(repo));
    if (response != nullptr) *response = post;
    EXPECT_EQ(post.status, 202) << post.Describe();
    if (post.status != 202 || post.Header("Location").empty()) return "";
    return ResolveLocation(post.Header("Location"), UploadsPath(repo));
  }
};

TEST_F(UploadsTest, StartReturnsSession) {
  std::string repo = NewRepo();
  HttpResponse response = http().Post(UploadsPath(repo));
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_FALSE(response.Header("Location").empty());
  EXPECT_FALSE(response.Header("Docker-Upload-UUID").empty());
  EXPECT_EQ(response.Header("Range"), "0-0");
  // The session lives under the repository's uploads path.
  EXPECT_EQ(LocationPath(response.Header("Location")).rfind(UploadsPath(repo), 0), 0u)
      << response.Header("Location");
}

TEST_F(UploadsTest, MonolithicPostWithDigest) {
  std::string repo = NewRepo();
  std::string content = RandomBytes(10000, repo);
  std::string digest = Sha256Digest(content);
  HttpResponse response =
      http().Post(UploadsPath(repo) + "?digest=" + digest, content, kOctetStream);
  ASSERT_EQ(response.status, 201) << response.Describe();
  EXPECT_EQ(LocationPath(response.Header("Location")), BlobPath(repo, digest));
  EXPECT_EQ(response.Header("Docker-Content-Digest"), digest);
  HttpResponse blob = http().Get(BlobPath(repo, digest));
  ASSERT_EQ(blob.status, 200) << blob.Describe();
  EXPECT_TRUE(blob.body == content);
}

TEST_F(UploadsTest, PostThenPutWithWholeBody) {
  std::string repo = NewRepo();
  std::string content = RandomBytes(20000, repo);
  std::string digest = Sha256Digest(content);
  std::string location = StartUpload(repo);
  ASSERT_FALSE(location.empty());
  HttpResponse put = http().Put(AppendQuery(location, "digest=" + digest), content, kOctetStream);
  ASSERT_EQ(put.status, 201) << put.Describe();
  EXPECT_EQ(LocationPath(put.Header("Location")), BlobPath(repo, digest));
  EXPECT_EQ(put.Header("Docker-Content-Digest"), digest);
  HttpResponse head = http().Head(BlobPath(repo, digest));
  EXPECT_EQ(head.status, 200) << head.Describe();
  EXPECT_EQ(head.Header("Content-Length"), std::to_string(content.size()));
}

TEST_F(UploadsTest, LargeBlobRoundTrips) {
  std::string repo = NewRepo();
  std::string content = RandomBytes(8 * 1024 * 1024 + 123, repo);
  ASSERT_TRUE(PushBlob(http(), repo, content));
  HttpResponse blob = http().Get(BlobPath(repo, Sha256Digest(content)));
  ASSERT_EQ(blob.status, 200) << blob.Describe();
  EXPECT_EQ(blob.body.size(), content.size());
  EXPECT_TRUE(blob.body == content);
}

TEST_F(UploadsTest, StatusOfEmptySession) {
  std::string repo = NewRepo();
  HttpResponse post;
  std::string location = StartUpload(repo, &post);
  ASSERT_FALSE(location.empty());
  HttpResponse status = http().Get(location);
  ASSERT_EQ(status.status, 204) << status.Describe();
  EXPECT_EQ(status.Header("Range"), "0-0");
  EXPECT_EQ(status.Header("Docker-Upload-UUID"), post.Header("Docker-Upload-UUID"));
}

TEST_F(UploadsTest, DigestMismatchIsRejectedAndNothingStored) {
  std::string repo = NewRepo();
  std::string content = "the bytes actually sent";
  std::string claimed = Sha256Digest("some other bytes");
  std::string location = StartUpload(repo);
  ASSERT_FALSE(location.empty());
  HttpResponse put = http().Put(AppendQuery(location, "digest=" + claimed), content, kOctetStream);
  EXPECT_TRUE(IsRegistryError(put, 400, "DIGEST_INVALID"));
  EXPECT_EQ(http().Head(BlobPath(repo, claimed)).status, 404);
  EXPECT_EQ(http().Head(BlobPath(repo, Sha256Digest(content))).status, 404);
}

TEST_F(UploadsTest, MonolithicPostDigestMismatchIsRejected) {
  std::string repo = NewRepo();
  std::string claimed = Sha256Digest("claimed");
  HttpResponse response =
      http().Post(UploadsPath(repo) + "?digest=" + claimed, "actual", kOctetStream);
  EXPECT_TRUE(IsRegistryError(response, 400, "DIGEST_INVALID"));
  EXPECT_EQ(http().Head(BlobPath(repo, claimed)).status, 404);
}

TEST_F(UploadsTest, PutWithoutDigestIsClientError) {
  std::string repo = NewRepo();
  std::string location = StartUpload(repo);
  ASSERT_FALSE(location.empty());
  HttpResponse put = http().Put(location, "data", kOctetStream);
  EXPECT_EQ(put.status, 400) << put.Describe();
}

TEST_F(UploadsTest, CancelEndsSession) {
  std::string repo = NewRepo();
  std::string location = StartUpload(repo);
  ASSERT_FALSE(location.empty());
  HttpResponse patch = http().Patch(location, "partial data", kOctetStream);
  ASSERT_EQ(patch.status, 202) << patch.Describe();
  location = ResolveLocation(patch.Header("Location"), location);
  HttpResponse cancel = http().Delete(location);
  ASSERT_EQ(cancel.status, 204) << cancel.Describe();
  EXPECT_TRUE(IsRegistryError(http().Get(location), 404, "BLOB_UPLOAD_UNKNOWN"));
}

TEST_F(UploadsTest, CompletedSessionIsGone) {
  std::string repo = NewRepo();
  std::string content = "complete me";
  std::string location = StartUpload(repo);
  ASSERT_FALSE(location.empty());
  ASSERT_EQ(
      http()
          .Put(AppendQuery(location, "digest=" + Sha256Digest(content)), content, kOctetStream)
          .status,
      201);
  EXPECT_TRUE(IsRegistryError(http().Get(location), 404, "BLOB_UPLOAD_UNKNOWN"));
}

TEST_F(UploadsTest, UnknownUploadIdIsBlobUploadUnknown) {
  std::string repo = NewRepo();
  ASSERT_TRUE(PushBlob(http(), repo, "make the repository exist"));
  std::string target = UploadsPath(repo) + "3f1a9c2e-7b4d-4e8f-9a61-0c5d2b8e7f10";
  std::string digest = Sha256Digest("x");
  EXPECT_TRUE(IsRegistryError(http().Get(target), 404, "BLOB_UPLOAD_UNKNOWN"));
  EXPECT_TRUE(IsRegistryError(http().Patch(target, "x", kOctetStream), 404, "BLOB_UPLOAD_UNKNOWN"));
  EXPECT_TRUE(
      IsRegistryError(http().Put(AppendQuery(target, "digest=" + digest), "x", kOctetStream), 404,
                      "BLOB_UPLOAD_UNKNOWN"));
  EXPECT_TRUE(IsRegistryError(http().Delete(target), 404, "BLOB_UPLOAD_UNKNOWN"));
}

TEST_F(UploadsTest, HostileUploadIdsNeverEscape) {
  std::string repo = NewRepo();
  ASSERT_TRUE(PushBlob(http(), repo, "make the repository exist"));
  std::set<std::string> before = FilesOutsideStorage();
  std::string digest = Sha256Digest("x");
  const std::vector<std::string> ids = {
      "..",
      "%2e%2e",
      "..%2f..%2f..%2f..%2f..%2f..%2fconfig.yml",
      "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fescape",
      "a%2fb",
      "a/b",
      "garbage!!",
      "%00",
      "%20",
      std::string(300, 'f'),
  };
  for (const std::string& id : ids) {
    std::string target = UploadsPath(repo) + id;
    for (const HttpRequest& request : std::vector<HttpRequest>{
             {"GET", target},
             {"PATCH", target, kOctetStream, "x"},
             {"PUT", AppendQuery(target, "digest=" + digest), kOctetStream, "x"},
             {"DELETE", target},
         }) {
      SCOPED_TRACE(request.method + " " + request.target.substr(0, 120));
      HttpResponse response = http().Send(request);
      EXPECT_TRUE(response.status == 400 || response.status == 404) << response.Describe();
    }
  }
  EXPECT_EQ(FilesOutsideStorage(), before);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(server().dir()) / "escape"));
  // The config the traversal aimed at is intact: the server still works.
  EXPECT_EQ(http().Get("/v2/").status, 200);
}

}  // namespace
}  // namespace regfs::testing
