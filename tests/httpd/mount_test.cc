// Cross-repository blob mounts: POST /v2/<name>/blobs/uploads/?mount=D&from=R.
#include "registry_test.h"

namespace regfs::testing {
namespace {

class MountTest : public RegistryTest {};

TEST_F(MountTest, MountFromRepositoryHoldingBlob) {
  std::string source = NewRepo("source");
  std::string target = NewRepo("target");
  std::string content = RandomBytes(4096, source);
  std::string digest = Sha256Digest(content);
  ASSERT_TRUE(PushBlob(http(), source, content));

  HttpResponse mount = http().Post(UploadsPath(target) + "?mount=" + digest + "&from=" + source);
  ASSERT_EQ(mount.status, 201) << mount.Describe();
  EXPECT_EQ(LocationPath(mount.Header("Location")), BlobPath(target, digest));
  EXPECT_EQ(mount.Header("Docker-Content-Digest"), digest);

  HttpResponse blob = http().Get(BlobPath(target, digest));
  ASSERT_EQ(blob.status, 200) << blob.Describe();
  EXPECT_TRUE(blob.body == content);
}

TEST_F(MountTest, MountedBlobSurvivesDeleteInSource) {
  std::string source = NewRepo("source");
  std::string target = NewRepo("target");
  std::string content = RandomBytes(2048, source);
  std::string digest = Sha256Digest(content);
  ASSERT_TRUE(PushBlob(http(), source, content));
  ASSERT_EQ(http().Post(UploadsPath(target) + "?mount=" + digest + "&from=" + source).status, 201);

  ASSERT_EQ(http().Delete(BlobPath(source, digest)).status, 202);
  EXPECT_EQ(http().Head(BlobPath(source, digest)).status, 404);
  HttpResponse blob = http().Get(BlobPath(target, digest));
  ASSERT_EQ(blob.status, 200) << blob.Describe();
  EXPECT_TRUE(blob.body == content);
}

TEST_F(MountTest, MountFromRepositoryWithoutBlobStartsUpload) {
  std::string source = NewRepo("source");
  std::string target = NewRepo("target");
  ASSERT_TRUE(PushBlob(http(), source, "something else"));
  std::string content = "not in the source repository";
  std::string digest = Sha256Digest(content);

  HttpResponse mount = http().Post(UploadsPath(target) + "?mount=" + digest + "&from=" + source);
  ASSERT_EQ(mount.status, 202) << mount.Describe();
  EXPECT_FALSE(mount.Header("Docker-Upload-UUID").empty());
  ASSERT_FALSE(mount.Header("Location").empty());

  // It is an ordinary session: the client uploads the blob itself.
  std::string location = ResolveLocation(mount.Header("Location"), UploadsPath(target));
  HttpResponse put = http().Put(AppendQuery(location, "digest=" + digest), content,
                                {{"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(put.status, 201) << put.Describe();
  EXPECT_EQ(http().Head(BlobPath(target, digest)).status, 200);
}

TEST_F(MountTest, MountFromUnknownRepositoryStartsUpload) {
  std::string target = NewRepo("target");
  std::string digest = Sha256Digest("anything");
  HttpResponse mount =
      http().Post(UploadsPath(target) + "?mount=" + digest + "&from=" + NewRepo("nowhere"));
  EXPECT_EQ(mount.status, 202) << mount.Describe();
  EXPECT_FALSE(mount.Header("Location").empty());
}

}  // namespace
}  // namespace regfs::testing
