// The push sequences shared by the test files.
#include <atomic>

#include "registry_helpers.h"

namespace regfs::testing {

std::string BlobPath(std::string_view repo, std::string_view digest) {
  return "/v2/" + std::string(repo) + "/blobs/" + std::string(digest);
}

std::string ManifestPath(std::string_view repo, std::string_view reference) {
  return "/v2/" + std::string(repo) + "/manifests/" + std::string(reference);
}

std::string UploadsPath(std::string_view repo) {
  return "/v2/" + std::string(repo) + "/blobs/uploads/";
}

::testing::AssertionResult PushBlob(const HttpClient& http, std::string_view repo,
                                    std::string_view content) {
  HttpResponse start = http.Post(UploadsPath(repo));
  if (start.status != 202 || start.Header("Location").empty()) {
    return ::testing::AssertionFailure()
           << "POST " << UploadsPath(repo) << " should give 202 + Location\n"
           << start.Describe();
  }
  std::string digest = Sha256Digest(content);
  std::string target =
      AppendQuery(ResolveLocation(start.Header("Location"), UploadsPath(repo)), "digest=" + digest);
  HttpResponse put =
      http.Put(target, std::string(content), {{"Content-Type", "application/octet-stream"}});
  if (put.status != 201) {
    return ::testing::AssertionFailure() << "PUT " << target << " should give 201\n"
                                         << put.Describe();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PushManifest(const HttpClient& http, std::string_view repo,
                                        std::string_view reference, std::string_view media_type,
                                        const std::string& body, HttpResponse* response) {
  HttpResponse put =
      http.Put(ManifestPath(repo, reference), body, {{"Content-Type", std::string(media_type)}});
  if (response != nullptr) *response = put;
  if (put.status != 201) {
    return ::testing::AssertionFailure()
           << "PUT " << ManifestPath(repo, reference) << " should give 201\n"
           << put.Describe() << "\nmanifest: " << body.substr(0, 2000);
  }
  if (put.Header("Docker-Content-Digest") != Sha256Digest(body)) {
    return ::testing::AssertionFailure()
           << "Docker-Content-Digest should be " << Sha256Digest(body) << "\n"
           << put.Describe();
  }
  return ::testing::AssertionSuccess();
}

Descriptor PushedManifest::AsDescriptor() const { return DescriptorOf(media_type, body); }

::testing::AssertionResult PushImage(const HttpClient& http, std::string_view repo,
                                     std::string_view reference, std::string_view media_type,
                                     std::string_view seed, PushedManifest* out) {
  bool docker = media_type == media::kDockerManifest;
  std::string config =
      "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
      "\"diff_ids\":[]},\"comment\":" +
      JsonQuote(seed) + "}";
  std::string layer = RandomBytes(1024, std::string("layer:") + std::string(seed));
  if (auto pushed = PushBlob(http, repo, config); !pushed) return pushed;
  if (auto pushed = PushBlob(http, repo, layer); !pushed) return pushed;

  ManifestSpec spec;
  spec.media_type = media_type;
  spec.config = DescriptorOf(docker ? media::kDockerConfig : media::kOciConfig, config);
  spec.layers = {DescriptorOf(docker ? media::kDockerLayer : media::kOciLayer, layer)};
  PushedManifest manifest{std::string(media_type), BuildImageManifest(spec), ""};
  manifest.digest = Sha256Digest(manifest.body);
  if (auto pushed = PushManifest(http, repo, reference, media_type, manifest.body); !pushed) {
    return pushed;
  }
  if (out != nullptr) *out = std::move(manifest);
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PrepareArtifact(const HttpClient& http, std::string_view repo,
                                           std::string_view artifact_type,
                                           const Descriptor& subject,
                                           const std::map<std::string, std::string>& annotations,
                                           PushedManifest* out) {
  // A counter keeps artifacts distinct even with equal type and subject.
  static std::atomic<int> counter{0};
  std::string payload = "artifact payload #" + std::to_string(++counter) + " " +
                        std::string(artifact_type) + " for " + subject.digest;
  if (auto pushed = PushBlob(http, repo, kEmptyJsonBlob); !pushed) return pushed;
  if (auto pushed = PushBlob(http, repo, payload); !pushed) return pushed;

  ManifestSpec spec;
  spec.media_type = media::kOciManifest;
  spec.artifact_type = artifact_type;
  spec.config = EmptyConfigDescriptor();
  spec.layers = {DescriptorOf("application/vnd.example.payload.v1", payload)};
  spec.subject = subject;
  spec.annotations = annotations;
  out->media_type = media::kOciManifest;
  out->body = BuildImageManifest(spec);
  out->digest = Sha256Digest(out->body);
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PushArtifact(const HttpClient& http, std::string_view repo,
                                        std::string_view reference, std::string_view artifact_type,
                                        const Descriptor& subject,
                                        const std::map<std::string, std::string>& annotations,
                                        PushedManifest* out, HttpResponse* put_response) {
  PushedManifest manifest;
  if (auto prepared = PrepareArtifact(http, repo, artifact_type, subject, annotations, &manifest);
      !prepared) {
    return prepared;
  }
  if (auto pushed =
          PushManifest(http, repo, reference, media::kOciManifest, manifest.body, put_response);
      !pushed) {
    return pushed;
  }
  if (out != nullptr) *out = std::move(manifest);
  return ::testing::AssertionSuccess();
}

}  // namespace regfs::testing
