// Creates the handler for each request from its path: the one place that knows which
// endpoint class serves which route.
#pragma once

#include <Poco/Net/HTTPRequestHandlerFactory.h>

#include "server_context.h"

namespace regfs::httpd {

class RequestRouter final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit RequestRouter(const ServerContext& context) : context_(context) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest& request) override;
  // Tells every open connection that the server is stopping: each ends after the request it
  // is handling (what Poco's HTTPServer::stopAll(false) does for its own connections).
  void NotifyServerStopped() { serverStopped.notify(this, false); }

 private:
  const ServerContext& context_;
};

}  // namespace regfs::httpd
