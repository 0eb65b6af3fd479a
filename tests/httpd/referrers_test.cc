// GET /v2/<name>/referrers/<digest> (OCI Distribution 1.1).
#include <algorithm>

#include "registry_test.h"

namespace regfs::testing {
namespace {

constexpr std::string_view kSbom = "application/vnd.example.sbom.v1";
constexpr std::string_view kSignature = "application/vnd.example.signature.v1";

class ReferrersTest : public RegistryTest {
 protected:
  void SetUp() override {
    RegistryTest::SetUp();
    if (HasFatalFailure()) return;
    repo_ = NewRepo();
    ASSERT_TRUE(PushImage(http(), repo_, "app", media::kOciManifest, repo_, &subject_));
  }

  // GETs the referrers of `digest`; checks the index envelope and returns
  // its descriptors.
  std::vector<Poco::JSON::Object::Ptr> Referrers(const std::string& digest,
                                                 const std::string& query = "",
                                                 HttpResponse* out = nullptr) {
    std::string target = "/v2/" + repo_ + "/referrers/" + digest;
    if (!query.empty()) target += "?" + query;
    HttpResponse response = http().Get(target);
    if (out != nullptr) *out = response;
    EXPECT_EQ(response.status, 200) << response.Describe();
    EXPECT_EQ(response.MediaType(), media::kOciIndex) << response.Describe();
    Poco::JSON::Object::Ptr index = ParseObject(response.body);
    EXPECT_TRUE(index) << response.body;
    std::vector<Poco::JSON::Object::Ptr> descriptors;
    if (!index) return descriptors;
    EXPECT_EQ(index->optValue<int>("schemaVersion", 0), 2) << response.body;
    EXPECT_EQ(index->optValue<std::string>("mediaType", ""), media::kOciIndex) << response.body;
    EXPECT_TRUE(index->isArray("manifests")) << response.body;
    if (!index->isArray("manifests")) return descriptors;
    Poco::JSON::Array::Ptr manifests = index->getArray("manifests");
    for (size_t i = 0; i < manifests->size(); ++i) {
      descriptors.push_back(manifests->getObject(static_cast<unsigned>(i)));
    }
    return descriptors;
  }

  static std::vector<std::string> Digests(const std::vector<Poco::JSON::Object::Ptr>& list) {
    std::vector<std::string> digests;
    for (const auto& descriptor : list) {
      digests.push_back(descriptor ? descriptor->optValue<std::string>("digest", "") : "");
    }
    std::sort(digests.begin(), digests.end());
    return digests;
  }

  static std::vector<std::string> Sorted(std::vector<std::string> values) {
    std::sort(values.begin(), values.end());
    return values;
  }

  // The descriptor for `manifest` matches it field by field.
  static void ExpectDescriptor(const std::vector<Poco::JSON::Object::Ptr>& list,
                               const PushedManifest& manifest, std::string_view artifact_type,
                               const std::map<std::string, std::string>& annotations) {
    SCOPED_TRACE(manifest.digest);
    Poco::JSON::Object::Ptr found;
    for (const auto& descriptor : list) {
      if (descriptor && descriptor->optValue<std::string>("digest", "") == manifest.digest) {
        found = descriptor;
      }
    }
    ASSERT_TRUE(found) << "no descriptor for " << manifest.digest;
    EXPECT_EQ(found->optValue<std::string>("mediaType", ""), manifest.media_type);
    EXPECT_EQ(found->optValue<int64_t>("size", -1), static_cast<int64_t>(manifest.body.size()));
    EXPECT_EQ(found->optValue<std::string>("artifactType", ""), artifact_type);
    std::map<std::string, std::string> got;
    if (Poco::JSON::Object::Ptr object = found->getObject("annotations")) {
      for (const auto& [key, value] : *object) got[key] = value.toString();
    }
    EXPECT_EQ(got, annotations);
  }

