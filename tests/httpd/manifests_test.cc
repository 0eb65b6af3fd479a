// PUT / GET / HEAD / DELETE on /v2/<name>/manifests/<reference>, by tag and
// by digest, and the manifest validation errors. The individual manifest
// media types are covered in manifest_types_test.cc.
#include "registry_test.h"

namespace regfs::testing {
namespace {

class ManifestsTest : public RegistryTest {
 protected:
  void SetUp() override {
    RegistryTest::SetUp();
    if (HasFatalFailure()) return;
    repo_ = NewRepo();
    config_ = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"repo\":" + JsonQuote(repo_) + "}";
    layer_ = RandomBytes(2048, repo_);
    ASSERT_TRUE(PushBlob(http(), repo_, config_));
    ASSERT_TRUE(PushBlob(http(), repo_, layer_));
  }

  // An OCI image manifest over the pushed blobs; `note` makes it unique.
  std::string Manifest(const std::string& note = "") {
    ManifestSpec spec;
    spec.media_type = media::kOciManifest;
    spec.config = DescriptorOf(media::kOciConfig, config_);
    spec.layers = {DescriptorOf(media::kOciLayer, layer_)};
    if (!note.empty()) spec.annotations = {{"note", note}};
    return BuildImageManifest(spec);
  }

  HttpResponse Put(const std::string& reference, const std::string& body,
                   std::string_view media_type = media::kOciManifest) {
    return http().Put(ManifestPath(repo_, reference), body,
                      {{"Content-Type", std::string(media_type)}});
  }

  HttpResponse Get(const std::string& reference) {
    return http().Get(ManifestPath(repo_, reference), ManifestAccept());
  }

  std::optional<std::vector<std::string>> Tags() {
    HttpResponse response = http().Get("/v2/" + repo_ + "/tags/list");
    if (response.status != 200) return std::nullopt;
    return StringArray(ParseObject(response.body), "tags");
  }

