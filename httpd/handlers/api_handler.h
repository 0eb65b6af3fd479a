// The base of every endpoint handler: common headers, name validation, exception safety,
// shutdown accounting and the access log line, so each endpoint class holds only its logic.
#pragma once

#include <Poco/Net/HTTPRequestHandler.h>

#include "exchange.h"
#include "route.h"
#include "server_context.h"

namespace regfs::httpd {

class ApiHandler : public Poco::Net::HTTPRequestHandler {
 public:
  ApiHandler(const ServerContext& context, Route route)
      : context_(context), route_(std::move(route)) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) final;

 protected:
  // Handles one request. REQUIRES: the route's name, if any, is a valid repository name.
  virtual void Handle(Exchange& ex) = 0;
  // Authorizes the request (the caller's name into *user), then HandleAuthenticated.
  void Dispatch(Exchange& ex, std::string* user);
  // Validates the repository name, then Handle.
  void HandleAuthenticated(Exchange& ex);
  // What the request needs to be allowed: actions on every repository it touches (the
  // route's, and a cross-repository mount's source), the catalog, or (empty) only an
  // authenticated caller. The one place that says so: challenges and refusals follow it.
  std::vector<Need> Needs(const Exchange& ex) const;
  // A mirrored repository's pull that failed: an upstream down or refusing us is a 502, one
  // rate-limiting a 429, each with the upstream's failure as the message.
  static void SendProxyError(Exchange& ex, const Status& status);
  // 405 with the allowed methods.
  static void MethodNotAllowed(Exchange& ex, const std::string& allowed);

  const ServerContext& context_;
  const Route route_;
};

}  // namespace regfs::httpd
