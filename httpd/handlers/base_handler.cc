#include "handlers/handlers.h"

namespace regfs::httpd {

void BaseHandler::Handle(Exchange& ex) {
  if (ex.method() != "GET" && ex.method() != "HEAD") return MethodNotAllowed(ex, "GET, HEAD");
  ex.SendBody(Poco::Net::HTTPResponse::HTTP_OK, "application/json", "{}");
}

void NotFoundHandler::Handle(Exchange& ex) {
  ex.SendError(Poco::Net::HTTPResponse::HTTP_NOT_FOUND, "UNSUPPORTED",
               "no such endpoint: " + ex.request().getURI());
}

}  // namespace regfs::httpd
