#include "regfs/core/manifest.h"

#include <gtest/gtest.h>

namespace regfs {
namespace {

const std::string kConfig = "sha256:" + std::string(64, 'c');
const std::string kLayer = "sha256:" + std::string(64, 'd');
const std::string kSubject = "sha256:" + std::string(64, 'e');

std::string OciManifest(const std::string& extra = "") {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
         kConfig +
         R"(","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
         kLayer + R"(","size":5}])" + extra + "}";
}

TEST(ManifestTest, ParsesOciImageManifest) {
  auto m = ParseManifest(OciManifest(), "application/vnd.oci.image.manifest.v1+json");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->media_type, media_types::kOciManifest);
  ASSERT_EQ(m->blobs.size(), 2u);
  EXPECT_EQ(m->blobs[0].digest.ToString(), kConfig);
  EXPECT_EQ(m->blobs[1].size, 5);
  EXPECT_FALSE(m->is_index);
  EXPECT_EQ(m->artifact_type, "application/vnd.oci.image.config.v1+json");
}

TEST(ManifestTest, ParsesArtifactWithSubject) {
  auto m = ParseManifest(
      OciManifest(
          R"(,"artifactType":"application/x.sig","subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
          kSubject + R"(","size":10},"annotations":{"k":"v"})"),
      "");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(m->subject.has_value());
  EXPECT_EQ(m->subject->ToString(), kSubject);
  EXPECT_EQ(m->artifact_type, "application/x.sig");
  EXPECT_EQ(m->annotations.at("k"), "v");
}

TEST(ManifestTest, ParsesIndexAndInfersMediaType) {
  std::string index =
      R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
      kSubject + R"(","size":10,"platform":{"os":"linux","architecture":"amd64"}}]})";
  auto m = ParseManifest(index, "");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(m->is_index);
  EXPECT_EQ(m->media_type, media_types::kOciIndex);
  ASSERT_EQ(m->children.size(), 1u);
}

TEST(ManifestTest, ContentTypeMustMatchDeclaredMediaType) {
  auto m = ParseManifest(OciManifest(), "application/vnd.docker.distribution.manifest.v2+json");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().reason(), Status::Reason::kManifestInvalid);
}

TEST(ManifestTest, RejectsBadInput) {
  for (const std::string& bad :
       {std::string("not json"), std::string("[]"), std::string("{}"),
        std::string(R"({"schemaVersion":1,"name":"x"})"),
        std::string(
            R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})"),
        std::string(R"({"schemaVersion":2,"mediaType":"text/plain","config":{}})"),
        std::string(R"({"schemaVersion":2,"config":{"digest":"sha256:abc","size":1},"layers":[]})"),
        std::string(R"({"schemaVersion":2,"config":{"digest":")") + kConfig +
            R"(","size":-1},"layers":[]})"}) {
    auto m = ParseManifest(bad, "");
    EXPECT_FALSE(m.ok()) << bad;
  }
  std::string huge(kMaxManifestBytes + 1, ' ');
  auto m = ParseManifest(huge, "");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().reason(), Status::Reason::kManifestTooLarge);
}

}  // namespace
}  // namespace regfs
