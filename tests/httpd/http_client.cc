#include "http_client.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/SocketStream.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/Timespan.h>
#include <Poco/URI.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <istream>
#include <mutex>
#include <ostream>
#include <sstream>

namespace regfs::testing {
namespace {

// A server may answer (e.g. 413) and close while we are still sending; the
// write must then fail with an error, not kill the test binary.
void IgnoreSigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { std::signal(SIGPIPE, SIG_IGN); });
}

// Offset of the path in an absolute URL, or npos if `url` is not absolute.
size_t PathStartOfAbsoluteUrl(std::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string_view::npos;
  // Only treat it as absolute if the scheme precedes any '/' or '?'.
  if (url.substr(0, scheme_end).find_first_of("/?") != std::string_view::npos) {
    return std::string_view::npos;
  }
  size_t path = url.find('/', scheme_end + 3);
  return path == std::string_view::npos ? url.size() : path;
}

bool MethodCarriesBody(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

// Status, headers and body (read to its end) into `out`.
void CopyResponse(const Poco::Net::HTTPResponse& http_response, std::istream& in,
                  HttpResponse* out) {
  out->status = static_cast<int>(http_response.getStatus());
  out->reason = http_response.getReason();
  for (const auto& [name, value] : http_response) out->headers.add(name, value);
  if (http_response.hasContentLength()) {
    // On a raw socket stream, reading "to the end" would wait for close.
    std::string body(static_cast<size_t>(http_response.getContentLength64()), '\0');
    in.read(body.data(), static_cast<std::streamsize>(body.size()));
    body.resize(static_cast<size_t>(in.gcount()));
    out->body = std::move(body);
  } else {
    Poco::StreamCopier::copyToString(in, out->body);
  }
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  return headers.get(std::string(name), "");
}

bool HttpResponse::HasHeader(std::string_view name) const { return headers.has(std::string(name)); }

std::string HttpResponse::MediaType() const {
  std::string value = Header("Content-Type");
  value = value.substr(0, value.find(';'));
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  value.erase(value.begin(), std::find_if(value.begin(), value.end(), not_space));
  value.erase(std::find_if(value.rbegin(), value.rend(), not_space).base(), value.end());
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return value;
}

std::string HttpResponse::Describe() const {
  std::ostringstream out;
  if (status == 0) {
    out << "no HTTP response: " << error;
    return out.str();
  }
  out << "HTTP " << status << ' ' << reason << '\n';
  for (const auto& [name, value] : headers) {
    out << "  " << name << ": " << value << '\n';
  }
  constexpr size_t kMaxBody = 2000;
  out << "  body (" << body.size() << " bytes): " << body.substr(0, kMaxBody);
  if (body.size() > kMaxBody) out << "...";
  return out.str();
}

HttpClient::HttpClient(std::string host, uint16_t port, std::chrono::milliseconds timeout)
    : host_(std::move(host)), port_(port), timeout_(timeout) {}

HttpResponse HttpClient::Send(const HttpRequest& request) const {
  IgnoreSigpipe();
  HttpResponse response;
  std::string target = ResolveLocation(request.target);
  try {
    Poco::Timespan timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout_).count());
    // Connect by hand to disable Nagle: Poco writes headers and body
    // separately, and Nagle plus delayed ACKs would add ~40 ms per request.
    Poco::Net::StreamSocket socket;
    socket.connect(Poco::Net::SocketAddress(host_, port_), timeout);
    socket.setNoDelay(true);
    Poco::Net::HTTPClientSession session(socket);
    session.setTimeout(timeout);
    session.setKeepAlive(false);

    Poco::Net::HTTPRequest http_request(request.method, target, Poco::Net::HTTPMessage::HTTP_1_1);
    // A session built on a socket knows no host to put in Host.
    http_request.setHost(host_, port_);
    if (request.chunked) {
      http_request.setChunkedTransferEncoding(true);
    } else if (!request.body.empty() || MethodCarriesBody(request.method)) {
      // Always announce the length of POST/PUT/PATCH, even when zero:
      // without it an HTTP/1.1 server must assume an empty body anyway, but
      // being explicit is what real clients do.
      http_request.setContentLength(static_cast<std::streamsize>(request.body.size()));
    }
    for (const auto& [name, value] : request.headers) {
      http_request.set(name, value);
    }

    std::string send_error;
    try {
      std::ostream& out = session.sendRequest(http_request);
      size_t piece = request.chunked && request.chunk_size > 0
                         ? request.chunk_size
                         : std::max<size_t>(request.body.size(), 1);
      for (size_t offset = 0; offset < request.body.size(); offset += piece) {
        size_t length = std::min(piece, request.body.size() - offset);
        out.write(request.body.data() + offset, static_cast<std::streamsize>(length));
        // Each flush of Poco's chunked stream becomes one chunk on the wire.
        out.flush();
      }
      if (!out) send_error = "request body write failed";
    } catch (const Poco::Exception& e) {
      send_error = e.displayText();
    }

    try {
      Poco::Net::HTTPResponse http_response;
      if (send_error.empty()) {
        std::istream& in = session.receiveResponse(http_response);
        CopyResponse(http_response, in, &response);
      } else {
        // The server answered (e.g. 413) and closed before taking the whole
        // body. Poco's receiveResponse() refuses to read after a failed
        // write, but the answer may be waiting in the socket: read it there,
        // as Go's HTTP client would.
        socket.setReceiveTimeout(timeout);
        Poco::Net::SocketInputStream in(socket);
        http_response.read(in);
        CopyResponse(http_response, in, &response);
      }
    } catch (const Poco::Exception& e) {
      if (response.status == 0) {
        response.error = e.displayText();
        if (!send_error.empty()) {
          response.error += " (after failing to send the request: " + send_error +
                            "; a server that answers early must still read or discard the "
                            "body, or the client never sees the answer)";
        }
      }
      // A response whose body was cut short keeps its status: tests that
      // care compare the body or Content-Length.
    }
  } catch (const Poco::Exception& e) {
    response.status = 0;
    response.error = e.displayText();
  } catch (const std::exception& e) {
    response.status = 0;
    response.error = e.what();
  }
  return response;
}

