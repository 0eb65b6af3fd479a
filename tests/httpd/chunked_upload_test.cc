// Chunked blob uploads: PATCH with and without Content-Range, streamed
// (Transfer-Encoding: chunked) bodies, a final PUT carrying the last chunk,
// and out-of-order chunks.
#include "registry_test.h"

namespace regfs::testing {
namespace {

class ChunkedUploadTest : public RegistryTest {
 protected:
  void SetUp() override {
    RegistryTest::SetUp();
    if (HasFatalFailure()) return;
    repo_ = NewRepo();
    HttpResponse post = http().Post(UploadsPath(repo_));
    ASSERT_EQ(post.status, 202) << post.Describe();
    uuid_ = post.Header("Docker-Upload-UUID");
    location_ = ResolveLocation(post.Header("Location"), UploadsPath(repo_));
  }

  // PATCHes `chunk` at the session's current Location; on 202 follows the
  // new Location. `content_range` empty means no Content-Range header.
  HttpResponse Patch(const std::string& chunk, const std::string& content_range,
                     bool streamed = false) {
    HttpRequest request{"PATCH", location_, {{"Content-Type", "application/octet-stream"}}, chunk};
    if (!content_range.empty()) request.headers.emplace_back("Content-Range", content_range);
    request.chunked = streamed;
    request.chunk_size = 1000;
    HttpResponse response = http().Send(request);
    if (response.status == 202 && !response.Header("Location").empty()) {
      location_ = ResolveLocation(response.Header("Location"), location_);
    }
    return response;
  }

  HttpResponse Finish(const std::string& digest, const std::string& last_chunk = "",
                      bool streamed = false) {
    HttpRequest request{"PUT",
                        AppendQuery(location_, "digest=" + digest),
                        {{"Content-Type", "application/octet-stream"}},
                        last_chunk};
    request.chunked = streamed;
    request.chunk_size = 1000;
    return http().Send(request);
  }

  void ExpectBlob(const std::string& content) {
    HttpResponse blob = http().Get(BlobPath(repo_, Sha256Digest(content)));
    ASSERT_EQ(blob.status, 200) << blob.Describe();
    EXPECT_EQ(blob.body.size(), content.size());
    EXPECT_TRUE(blob.body == content) << "blob content differs from the chunks sent";
  }

  std::string repo_;
  std::string uuid_;
  std::string location_;
};

TEST_F(ChunkedUploadTest, PatchWithContentRange) {
  std::string content = RandomBytes(30000, repo_);
  std::string first = content.substr(0, 12345);
  std::string second = content.substr(12345);

  HttpResponse response = Patch(first, "0-12344");
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_EQ(response.Header("Range"), "0-12344");
  EXPECT_FALSE(response.Header("Location").empty());
  EXPECT_EQ(response.Header("Docker-Upload-UUID"), uuid_);

  response = Patch(second, "12345-29999");
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_EQ(response.Header("Range"), "0-29999");

  HttpResponse status = http().Get(location_);
  ASSERT_EQ(status.status, 204) << status.Describe();
  EXPECT_EQ(status.Header("Range"), "0-29999");
  EXPECT_EQ(status.Header("Docker-Upload-UUID"), uuid_);

  HttpResponse put = Finish(Sha256Digest(content));
  ASSERT_EQ(put.status, 201) << put.Describe();
  EXPECT_EQ(LocationPath(put.Header("Location")), BlobPath(repo_, Sha256Digest(content)));
  EXPECT_EQ(put.Header("Docker-Content-Digest"), Sha256Digest(content));
  ExpectBlob(content);
}

TEST_F(ChunkedUploadTest, PatchWithoutContentRangeAppends) {
  std::string content = RandomBytes(5000, repo_);
  HttpResponse response = Patch(content.substr(0, 2000), "");
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_EQ(response.Header("Range"), "0-1999");
  response = Patch(content.substr(2000), "");
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_EQ(response.Header("Range"), "0-4999");
  ASSERT_EQ(Finish(Sha256Digest(content)).status, 201);
  ExpectBlob(content);
}

TEST_F(ChunkedUploadTest, StreamedPatchWithChunkedTransferEncoding) {
  std::string content = RandomBytes(70000, repo_);
  HttpResponse response = Patch(content.substr(0, 50000), "", /*streamed=*/true);
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_EQ(response.Header("Range"), "0-49999");
  response = Patch(content.substr(50000), "", /*streamed=*/true);
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_EQ(response.Header("Range"), "0-69999");
  ASSERT_EQ(Finish(Sha256Digest(content)).status, 201);
  ExpectBlob(content);
}

TEST_F(ChunkedUploadTest, FinalPutCarriesLastChunk) {
  std::string content = RandomBytes(9000, repo_);
  ASSERT_EQ(Patch(content.substr(0, 4000), "0-3999").status, 202);
  HttpResponse put = Finish(Sha256Digest(content), content.substr(4000));
  ASSERT_EQ(put.status, 201) << put.Describe();
  ExpectBlob(content);
}

TEST_F(ChunkedUploadTest, StreamedFinalPut) {
  std::string content = RandomBytes(9000, repo_);
  ASSERT_EQ(Patch(content.substr(0, 4000), "").status, 202);
  HttpResponse put = Finish(Sha256Digest(content), content.substr(4000), /*streamed=*/true);
  ASSERT_EQ(put.status, 201) << put.Describe();
  ExpectBlob(content);
}

TEST_F(ChunkedUploadTest, GapIsRangeNotSatisfiable) {
  std::string content = RandomBytes(30, repo_);
  ASSERT_EQ(Patch(content.substr(0, 10), "0-9").status, 202);
  HttpResponse response = Patch(content.substr(20, 10), "20-29");
  EXPECT_EQ(response.status, 416) << response.Describe();
  // The session is unchanged and can still be completed.
  HttpResponse status = http().Get(location_);
  ASSERT_EQ(status.status, 204) << status.Describe();
  EXPECT_EQ(status.Header("Range"), "0-9");
  ASSERT_EQ(Patch(content.substr(10), "10-29").status, 202);
  ASSERT_EQ(Finish(Sha256Digest(content)).status, 201);
  ExpectBlob(content);
}

TEST_F(ChunkedUploadTest, OverlapIsRangeNotSatisfiable) {
  std::string content = RandomBytes(20, repo_);
  ASSERT_EQ(Patch(content.substr(0, 10), "0-9").status, 202);
  HttpResponse response = Patch(content.substr(0, 10), "0-9");
  EXPECT_EQ(response.status, 416) << response.Describe();
  HttpResponse status = http().Get(location_);
  ASSERT_EQ(status.status, 204) << status.Describe();
  EXPECT_EQ(status.Header("Range"), "0-9");
}

TEST_F(ChunkedUploadTest, DigestMismatchAfterChunksIsRejected) {
  std::string content = RandomBytes(3000, repo_);
  ASSERT_EQ(Patch(content, "0-2999").status, 202);
  std::string claimed = Sha256Digest("not what was sent");
  HttpResponse put = Finish(claimed);
  EXPECT_TRUE(IsRegistryError(put, 400, "DIGEST_INVALID"));
  EXPECT_EQ(http().Head(BlobPath(repo_, claimed)).status, 404);
  EXPECT_EQ(http().Head(BlobPath(repo_, Sha256Digest(content))).status, 404);
}

}  // namespace
}  // namespace regfs::testing
