// Fuzzes ParseManifest for every media type it accepts.
//
// Input: the first byte picks the Content-Type the client declares (one of kContentTypes,
// or, past the table, the text up to the first newline); the rest is the manifest body.
//
// Invariants: an accepted manifest has a supported media type; an index has children and no
// blobs, any other manifest blobs and no children (an image manifest: its config first); every
// descriptor has a canonical digest and a non-negative size; a subject re-parses; parsing is
// deterministic; and a manifest accepted with a declared Content-Type is accepted the same way
// when the client declares nothing and the body names its own mediaType.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "regfs/core/manifest.h"

namespace {

namespace mt = regfs::media_types;

constexpr std::string_view kContentTypes[] = {
    "",
    "application/json",
    "application/octet-stream",
    mt::kDockerManifest,
    mt::kDockerManifestList,
    mt::kOciManifest,
    mt::kOciIndex,
    mt::kOciArtifact,
    "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
    "application/vnd.oci.image.index.v1+json  ;",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
};
constexpr size_t kNumContentTypes = sizeof(kContentTypes) / sizeof(kContentTypes[0]);

void CheckDescriptor(const regfs::Descriptor& d) {
  FUZZ_CHECK(d.size >= 0);
  auto again = regfs::Digest::Parse(d.digest.ToString());
  FUZZ_CHECK(again.ok() && *again == d.digest);
}

void CheckManifest(const regfs::ParsedManifest& m) {
  FUZZ_CHECK(regfs::IsManifestMediaType(m.media_type));
  bool index_type = m.media_type == mt::kOciIndex || m.media_type == mt::kDockerManifestList;
  FUZZ_CHECK(m.is_index == index_type);
  if (m.is_index) {
    FUZZ_CHECK(m.blobs.empty());
  } else {
    FUZZ_CHECK(m.children.empty());
    if (m.media_type != mt::kOciArtifact) FUZZ_CHECK(!m.blobs.empty());  // the config
    if (m.media_type == mt::kOciArtifact) FUZZ_CHECK(!m.artifact_type.empty());
  }
  for (const auto& d : m.blobs) CheckDescriptor(d);
  for (const auto& d : m.children) CheckDescriptor(d);
  if (m.subject) FUZZ_CHECK(regfs::Digest::Parse(m.subject->ToString()).ok());
}

bool SameDescriptors(const std::vector<regfs::Descriptor>& a,
                     const std::vector<regfs::Descriptor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i].digest == b[i].digest) || a[i].size != b[i].size ||
        a[i].media_type != b[i].media_type) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string_view content_type;
  if (data[0] < kNumContentTypes) {
    content_type = kContentTypes[data[0]];
  } else {
    size_t nl = input.find('\n');
    content_type = input.substr(0, nl);
    input = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);
  }

  auto parsed = regfs::ParseManifest(input, content_type);
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.status().message().empty());
    return 0;
  }
  CheckManifest(*parsed);

  auto again = regfs::ParseManifest(input, content_type);
  FUZZ_CHECK(again.ok() && again->media_type == parsed->media_type &&
             SameDescriptors(again->blobs, parsed->blobs) &&
             SameDescriptors(again->children, parsed->children));

  // The declared Content-Type only fills in what the body leaves open.
  auto untyped = regfs::ParseManifest(input, "");
  if (untyped.ok()) {
    CheckManifest(*untyped);
    std::string_view header_type = content_type.substr(0, content_type.find(';'));
    while (!header_type.empty() && header_type.back() == ' ') header_type.remove_suffix(1);
    if (!regfs::IsManifestMediaType(header_type)) {
      FUZZ_CHECK(untyped->media_type == parsed->media_type);
    }
  }
  return 0;
}
