// Parsing and validating the manifest formats a registry accepts.
//
// Supported media types: Docker image manifest v2 (schema2), Docker manifest list, OCI image
// manifest (including artifacts: artifactType, subject), OCI image index, and the OCI
// artifact manifest of the 1.1 release candidates. Parsing is pure: no storage access; the
// registry checks that referenced blobs and child manifests exist.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "regfs/core/digest.h"
#include "regfs/core/status.h"

namespace regfs {

namespace media_types {
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciArtifact = "application/vnd.oci.artifact.manifest.v1+json";
}  // namespace media_types

// Manifests larger than this are refused (the spec's recommended minimum limit).
inline constexpr size_t kMaxManifestBytes = 4 * 1024 * 1024;

struct Descriptor {
  std::string media_type;
  Digest digest = Digest::Sha256Of("");
  int64_t size = 0;
  std::string artifact_type;
  std::map<std::string, std::string> annotations;
  bool has_urls = false;  // a "foreign" layer fetched from elsewhere; not required locally
};

struct ParsedManifest {
  std::string media_type;            // the effective media type served as Content-Type
  bool is_index = false;             // children are manifests (index / list), not blobs
  std::vector<Descriptor> blobs;     // config and layers (or artifact blobs)
  std::vector<Descriptor> children;  // child manifests of an index
  std::optional<Digest> subject;
  std::string artifact_type;  // artifactType, else the config's media type (for referrers)
  std::map<std::string, std::string> annotations;
};

// Parses manifest bytes. `content_type` is the type the client declared (may be empty or a
// generic JSON type). Fails with InvalidArgument / kManifestInvalid (with a message a client
// can act on), or kDigestInvalid for malformed descriptor digests.
Result<ParsedManifest> ParseManifest(std::string_view bytes, std::string_view content_type);

// True for the media types ParseManifest understands.
bool IsManifestMediaType(std::string_view media_type);

}  // namespace regfs
