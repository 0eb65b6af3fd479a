#include "request_router.h"

#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/URI.h>

#include "handlers/handlers.h"
#include "observability/debug_server.h"

namespace regfs::httpd {

Poco::Net::HTTPRequestHandler* RequestRouter::createRequestHandler(
    const Poco::Net::HTTPServerRequest& request) {
  std::string path;
  try {
    path = Poco::URI(request.getURI()).getPath();
  } catch (const Poco::Exception&) {
    return new NotFoundHandler(context_, Route{});
  }
  if (context_.health != nullptr) {
    if (auto* probe = NewProbeHandler(path, *context_.health)) return probe;
  }
  Route route = ParseRoute(path);
  switch (route.kind) {
    case Route::Kind::kBase:
      return new BaseHandler(context_, route);
    case Route::Kind::kCatalog:
      return new CatalogHandler(context_, route);
    case Route::Kind::kTags:
      return new TagsHandler(context_, route);
    case Route::Kind::kManifest:
      return new ManifestHandler(context_, route);
    case Route::Kind::kBlob:
      return new BlobHandler(context_, route);
    case Route::Kind::kUploadStart:
    case Route::Kind::kUpload:
      return new UploadHandler(context_, route);
    case Route::Kind::kReferrers:
      return new ReferrersHandler(context_, route);
    case Route::Kind::kUnknown:
      break;
  }
  return new NotFoundHandler(context_, route);
}

}  // namespace regfs::httpd
