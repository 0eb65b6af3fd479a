// GET / HEAD / Range / DELETE on /v2/<name>/blobs/<digest>.
#include "registry_test.h"

namespace regfs::testing {
namespace {

class BlobsTest : public RegistryTest {
 protected:
  // Pushes a 64 KiB blob to a fresh repository.
  void SetUp() override {
    RegistryTest::SetUp();
    if (HasFatalFailure()) return;
    repo_ = NewRepo();
    content_ = RandomBytes(64 * 1024, repo_);
    digest_ = Sha256Digest(content_);
    ASSERT_TRUE(PushBlob(http(), repo_, content_));
  }

  std::string repo_;
  std::string content_;
  std::string digest_;
};

TEST_F(BlobsTest, GetReturnsExactBytes) {
  HttpResponse response = http().Get(BlobPath(repo_, digest_));
  ASSERT_EQ(response.status, 200) << response.Describe();
  EXPECT_EQ(response.Header("Content-Length"), std::to_string(content_.size()));
  EXPECT_EQ(response.Header("Docker-Content-Digest"), digest_);
  EXPECT_EQ(response.MediaType(), "application/octet-stream");
  EXPECT_TRUE(response.body == content_) << "body differs from the pushed blob";
}

TEST_F(BlobsTest, HeadReturnsMetadataWithoutBody) {
  HttpResponse response = http().Head(BlobPath(repo_, digest_));
  ASSERT_EQ(response.status, 200) << response.Describe();
  EXPECT_EQ(response.Header("Content-Length"), std::to_string(content_.size()));
  EXPECT_EQ(response.Header("Docker-Content-Digest"), digest_);
  EXPECT_EQ(response.MediaType(), "application/octet-stream");
  EXPECT_TRUE(response.body.empty());
}

TEST_F(BlobsTest, EmptyBlobIsServed) {
  ASSERT_TRUE(PushBlob(http(), repo_, ""));
  HttpResponse response = http().Get(BlobPath(repo_, Sha256Digest("")));
  ASSERT_EQ(response.status, 200) << response.Describe();
  EXPECT_EQ(response.Header("Content-Length"), "0");
  EXPECT_TRUE(response.body.empty());
}

TEST_F(BlobsTest, RangeReturnsExactlyThoseBytes) {
  const std::string total = std::to_string(content_.size());
  struct Case {
    size_t first, last;
  };
  for (Case c : {Case{0, 0}, Case{10, 19}, Case{1000, 40000},
                 Case{content_.size() - 5, content_.size() - 1}}) {
    std::string range = std::to_string(c.first) + "-" + std::to_string(c.last);
    SCOPED_TRACE("bytes=" + range);
    HttpResponse response = http().Get(BlobPath(repo_, digest_), {{"Range", "bytes=" + range}});
    ASSERT_EQ(response.status, 206) << response.Describe();
    EXPECT_EQ(response.Header("Content-Range"), "bytes " + range + "/" + total);
    EXPECT_EQ(response.Header("Content-Length"), std::to_string(c.last - c.first + 1));
    EXPECT_TRUE(response.body == content_.substr(c.first, c.last - c.first + 1))
        << "got " << response.body.size() << " bytes, not the requested range";
  }
}

TEST_F(BlobsTest, RangeBeyondEndIsUnsatisfiable) {
  std::string range =
      "bytes=" + std::to_string(content_.size() + 10) + "-" + std::to_string(content_.size() + 20);
  HttpResponse response = http().Get(BlobPath(repo_, digest_), {{"Range", range}});
  EXPECT_EQ(response.status, 416) << response.Describe();
}

TEST_F(BlobsTest, UnknownBlobIsBlobUnknown) {
  std::string missing = Sha256Digest("never pushed anywhere");
  EXPECT_TRUE(IsRegistryError(http().Get(BlobPath(repo_, missing)), 404, "BLOB_UNKNOWN"));
  HttpResponse head = http().Head(BlobPath(repo_, missing));
  EXPECT_EQ(head.status, 404) << head.Describe();
  // A repository that does not exist at all hides no blob either.
  EXPECT_EQ(http().Head(BlobPath(NewRepo(), digest_)).status, 404);
}

// Nothing is stored under a digest that does not parse, so every lookup is 404 BLOB_UNKNOWN
// (as for manifests; registry:2 answers 404 too); an overlong one is still DIGEST_INVALID.
TEST_F(BlobsTest, MalformedDigestIsUnknown) {
  std::string hex = Sha256Hex(content_);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& digest :
       {std::string("sha256:xyz"), std::string("md5:d41d8cd98f00b204e9800998ecf8427e"),
        "sha256:" + hex.substr(0, 63), "sha256:" + upper}) {
    SCOPED_TRACE(digest);
    EXPECT_TRUE(IsRegistryError(http().Get(BlobPath(repo_, digest)), 404, "BLOB_UNKNOWN"));
    EXPECT_EQ(http().Head(BlobPath(repo_, digest)).status, 404);
    EXPECT_TRUE(IsRegistryError(http().Delete(BlobPath(repo_, digest)), 404, "BLOB_UNKNOWN"));
  }
  std::string overlong = "sha256:" + std::string(200, 'a');
  EXPECT_TRUE(IsRegistryError(http().Get(BlobPath(repo_, overlong)), 400, "DIGEST_INVALID"));
  // A method blobs do not take is refused as such, whatever the digest.
  EXPECT_EQ(http().Put(BlobPath(repo_, "sha256:xyz"), "x").status, 405);
}

TEST_F(BlobsTest, DeleteRemovesBlob) {
  HttpResponse response = http().Delete(BlobPath(repo_, digest_));
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_EQ(http().Head(BlobPath(repo_, digest_)).status, 404);
  EXPECT_TRUE(IsRegistryError(http().Get(BlobPath(repo_, digest_)), 404, "BLOB_UNKNOWN"));
}

TEST_F(BlobsTest, DeleteUnknownBlobIsBlobUnknown) {
  HttpResponse response = http().Delete(BlobPath(repo_, Sha256Digest("not here")));
  EXPECT_TRUE(IsRegistryError(response, 404, "BLOB_UNKNOWN"));
}

TEST_F(BlobsTest, BlobCanBePushedAgainAfterDelete) {
  ASSERT_EQ(http().Delete(BlobPath(repo_, digest_)).status, 202);
  ASSERT_TRUE(PushBlob(http(), repo_, content_));
  HttpResponse response = http().Get(BlobPath(repo_, digest_));
  ASSERT_EQ(response.status, 200) << response.Describe();
  EXPECT_TRUE(response.body == content_);
}

// On an object store a blob GET sends the client to the store with a presigned URL
// (registry:2's default there): the bytes never pass through the registry. HEAD, and every
// request for a blob the repository lacks, are still answered here.
TEST(ObjectStoreRedirectTest, BlobGetsRedirectToPresignedUrls) {
  auto store = ReadObjectStoreEnv();
  if (!store) GTEST_SKIP() << "needs the test object store (REGFS_TEST_S3_ENV)";
  RegistryServer server({.redirect = true});
  ASSERT_TRUE(server.Start());
  HttpClient http = server.Client();
  const std::string repo = "redirect/blobs", content = "bytes fetched from the store itself";
  ASSERT_TRUE(PushBlob(http, repo, content));
  HttpResponse get = http.Get(BlobPath(repo, Sha256Digest(content)));
  ASSERT_EQ(get.status, 307) << get.Describe();
  EXPECT_EQ(get.Header("Docker-Content-Digest"), Sha256Digest(content));
  const std::string location = get.Header("Location");
  const std::string endpoint = store->at("RGW_ENDPOINT");  // http://127.0.0.1:PORT
  ASSERT_TRUE(location.starts_with(endpoint + "/")) << location;
  const uint16_t port = static_cast<uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
  HttpResponse fetched = HttpClient("127.0.0.1", port).Get(ResolveLocation(location));
  EXPECT_EQ(fetched.status, 200) << fetched.Describe();
  EXPECT_EQ(fetched.body, content);
  // The URL is the store's own signature: changed, it is refused there.
  std::string tampered = ResolveLocation(location);
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_EQ(HttpClient("127.0.0.1", port).Get(tampered).status, 403);

  HttpResponse head = http.Head(BlobPath(repo, Sha256Digest(content)));
  EXPECT_EQ(head.status, 200) << head.Describe();
  EXPECT_EQ(head.Header("Content-Length"), std::to_string(content.size()));
  EXPECT_TRUE(IsRegistryError(http.Get(BlobPath(repo, Sha256Digest("absent"))), 404, "BLOB_UNKNOWN"));
  EXPECT_TRUE(IsRegistryError(http.Get(BlobPath("redirect/other", Sha256Digest(content))), 404,
                              "BLOB_UNKNOWN"));
}

}  // namespace
}  // namespace regfs::testing
