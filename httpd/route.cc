#include "route.h"

#include <vector>

namespace regfs::httpd {

namespace {

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    parts.push_back(
        s.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) return parts;
    start = slash + 1;
  }
}

std::string Join(const std::vector<std::string>& parts, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) {
    if (i > begin) out += '/';
    out += parts[i];
  }
  return out;
}

}  // namespace

Route ParseRoute(const std::string& path) {
  Route r;
  if (path == "/v2" || path == "/v2/") {
    r.kind = Route::Kind::kBase;
    return r;
  }
  if (!path.starts_with("/v2/")) return r;
  if (path == "/v2/_catalog" || path == "/v2/_catalog/") {
    r.kind = Route::Kind::kCatalog;
    return r;
  }
  std::vector<std::string> p = Split(path.substr(4));
  const size_t n = p.size();
  // Name segments must exist before the endpoint segments.
  if (n >= 3 && p[n - 2] == "tags" && p[n - 1] == "list") {
    r = {Route::Kind::kTags, Join(p, 0, n - 2), ""};
  } else if (n >= 4 && p[n - 3] == "blobs" && p[n - 2] == "uploads") {
    r = {p[n - 1].empty() ? Route::Kind::kUploadStart : Route::Kind::kUpload, Join(p, 0, n - 3),
         p[n - 1]};
  } else if (n >= 3 && p[n - 2] == "blobs" && p[n - 1] == "uploads") {
    r = {Route::Kind::kUploadStart, Join(p, 0, n - 2), ""};
  } else if (n >= 3 && p[n - 2] == "manifests") {
    r = {Route::Kind::kManifest, Join(p, 0, n - 2), p[n - 1]};
  } else if (n >= 3 && p[n - 2] == "blobs") {
    r = {Route::Kind::kBlob, Join(p, 0, n - 2), p[n - 1]};
  } else if (n >= 3 && p[n - 2] == "referrers") {
    r = {Route::Kind::kReferrers, Join(p, 0, n - 2), p[n - 1]};
  }
  return r;
}

}  // namespace regfs::httpd
