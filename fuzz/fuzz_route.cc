// Fuzzes request routing: the request target as the router sees it (Poco::URI's decoded
// path, then ParseRoute), and ParseRoute on the raw input as a path.
//
// Invariants: a route loses nothing (the path is exactly "/v2/" + name + the endpoint's
// segments + reference); a reference never contains "/"; base, catalog and unknown routes have
// no name; and a name the handlers would accept (ValidateRepositoryName) can never escape the
// repository tree: no leading "/", no "." or ".." or empty components.
#include <Poco/Exception.h>
#include <Poco/URI.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "regfs/core/names.h"
#include "route.h"

namespace {

using regfs::httpd::ParseRoute;
using regfs::httpd::Route;

void CheckRoute(const std::string& path) {
  Route r = ParseRoute(path);
  const std::string prefix = "/v2/" + r.name;
  switch (r.kind) {
    case Route::Kind::kBase:
      FUZZ_CHECK(path == "/v2" || path == "/v2/");
      FUZZ_CHECK(r.name.empty() && r.reference.empty());
      return;
    case Route::Kind::kCatalog:
      FUZZ_CHECK(path.starts_with("/v2/_catalog"));
      FUZZ_CHECK(r.name.empty() && r.reference.empty());
      return;
    case Route::Kind::kUnknown:
      FUZZ_CHECK(r.name.empty() && r.reference.empty());
      return;
    case Route::Kind::kTags:
      FUZZ_CHECK(path == prefix + "/tags/list" && r.reference.empty());
      break;
    case Route::Kind::kManifest:
      FUZZ_CHECK(path == prefix + "/manifests/" + r.reference);
      break;
    case Route::Kind::kBlob:
      FUZZ_CHECK(path == prefix + "/blobs/" + r.reference);
      break;
    case Route::Kind::kUploadStart:
      FUZZ_CHECK(path == prefix + "/blobs/uploads" || path == prefix + "/blobs/uploads/");
      FUZZ_CHECK(r.reference.empty());
      break;
    case Route::Kind::kUpload:
      FUZZ_CHECK(path == prefix + "/blobs/uploads/" + r.reference && !r.reference.empty());
      break;
    case Route::Kind::kReferrers:
      FUZZ_CHECK(path == prefix + "/referrers/" + r.reference);
      break;
  }
  FUZZ_CHECK(r.reference.find('/') == std::string::npos);
  if (regfs::ValidateRepositoryName(r.name).ok()) {
    FUZZ_CHECK(r.name.front() != '/' && r.name.back() != '/');
    const std::string slashed = "/" + r.name + "/";
    FUZZ_CHECK(slashed.find("//") == std::string::npos);
    FUZZ_CHECK(slashed.find("/./") == std::string::npos);
    FUZZ_CHECK(slashed.find("/../") == std::string::npos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  CheckRoute(input);
  // What RequestRouter does with a request target.
  std::string path;
  try {
    path = Poco::URI(input).getPath();
  } catch (const Poco::Exception&) {
    return 0;
  }
  CheckRoute(path);
  return 0;
}
