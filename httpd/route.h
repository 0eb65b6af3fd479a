// Maps a request path of the Distribution API to the endpoint it names.
//
// Repository names contain "/", so a path is read from its end: the last segments name the
// endpoint (tags/list, manifests/<ref>, blobs/<digest>, blobs/uploads/<id>,
// referrers/<digest>) and everything between /v2/ and them is the name. The name is not
// validated here; handlers do that, so the error can say what is wrong with it.
#pragma once

#include <string>

namespace regfs::httpd {

struct Route {
  enum class Kind {
    kBase,         // /v2/
    kCatalog,      // /v2/_catalog
    kTags,         // /v2/<name>/tags/list
    kManifest,     // /v2/<name>/manifests/<reference>
    kBlob,         // /v2/<name>/blobs/<digest>
    kUploadStart,  // /v2/<name>/blobs/uploads/
    kUpload,       // /v2/<name>/blobs/uploads/<id>
    kReferrers,    // /v2/<name>/referrers/<digest>
    kUnknown,
  };
  Kind kind = Kind::kUnknown;
  std::string name;
  std::string reference;  // tag or digest, upload id, or subject digest
};

// `path` is the percent-decoded path without the query string.
Route ParseRoute(const std::string& path);

}  // namespace regfs::httpd
