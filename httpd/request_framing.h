// What a request's head says about where the request ends, checked before anything reads
// its body (RFC 9112 §6.3). A server that reads a body differently from a proxy in front of
// it lets a client hide a second request inside the first ("request smuggling"); so every
// head that could be read two ways is refused, and the connection is then closed.
#pragma once

#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPServerRequest.h>

#include <optional>
#include <string>

namespace regfs::httpd {

struct FramingError {
  Poco::Net::HTTPResponse::HTTPStatus status;
  std::string code;     // the Distribution error code of the JSON body
  std::string message;
};

// Refuses: an HTTP/1.1 request without exactly one Host header; credentials in the request
// target (RFC 9110 §4.2.4); more than one Content-Length, or one that is not a plain decimal
// number; Content-Length together with Transfer-Encoding; any transfer coding but a single
// "chunked" (501). nullopt when the head is unambiguous.
std::optional<FramingError> CheckFraming(const Poco::Net::HTTPServerRequest& request);

// The request target fit for a log line: "user:password@" of an absolute-form target is cut.
std::string LoggableTarget(const std::string& target);

}  // namespace regfs::httpd