HttpResponse HttpClient::Get(std::string_view target, HeaderList headers) const {
  return Send({"GET", std::string(target), std::move(headers), {}});
}

HttpResponse HttpClient::Head(std::string_view target, HeaderList headers) const {
  return Send({"HEAD", std::string(target), std::move(headers), {}});
}

HttpResponse HttpClient::Delete(std::string_view target, HeaderList headers) const {
  return Send({"DELETE", std::string(target), std::move(headers), {}});
}

HttpResponse HttpClient::Post(std::string_view target, std::string body, HeaderList headers) const {
  return Send({"POST", std::string(target), std::move(headers), std::move(body)});
}

HttpResponse HttpClient::Put(std::string_view target, std::string body, HeaderList headers) const {
  return Send({"PUT", std::string(target), std::move(headers), std::move(body)});
}

HttpResponse HttpClient::Patch(std::string_view target, std::string body,
                               HeaderList headers) const {
  return Send({"PATCH", std::string(target), std::move(headers), std::move(body)});
}

std::string ResolveLocation(std::string_view location, std::string_view base_target) {
  size_t path_start = PathStartOfAbsoluteUrl(location);
  if (path_start != std::string_view::npos) {
    std::string target(location.substr(path_start));
    return target.empty() || target[0] != '/' ? "/" + target : target;
  }
  if (!location.empty() && location[0] == '/') return std::string(location);
  // A relative reference: let Poco apply RFC 3986 resolution.
  Poco::URI base("http://localhost" + std::string(ResolveLocation(base_target)));
  base.resolve(std::string(location));
  return base.getPathEtc();
}

std::string LocationPath(std::string_view location) {
  std::string target = ResolveLocation(location);
  return target.substr(0, target.find_first_of("?#"));
}

std::string AppendQuery(std::string_view target, std::string_view param) {
  std::string result(target);
  result += target.find('?') == std::string_view::npos ? '?' : '&';
  result += param;
  return result;
}

}  // namespace regfs::testing