  std::string repo_;
  std::string config_;
  std::string layer_;
};

TEST_F(ManifestsTest, PutByTagReturnsLocationAndDigest) {
  std::string body = Manifest();
  std::string digest = Sha256Digest(body);
  HttpResponse response = Put("v1", body);
  ASSERT_EQ(response.status, 201) << response.Describe();
  EXPECT_EQ(LocationPath(response.Header("Location")), ManifestPath(repo_, digest));
  EXPECT_EQ(response.Header("Docker-Content-Digest"), digest);
}

TEST_F(ManifestsTest, GetByTagAndDigestReturnsExactBytes) {
  // Unusual but valid formatting: the registry must store bytes, not a
  // re-serialisation, or the digest would change.
  std::string body = "{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"" +
                     std::string(media::kOciManifest) +
                     "\",\n   \"config\": " + DescriptorOf(media::kOciConfig, config_).ToJson() +
                     ",\n   \"layers\": [ " + DescriptorOf(media::kOciLayer, layer_).ToJson() +
                     " ],\n   \"annotations\": {\"z\": \"1\", \"a\": \"2\"}\n}\n";
  std::string digest = Sha256Digest(body);
  ASSERT_TRUE(PushManifest(http(), repo_, "pretty", media::kOciManifest, body));
  for (const std::string& reference : {std::string("pretty"), digest}) {
    SCOPED_TRACE(reference);
    HttpResponse response = Get(reference);
    ASSERT_EQ(response.status, 200) << response.Describe();
    EXPECT_EQ(response.MediaType(), media::kOciManifest);
    EXPECT_EQ(response.Header("Docker-Content-Digest"), digest);
    EXPECT_EQ(response.Header("Content-Length"), std::to_string(body.size()));
    EXPECT_EQ(response.body, body);
  }
}

TEST_F(ManifestsTest, HeadByTagAndDigest) {
  std::string body = Manifest();
  std::string digest = Sha256Digest(body);
  ASSERT_TRUE(PushManifest(http(), repo_, "head", media::kOciManifest, body));
  for (const std::string& reference : {std::string("head"), digest}) {
    SCOPED_TRACE(reference);
    HttpResponse response = http().Head(ManifestPath(repo_, reference), ManifestAccept());
    ASSERT_EQ(response.status, 200) << response.Describe();
    EXPECT_EQ(response.MediaType(), media::kOciManifest);
    EXPECT_EQ(response.Header("Docker-Content-Digest"), digest);
    EXPECT_EQ(response.Header("Content-Length"), std::to_string(body.size()));
    EXPECT_TRUE(response.body.empty());
  }
}

TEST_F(ManifestsTest, PutByDigest) {
  std::string body = Manifest("by digest");
  std::string digest = Sha256Digest(body);
  HttpResponse response = Put(digest, body);
  ASSERT_EQ(response.status, 201) << response.Describe();
  EXPECT_EQ(LocationPath(response.Header("Location")), ManifestPath(repo_, digest));
  EXPECT_EQ(response.Header("Docker-Content-Digest"), digest);
  HttpResponse get = Get(digest);
  ASSERT_EQ(get.status, 200) << get.Describe();
  EXPECT_EQ(get.body, body);
}

TEST_F(ManifestsTest, PutByWrongDigestIsDigestInvalid) {
  std::string body = Manifest("wrong digest");
  std::string claimed = Sha256Digest(body + " ");
  EXPECT_TRUE(IsRegistryError(Put(claimed, body), 400, "DIGEST_INVALID"));
  EXPECT_EQ(http().Head(ManifestPath(repo_, claimed), ManifestAccept()).status, 404);
  EXPECT_EQ(http().Head(ManifestPath(repo_, Sha256Digest(body)), ManifestAccept()).status, 404);
}

TEST_F(ManifestsTest, RetaggingMovesTag) {
  std::string first = Manifest("first");
  std::string second = Manifest("second");
  ASSERT_TRUE(PushManifest(http(), repo_, "moving", media::kOciManifest, first));
  ASSERT_TRUE(PushManifest(http(), repo_, "moving", media::kOciManifest, second));
  HttpResponse response = Get("moving");
  ASSERT_EQ(response.status, 200) << response.Describe();
  EXPECT_EQ(response.body, second);
  // The first manifest is still there by digest.
  EXPECT_EQ(Get(Sha256Digest(first)).status, 200);
}

TEST_F(ManifestsTest, UnknownManifestIsManifestUnknown) {
  ASSERT_TRUE(PushManifest(http(), repo_, "exists", media::kOciManifest, Manifest()));
  for (const std::string& reference :
       {std::string("nosuchtag"), Sha256Digest("no such manifest")}) {
    SCOPED_TRACE(reference);
    EXPECT_TRUE(IsRegistryError(Get(reference), 404, "MANIFEST_UNKNOWN"));
    EXPECT_EQ(http().Head(ManifestPath(repo_, reference), ManifestAccept()).status, 404);
  }
}

// A reference that is neither a valid tag nor a valid digest names no manifest: lookups say
// 404 MANIFEST_UNKNOWN (the OCI conformance suite asks for `.INVALID_MANIFEST_NAME`), while
// creating a manifest under it is the client's mistake (400). Nothing outside the repository
// is ever reached.
const std::vector<std::string>& UnparsableReferences() {
  static const std::vector<std::string> references = {
      ".INVALID_MANIFEST_NAME", "-lead", "a+b",  "sha256:xyz", "md5:abc",
      "sha256:" + std::string(63, 'a'), "..",    "a:b",        std::string(129, 'a')};
  return references;
}

TEST_F(ManifestsTest, UnparsableReferenceIsUnknownOnLookup) {
  for (const std::string& reference : UnparsableReferences()) {
    SCOPED_TRACE(reference);
    EXPECT_TRUE(IsRegistryError(Get(reference), 404, "MANIFEST_UNKNOWN"));
    EXPECT_EQ(http().Head(ManifestPath(repo_, reference), ManifestAccept()).status, 404);
    EXPECT_TRUE(IsRegistryError(http().Delete(ManifestPath(repo_, reference)), 404,
                                "MANIFEST_UNKNOWN"));
  }
}

TEST_F(ManifestsTest, UnparsableReferenceIsRefusedOnPut) {
  for (const std::string& reference : UnparsableReferences()) {
    SCOPED_TRACE(reference);
    EXPECT_TRUE(IsRegistryErrorOneOf(Put(reference, Manifest()), 400,
                                     {"DIGEST_INVALID", "TAG_INVALID"}));
  }
}

TEST_F(ManifestsTest, OverlongReferenceIsInvalidOnLookup) {
  std::string tag(136, 'a');  // past the longest digest (sha512: 135)
  EXPECT_TRUE(IsRegistryError(Get(tag), 400, "TAG_INVALID"));
  std::string digest = "sha256:" + std::string(129, 'a');
  EXPECT_TRUE(IsRegistryError(Get(digest), 400, "DIGEST_INVALID"));
}

TEST_F(ManifestsTest, TraversalInReferenceReachesNothing) {
  ASSERT_TRUE(PushManifest(http(), repo_, "exists", media::kOciManifest, Manifest()));
  // Percent-encoded slashes are decoded before routing: the reference becomes path
  // segments of a different route, or an unparsable one; never a file outside the repository.
  for (const std::string& reference :
       {std::string("..%2F..%2F_manifests%2Ftags%2Fexists"), std::string("%2E%2E"),
        std::string("exists%00")}) {
    SCOPED_TRACE(reference);
    HttpResponse response = http().Get("/v2/" + repo_ + "/manifests/" + reference,
                                       ManifestAccept());
    EXPECT_TRUE(response.status == 404 || response.status == 400) << response.Describe();
  }
}

TEST_F(ManifestsTest, InvalidJsonIsManifestInvalid) {
  for (const std::string& body :
       {std::string("{not json"), std::string(""), std::string("[]"), std::string("\"str\"")}) {
    SCOPED_TRACE(body);
    EXPECT_TRUE(IsRegistryError(Put("bad", body), 400, "MANIFEST_INVALID"));
  }
  EXPECT_EQ(Get("bad").status, 404);
}

TEST_F(ManifestsTest, MissingLayerIsManifestBlobUnknown) {
  ManifestSpec spec;
  spec.media_type = media::kOciManifest;
  spec.config = DescriptorOf(media::kOciConfig, config_);
  spec.layers = {DescriptorOf(media::kOciLayer, "layer that was never pushed")};
  EXPECT_TRUE(IsRegistryError(Put("missing-layer", BuildImageManifest(spec)), 400,
                              "MANIFEST_BLOB_UNKNOWN"));
  EXPECT_EQ(Get("missing-layer").status, 404);
}

TEST_F(ManifestsTest, MissingConfigIsManifestBlobUnknown) {
  ManifestSpec spec;
  spec.media_type = media::kOciManifest;
  spec.config = DescriptorOf(media::kOciConfig, "{\"config\":\"never pushed\"}");
  spec.layers = {DescriptorOf(media::kOciLayer, layer_)};
  EXPECT_TRUE(IsRegistryError(Put("missing-config", BuildImageManifest(spec)), 400,
                              "MANIFEST_BLOB_UNKNOWN"));
}

TEST_F(ManifestsTest, OversizedManifestIsPayloadTooLarge) {
  // Valid JSON just over the 4 MiB limit.
  std::string padding(4 * 1024 * 1024, 'p');
  std::string body = Manifest(padding);
  ASSERT_GT(body.size(), 4u * 1024 * 1024);
  HttpResponse response = Put("huge", body);
  EXPECT_EQ(response.status, 413) << response.Describe();
  EXPECT_EQ(Get("huge").status, 404);
}

TEST_F(ManifestsTest, ManifestJustUnderLimitIsAccepted) {
  std::string body = Manifest("");
  // Pad an annotation so the whole body is a little under 4 MiB.
  std::string padding(4 * 1024 * 1024 - body.size() - 1024, 'p');
  body = Manifest(padding);
  ASSERT_LT(body.size(), 4u * 1024 * 1024);
  ASSERT_TRUE(PushManifest(http(), repo_, "big", media::kOciManifest, body));
  HttpResponse response = Get("big");
  ASSERT_EQ(response.status, 200) << response.Describe();
  EXPECT_TRUE(response.body == body);
}

TEST_F(ManifestsTest, InvalidTagIsTagInvalid) {
  std::string body = Manifest();
  for (const std::string& tag :
       {std::string("-bad"), std::string(".bad"), std::string(129, 'a'), std::string("a+b")}) {
    SCOPED_TRACE(tag);
    EXPECT_TRUE(IsRegistryError(Put(tag, body), 400, "TAG_INVALID"));
  }
}

TEST_F(ManifestsTest, LongestValidTagIsAccepted) {
  std::string tag = "_" + std::string(126, 'a') + "Z";  // 128 characters
  ASSERT_TRUE(PushManifest(http(), repo_, tag, media::kOciManifest, Manifest()));
  EXPECT_EQ(Get(tag).status, 200);
}

TEST_F(ManifestsTest, DeleteByDigestRemovesManifestAndItsTags) {
  std::string doomed = Manifest("doomed");
  std::string kept = Manifest("kept");
  std::string digest = Sha256Digest(doomed);
  ASSERT_TRUE(PushManifest(http(), repo_, "one", media::kOciManifest, doomed));
  ASSERT_TRUE(PushManifest(http(), repo_, "two", media::kOciManifest, doomed));
  ASSERT_TRUE(PushManifest(http(), repo_, "keep", media::kOciManifest, kept));

  HttpResponse response = http().Delete(ManifestPath(repo_, digest));
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_TRUE(IsRegistryError(Get(digest), 404, "MANIFEST_UNKNOWN"));
  EXPECT_EQ(Get("one").status, 404);
  EXPECT_EQ(Get("two").status, 404);
  EXPECT_EQ(Get("keep").status, 200);
  EXPECT_EQ(Tags(), std::vector<std::string>{"keep"});
}

TEST_F(ManifestsTest, DeleteByTagRemovesOnlyThatTag) {
  std::string body = Manifest("shared");
  std::string digest = Sha256Digest(body);
  ASSERT_TRUE(PushManifest(http(), repo_, "a", media::kOciManifest, body));
  ASSERT_TRUE(PushManifest(http(), repo_, "b", media::kOciManifest, body));

  HttpResponse response = http().Delete(ManifestPath(repo_, "a"));
  ASSERT_EQ(response.status, 202) << response.Describe();
  EXPECT_TRUE(IsRegistryError(Get("a"), 404, "MANIFEST_UNKNOWN"));
  EXPECT_EQ(Get("b").status, 200);
  EXPECT_EQ(Get(digest).status, 200);
  EXPECT_EQ(Tags(), std::vector<std::string>{"b"});
}

TEST_F(ManifestsTest, DeleteUnknownManifestIsManifestUnknown) {
  ASSERT_TRUE(PushManifest(http(), repo_, "exists", media::kOciManifest, Manifest()));
  HttpResponse response = http().Delete(ManifestPath(repo_, Sha256Digest("not stored")));
  EXPECT_TRUE(IsRegistryError(response, 404, "MANIFEST_UNKNOWN"));
}

}  // namespace
}  // namespace regfs::testing
