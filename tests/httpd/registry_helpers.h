// Content helpers for the API tests: digests, manifest JSON, error parsing
// and the common push sequences.
#ifndef REGFS_TESTS_HTTPD_REGISTRY_HELPERS_H_
#define REGFS_TESTS_HTTPD_REGISTRY_HELPERS_H_

#include <Poco/JSON/Object.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http_client.h"

namespace regfs::testing {

namespace media {
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayer =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciEmpty = "application/vnd.oci.empty.v1+json";
}  // namespace media

// The OCI "empty" blob: the two bytes "{}".
inline constexpr std::string_view kEmptyJsonBlob = "{}";

// Accept header value listing every manifest type the tests use; real
// clients send one like it, and some registries only serve what is accepted.
std::string ManifestAcceptHeader();
HeaderList ManifestAccept();

std::string Sha256Hex(std::string_view data);
// "sha256:<hex>"
std::string Sha256Digest(std::string_view data);
// Deterministic pseudo-random bytes: different seeds give different blobs.
std::string RandomBytes(size_t size, std::string_view seed);

// ---- JSON writing: raw strings, so that the exact bytes are under control.
std::string JsonQuote(std::string_view text);
std::string JsonStringArray(const std::vector<std::string>& values);

struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  std::string artifact_type;                       // omitted when empty
  std::map<std::string, std::string> annotations;  // omitted when empty
  std::string platform_json;                       // raw JSON, omitted when empty
  std::string ToJson() const;
};
Descriptor DescriptorOf(std::string_view media_type, std::string_view content);
Descriptor EmptyConfigDescriptor();

struct ManifestSpec {
  std::string media_type;  // the "mediaType" field; omitted when empty
  Descriptor config;
  std::vector<Descriptor> layers;
  std::string artifact_type;  // omitted when empty
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;
};
std::string BuildImageManifest(const ManifestSpec& spec);

struct IndexSpec {
  std::string media_type;
  std::vector<Descriptor> manifests;
  std::string artifact_type;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;
};
std::string BuildIndex(const IndexSpec& spec);

// ---- JSON reading.
// The parsed object, or null if `text` is not a JSON object.
Poco::JSON::Object::Ptr ParseObject(const std::string& text);
// The strings of array `key` of `object`; nullopt if absent or not strings.
std::optional<std::vector<std::string>> StringArray(const Poco::JSON::Object::Ptr& object,
                                                    const std::string& key);
// Codes of a registry error body, in order; empty if the body is not one.
std::vector<std::string> ErrorCodes(const HttpResponse& response);

// Status `status`, Content-Type application/json and a well-formed
// {"errors":[{"code","message",...}]} body containing `code`.
::testing::AssertionResult IsRegistryError(const HttpResponse& response, int status,
                                           std::string_view code);
// As IsRegistryError, but any of `codes` is accepted.
::testing::AssertionResult IsRegistryErrorOneOf(const HttpResponse& response, int status,
                                                const std::vector<std::string>& codes);

// A `Link` header's target ("/v2/...?..."), nullopt unless it is rel="next".
std::optional<std::string> NextLink(const HttpResponse& response);
// Percent-encodes everything but RFC 3986 unreserved characters, for
// query values ("+" in a media type would otherwise decode as a space).
std::string QueryEscape(std::string_view value);
// Query parameters of a target, decoded.
std::map<std::string, std::string> QueryParams(std::string_view target);

// ---- Push sequences. Each returns failure with the offending response.
// POST + PUT ?digest with the whole body.
::testing::AssertionResult PushBlob(const HttpClient& http, std::string_view repo,
                                    std::string_view content);
// PUT /v2/<repo>/manifests/<reference>; expects 201 and a matching
// Docker-Content-Digest. `response` (optional) receives the PUT response.
::testing::AssertionResult PushManifest(const HttpClient& http, std::string_view repo,
                                        std::string_view reference, std::string_view media_type,
                                        const std::string& body, HttpResponse* response = nullptr);

struct PushedManifest {
  std::string media_type;
  std::string body;
  std::string digest;
  Descriptor AsDescriptor() const;
};

// Pushes a config and a layer blob derived from `seed`, then an image
// manifest (Docker schema 2 or OCI, per `media_type`) under `reference`.
::testing::AssertionResult PushImage(const HttpClient& http, std::string_view repo,
                                     std::string_view reference, std::string_view media_type,
                                     std::string_view seed, PushedManifest* out);

// Pushes the empty config and a fresh payload blob to `repo` and builds
// (without pushing) an OCI artifact manifest with `artifact_type` and
// `subject` into `out`.
::testing::AssertionResult PrepareArtifact(const HttpClient& http, std::string_view repo,
                                           std::string_view artifact_type,
                                           const Descriptor& subject,
                                           const std::map<std::string, std::string>& annotations,
                                           PushedManifest* out);

// PrepareArtifact, then PUT the manifest under `reference`.
::testing::AssertionResult PushArtifact(const HttpClient& http, std::string_view repo,
                                        std::string_view reference, std::string_view artifact_type,
                                        const Descriptor& subject,
                                        const std::map<std::string, std::string>& annotations,
                                        PushedManifest* out, HttpResponse* put_response = nullptr);

std::string BlobPath(std::string_view repo, std::string_view digest);
std::string ManifestPath(std::string_view repo, std::string_view reference);
std::string UploadsPath(std::string_view repo);

}  // namespace regfs::testing

#endif  // REGFS_TESTS_HTTPD_REGISTRY_HELPERS_H_
