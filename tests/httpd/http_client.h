// Minimal blocking HTTP/1.1 client for the API tests, built on Poco.
//
// Every request opens its own connection so that tests (and threads) never
// share connection state, and so that a server closing a connection early
// cannot poison later requests.
#ifndef REGFS_TESTS_HTTPD_HTTP_CLIENT_H_
#define REGFS_TESTS_HTTPD_HTTP_CLIENT_H_

#include <Poco/Net/NameValueCollection.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace regfs::testing {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  // "/path?query", or an absolute "http://host:port/path?query" (the origin
  // is dropped: requests always go to the client's host and port).
  std::string target;
  HeaderList headers;
  std::string body;
  // Send the body with "Transfer-Encoding: chunked" instead of
  // Content-Length, split into pieces of chunk_size bytes (0: one piece).
  bool chunked = false;
  size_t chunk_size = 0;
};

struct HttpResponse {
  // 0 when no HTTP response could be read; `error` then says why.
  int status = 0;
  std::string reason;
  std::string error;
  Poco::Net::NameValueCollection headers;  // case-insensitive names
  std::string body;

  // First value of the header, "" when absent.
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
  // Content-Type without parameters, lower-cased ("application/json").
  std::string MediaType() const;
  // Status line, headers and the start of the body, for failure messages.
  std::string Describe() const;
};

class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds(60));

  HttpResponse Send(const HttpRequest& request) const;

  HttpResponse Get(std::string_view target, HeaderList headers = {}) const;
  HttpResponse Head(std::string_view target, HeaderList headers = {}) const;
  HttpResponse Delete(std::string_view target, HeaderList headers = {}) const;
  HttpResponse Post(std::string_view target, std::string body = {}, HeaderList headers = {}) const;
  HttpResponse Put(std::string_view target, std::string body = {}, HeaderList headers = {}) const;
  HttpResponse Patch(std::string_view target, std::string body = {}, HeaderList headers = {}) const;

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }

 private:
  std::string host_;
  uint16_t port_;
  std::chrono::milliseconds timeout_;
};

// Turns a Location header value into a request target ("/path?query"):
// absolute URLs lose their origin, relative references are resolved against
// `base_target` (the request that returned the header).
std::string ResolveLocation(std::string_view location, std::string_view base_target = "/");

// Path part of a Location header (origin and query removed).
std::string LocationPath(std::string_view location);

// Adds "param" (already "key=value" encoded) to a target's query string.
std::string AppendQuery(std::string_view target, std::string_view param);

}  // namespace regfs::testing

#endif  // REGFS_TESTS_HTTPD_HTTP_CLIENT_H_
