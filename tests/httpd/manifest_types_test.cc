// Round trips of every manifest media type regfs serves: Docker schema 2,
// Docker manifest list, OCI image manifest, OCI index and OCI artifact
// manifests (artifactType + subject).
#include "registry_test.h"

namespace regfs::testing {
namespace {

class ManifestTypesTest : public RegistryTest {
 protected:
  // GET by tag and by digest give back `body` with `media_type`.
  void ExpectServed(const std::string& repo, const std::string& tag, std::string_view media_type,
                    const std::string& body) {
    for (const std::string& reference : {tag, Sha256Digest(body)}) {
      SCOPED_TRACE(reference);
      HttpResponse response = http().Get(ManifestPath(repo, reference), ManifestAccept());
      ASSERT_EQ(response.status, 200) << response.Describe();
      EXPECT_EQ(response.MediaType(), media_type);
      EXPECT_EQ(response.Header("Docker-Content-Digest"), Sha256Digest(body));
      EXPECT_EQ(response.Header("Content-Length"), std::to_string(body.size()));
      EXPECT_EQ(response.body, body);
    }
  }

  static std::string Platform(std::string_view arch) {
    return "{\"architecture\":" + JsonQuote(arch) + ",\"os\":\"linux\"}";
  }
};

TEST_F(ManifestTypesTest, DockerSchema2) {
  std::string repo = NewRepo();
  PushedManifest image;
  ASSERT_TRUE(PushImage(http(), repo, "v1", media::kDockerManifest, repo, &image));
  ExpectServed(repo, "v1", media::kDockerManifest, image.body);
}

TEST_F(ManifestTypesTest, OciImageManifest) {
  std::string repo = NewRepo();
  PushedManifest image;
  ASSERT_TRUE(PushImage(http(), repo, "v1", media::kOciManifest, repo, &image));
  ExpectServed(repo, "v1", media::kOciManifest, image.body);
}

TEST_F(ManifestTypesTest, DockerManifestList) {
  std::string repo = NewRepo();
  PushedManifest amd64, arm64;
  ASSERT_TRUE(PushImage(http(), repo, "amd64", media::kDockerManifest, repo + "amd64", &amd64));
  ASSERT_TRUE(PushImage(http(), repo, "arm64", media::kDockerManifest, repo + "arm64", &arm64));
  Descriptor first = amd64.AsDescriptor();
  first.platform_json = Platform("amd64");
  Descriptor second = arm64.AsDescriptor();
  second.platform_json = Platform("arm64");
  std::string list = BuildIndex({std::string(media::kDockerList), {first, second}});
  ASSERT_TRUE(PushManifest(http(), repo, "multi", media::kDockerList, list));
  ExpectServed(repo, "multi", media::kDockerList, list);
}

TEST_F(ManifestTypesTest, OciIndex) {
  std::string repo = NewRepo();
  PushedManifest amd64, arm64;
  // Children pushed by digest only, as multi-platform builders do.
  ASSERT_TRUE(PushImage(http(), repo, "tmp-amd64", media::kOciManifest, repo + "a", &amd64));
  ASSERT_TRUE(PushImage(http(), repo, "tmp-arm64", media::kOciManifest, repo + "b", &arm64));
  Descriptor first = amd64.AsDescriptor();
  first.platform_json = Platform("amd64");
  Descriptor second = arm64.AsDescriptor();
  second.platform_json = Platform("arm64");
  std::string index = BuildIndex({std::string(media::kOciIndex), {first, second}});
  ASSERT_TRUE(PushManifest(http(), repo, "multi", media::kOciIndex, index));
  ExpectServed(repo, "multi", media::kOciIndex, index);
  // The children stay reachable by digest.
  EXPECT_EQ(http().Head(ManifestPath(repo, amd64.digest), ManifestAccept()).status, 200);
}

TEST_F(ManifestTypesTest, NestedIndex) {
  std::string repo = NewRepo();
  PushedManifest image;
  ASSERT_TRUE(PushImage(http(), repo, "leaf", media::kOciManifest, repo, &image));
  std::string inner = BuildIndex({std::string(media::kOciIndex), {image.AsDescriptor()}});
  ASSERT_TRUE(PushManifest(http(), repo, "inner", media::kOciIndex, inner));
  std::string outer =
      BuildIndex({std::string(media::kOciIndex), {DescriptorOf(media::kOciIndex, inner)}});
  ASSERT_TRUE(PushManifest(http(), repo, "outer", media::kOciIndex, outer));
  ExpectServed(repo, "outer", media::kOciIndex, outer);
}

TEST_F(ManifestTypesTest, IndexWithMissingChildIsManifestBlobUnknown) {
  std::string repo = NewRepo();
  PushedManifest image;
  ASSERT_TRUE(PushImage(http(), repo, "present", media::kOciManifest, repo, &image));
  Descriptor missing = DescriptorOf(media::kOciManifest, "{\"never\":\"pushed\"}");
  for (std::string_view type : {media::kOciIndex, media::kDockerList}) {
    SCOPED_TRACE(type);
    Descriptor present = image.AsDescriptor();
    Descriptor absent = missing;
    if (type == media::kDockerList) {
      present.media_type = absent.media_type = media::kDockerManifest;
    }
    std::string index = BuildIndex({std::string(type), {present, absent}});
    HttpResponse response =
        http().Put(ManifestPath(repo, "broken"), index, {{"Content-Type", std::string(type)}});
    EXPECT_TRUE(IsRegistryError(response, 400, "MANIFEST_BLOB_UNKNOWN"));
  }
  EXPECT_EQ(http().Get(ManifestPath(repo, "broken"), ManifestAccept()).status, 404);
}

TEST_F(ManifestTypesTest, ArtifactManifestWithSubject) {
  std::string repo = NewRepo();
  PushedManifest subject;
  ASSERT_TRUE(PushImage(http(), repo, "app", media::kOciManifest, repo, &subject));
  PushedManifest artifact;
  HttpResponse put;
  ASSERT_TRUE(PushArtifact(http(), repo, "app-sbom", "application/vnd.example.sbom.v1",
                           subject.AsDescriptor(), {{"org.example.kind", "sbom"}}, &artifact,
                           &put));
  EXPECT_EQ(put.Header("OCI-Subject"), subject.digest) << put.Describe();
  ExpectServed(repo, "app-sbom", media::kOciManifest, artifact.body);
  // The empty config is an ordinary blob.
  HttpResponse config = http().Get(BlobPath(repo, EmptyConfigDescriptor().digest));
  ASSERT_EQ(config.status, 200) << config.Describe();
  EXPECT_EQ(config.body, kEmptyJsonBlob);
}

TEST_F(ManifestTypesTest, ArtifactWithMissingSubjectIsAccepted) {
  std::string repo = NewRepo();
  Descriptor ghost = DescriptorOf(media::kOciManifest, "{\"subject\":\"not pushed yet\"}");
  PushedManifest artifact;
  HttpResponse put;
  ASSERT_TRUE(PushArtifact(http(), repo, "sig", "application/vnd.example.signature.v1", ghost, {},
                           &artifact, &put));
  EXPECT_EQ(put.Header("OCI-Subject"), ghost.digest) << put.Describe();
  ExpectServed(repo, "sig", media::kOciManifest, artifact.body);
}

TEST_F(ManifestTypesTest, ArtifactPushedByDigest) {
  // Referrers are usually pushed untagged.
  std::string repo = NewRepo();
  PushedManifest subject;
  ASSERT_TRUE(PushImage(http(), repo, "app", media::kOciManifest, repo, &subject));
  PushedManifest artifact;
  ASSERT_TRUE(PrepareArtifact(http(), repo, "application/vnd.example.sig.v1",
                              subject.AsDescriptor(), {}, &artifact));
  HttpResponse put;
  ASSERT_TRUE(
      PushManifest(http(), repo, artifact.digest, media::kOciManifest, artifact.body, &put));
  EXPECT_EQ(put.Header("OCI-Subject"), subject.digest) << put.Describe();
  HttpResponse get = http().Get(ManifestPath(repo, artifact.digest), ManifestAccept());
  ASSERT_EQ(get.status, 200) << get.Describe();
  EXPECT_EQ(get.body, artifact.body);
}

}  // namespace
}  // namespace regfs::testing
