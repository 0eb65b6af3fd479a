// Where each registry object lives in storage: the on-disk layout of CNCF Distribution
// (registry:2), byte for byte, so a data directory can move between the two.
//
//   docker/registry/v2/blobs/<alg>/<hex[0:2]>/<hex>/data
//   docker/registry/v2/repositories/<name>/_layers/<alg>/<hex>/link
//   docker/registry/v2/repositories/<name>/_layers/<alg>/<hex>/unlinked   (regfs, see below)
//   docker/registry/v2/repositories/<name>/_manifests/revisions/<alg>/<hex>/link
//   docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
//   docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link
//   docker/registry/v2/repositories/<name>/_uploads/<id>/{data,startedat,hashstates/...}
//
// Link files hold the digest string with no trailing newline. All functions REQUIRE
// validated names, tags, digests and upload ids: they only concatenate.
#pragma once

#include <string>

#include "regfs/core/digest.h"

namespace regfs::layout {

inline constexpr const char* kRoot = "docker/registry/v2";

inline std::string RepositoriesRoot() { return std::string(kRoot) + "/repositories"; }
inline std::string Repository(const std::string& repo) { return RepositoriesRoot() + "/" + repo; }

inline std::string BlobData(const Digest& d) {
  return std::string(kRoot) + "/blobs/" + d.algorithm() + "/" + d.hex().substr(0, 2) + "/" +
         d.hex() + "/data";
}

inline std::string LayersDir(const std::string& repo) { return Repository(repo) + "/_layers"; }
inline std::string LayerLink(const std::string& repo, const Digest& d) {
  return LayersDir(repo) + "/" + d.algorithm() + "/" + d.hex() + "/link";
}

// Left by garbage collection where it removed an unused layer link (a regfs addition, which
// registry:2 ignores: it reads only `link`): for the grace window a manifest PUT may still
// refer to the blob, as the client checked it was there a moment before (registry_gc.cc).
inline std::string LayerTombstone(const std::string& repo, const Digest& d) {
  return LayersDir(repo) + "/" + d.algorithm() + "/" + d.hex() + "/unlinked";
}

inline std::string ManifestsDir(const std::string& repo) {
  return Repository(repo) + "/_manifests";
}
inline std::string RevisionsDir(const std::string& repo, const std::string& algorithm) {
  return ManifestsDir(repo) + "/revisions/" + algorithm;
}
inline std::string RevisionLink(const std::string& repo, const Digest& d) {
  return RevisionsDir(repo, d.algorithm()) + "/" + d.hex() + "/link";
}

inline std::string TagsDir(const std::string& repo) { return ManifestsDir(repo) + "/tags"; }
inline std::string TagDir(const std::string& repo, const std::string& tag) {
  return TagsDir(repo) + "/" + tag;
}
inline std::string TagCurrentLink(const std::string& repo, const std::string& tag) {
  return TagDir(repo, tag) + "/current/link";
}
inline std::string TagIndexLink(const std::string& repo, const std::string& tag, const Digest& d) {
  return TagDir(repo, tag) + "/index/" + d.algorithm() + "/" + d.hex() + "/link";
}

inline std::string UploadsDir(const std::string& repo) { return Repository(repo) + "/_uploads"; }
inline std::string UploadDir(const std::string& repo, const std::string& id) {
  return UploadsDir(repo) + "/" + id;
}
inline std::string UploadData(const std::string& repo, const std::string& id) {
  return UploadDir(repo, id) + "/data";
}
inline std::string UploadStartedAt(const std::string& repo, const std::string& id) {
  return UploadDir(repo, id) + "/startedat";
}
// The hash of the upload's first `offset` bytes, in Go's MarshalBinary format (registry:2's).
inline std::string UploadHashState(const std::string& repo, const std::string& id,
                                   const std::string& algorithm, uint64_t offset) {
  return UploadDir(repo, id) + "/hashstates/" + algorithm + "/" + std::to_string(offset);
}

}  // namespace regfs::layout