  std::string repo_;
  PushedManifest subject_;
};

TEST_F(ReferrersTest, ListsEveryReferrerWithDescriptors) {
  std::map<std::string, std::string> sbom_annotations = {
      {"org.opencontainers.image.created", "2024-01-02T03:04:05Z"}, {"org.example.kind", "sbom"}};
  PushedManifest sbom, signature;
  ASSERT_TRUE(
      PushArtifact(http(), repo_, "sbom", kSbom, subject_.AsDescriptor(), sbom_annotations, &sbom));
  // Referrers are usually untagged: push the signature by digest.
  ASSERT_TRUE(PrepareArtifact(http(), repo_, kSignature, subject_.AsDescriptor(), {}, &signature));
  ASSERT_TRUE(PushManifest(http(), repo_, signature.digest, media::kOciManifest, signature.body));

  // Noise: an unrelated image, an artifact about another subject, and one
  // about the same subject in another repository.
  PushedManifest other;
  ASSERT_TRUE(PushImage(http(), repo_, "other", media::kOciManifest, repo_ + "o", &other));
  ASSERT_TRUE(PushArtifact(http(), repo_, "other-sbom", kSbom, other.AsDescriptor(), {}, nullptr));
  std::string elsewhere = NewRepo("elsewhere");
  ASSERT_TRUE(PushArtifact(http(), elsewhere, "sbom", kSbom, subject_.AsDescriptor(), {}, nullptr));

  std::vector<Poco::JSON::Object::Ptr> list = Referrers(subject_.digest);
  EXPECT_EQ(Digests(list), Sorted({sbom.digest, signature.digest}));
  ExpectDescriptor(list, sbom, kSbom, sbom_annotations);
  ExpectDescriptor(list, signature, kSignature, {});
}

TEST_F(ReferrersTest, ArtifactTypeFilter) {
  PushedManifest sbom, signature;
  ASSERT_TRUE(PushArtifact(http(), repo_, "sbom", kSbom, subject_.AsDescriptor(), {}, &sbom));
  ASSERT_TRUE(
      PushArtifact(http(), repo_, "sig", kSignature, subject_.AsDescriptor(), {}, &signature));

  HttpResponse response;
  std::vector<Poco::JSON::Object::Ptr> list =
      Referrers(subject_.digest, "artifactType=" + QueryEscape(kSbom), &response);
  EXPECT_EQ(Digests(list), std::vector<std::string>{sbom.digest});
  EXPECT_EQ(response.Header("OCI-Filters-Applied"), "artifactType") << response.Describe();

  list = Referrers(subject_.digest, "artifactType=" + QueryEscape("application/vnd.example.none"),
                   &response);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(response.Header("OCI-Filters-Applied"), "artifactType") << response.Describe();
}

TEST_F(ReferrersTest, SubjectWithoutReferrersGivesEmptyIndex) {
  EXPECT_TRUE(Referrers(subject_.digest).empty());
  // Also for a digest nothing in the repository refers to or is.
  EXPECT_TRUE(Referrers(Sha256Digest("unknown subject")).empty());
}

TEST_F(ReferrersTest, ArtifactTypeDefaultsToConfigMediaType) {
  const std::string config_type = "application/vnd.example.config.v1+json";
  std::string config = "{\"example\":true}";
  std::string layer = "referrer without artifactType";
  ASSERT_TRUE(PushBlob(http(), repo_, config));
  ASSERT_TRUE(PushBlob(http(), repo_, layer));
  ManifestSpec spec;
  spec.media_type = media::kOciManifest;
  spec.config = DescriptorOf(config_type, config);
  spec.layers = {DescriptorOf(media::kOciLayer, layer)};
  spec.subject = subject_.AsDescriptor();
  PushedManifest manifest{std::string(media::kOciManifest), BuildImageManifest(spec), ""};
  manifest.digest = Sha256Digest(manifest.body);
  ASSERT_TRUE(PushManifest(http(), repo_, "plain", media::kOciManifest, manifest.body));

  std::vector<Poco::JSON::Object::Ptr> list = Referrers(subject_.digest);
  ExpectDescriptor(list, manifest, config_type, {});
  list = Referrers(subject_.digest, "artifactType=" + QueryEscape(config_type));
  EXPECT_EQ(Digests(list), std::vector<std::string>{manifest.digest});
}

TEST_F(ReferrersTest, IndexWithSubjectIsReferrer) {
  PushedManifest child;
  ASSERT_TRUE(PushImage(http(), repo_, "child", media::kOciManifest, repo_ + "c", &child));
  const std::string bundle_type = "application/vnd.example.bundle.v1";
  IndexSpec spec;
  spec.media_type = media::kOciIndex;
  spec.artifact_type = bundle_type;
  spec.manifests = {child.AsDescriptor()};
  spec.subject = subject_.AsDescriptor();
  PushedManifest index{std::string(media::kOciIndex), BuildIndex(spec), ""};
  index.digest = Sha256Digest(index.body);
  HttpResponse put;
  ASSERT_TRUE(PushManifest(http(), repo_, "bundle", media::kOciIndex, index.body, &put));
  EXPECT_EQ(put.Header("OCI-Subject"), subject_.digest) << put.Describe();

  ExpectDescriptor(Referrers(subject_.digest), index, bundle_type, {});
}

TEST_F(ReferrersTest, ReferrersOfSubjectNotPushedYet) {
  Descriptor ghost = DescriptorOf(media::kOciManifest, "{\"ghost\":true}");
  PushedManifest artifact;
  ASSERT_TRUE(PushArtifact(http(), repo_, "early", kSignature, ghost, {}, &artifact));
  EXPECT_EQ(Digests(Referrers(ghost.digest)), std::vector<std::string>{artifact.digest});
}

TEST_F(ReferrersTest, DeletedReferrerIsNotListed) {
  PushedManifest kept, deleted;
  ASSERT_TRUE(PushArtifact(http(), repo_, "kept", kSbom, subject_.AsDescriptor(), {}, &kept));
  ASSERT_TRUE(
      PushArtifact(http(), repo_, "deleted", kSignature, subject_.AsDescriptor(), {}, &deleted));
  ASSERT_EQ(http().Delete(ManifestPath(repo_, deleted.digest)).status, 202);
  EXPECT_EQ(Digests(Referrers(subject_.digest)), std::vector<std::string>{kept.digest});
}

TEST_F(ReferrersTest, MalformedDigestIsBadRequest) {
  HttpResponse response = http().Get("/v2/" + repo_ + "/referrers/sha256:xyz");
  EXPECT_EQ(response.status, 400) << response.Describe();
}

}  // namespace
}  // namespace regfs::testing
