#include "exchange.h"

#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/StreamSocketImpl.h>
#include <Poco/URI.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <typeinfo>
#include <vector>

#include "regfs/core/uuid.h"
#include "request_framing.h"
#include "utf8.h"

namespace regfs::httpd {

using Poco::Net::HTTPResponse;

namespace {

struct HttpError {
  HTTPResponse::HTTPStatus status;
  const char* code;
};

HttpError Translate(const Status& s) {
  using R = Status::Reason;
  switch (s.reason()) {
    case R::kBlobUnknown:
      return {HTTPResponse::HTTP_NOT_FOUND, "BLOB_UNKNOWN"};
    case R::kBlobUploadUnknown:
      return {HTTPResponse::HTTP_NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"};
    case R::kBlobUploadInvalid:
      return {HTTPResponse::HTTP_BAD_REQUEST, "BLOB_UPLOAD_INVALID"};
    case R::kDigestInvalid:
      return {HTTPResponse::HTTP_BAD_REQUEST, "DIGEST_INVALID"};
    case R::kManifestUnknown:
      return {HTTPResponse::HTTP_NOT_FOUND, "MANIFEST_UNKNOWN"};
    case R::kManifestInvalid:
      return {HTTPResponse::HTTP_BAD_REQUEST, "MANIFEST_INVALID"};
    case R::kManifestBlobUnknown:
      return {HTTPResponse::HTTP_BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"};
    case R::kManifestTooLarge:
      return {HTTPResponse::HTTP_REQUESTENTITYTOOLARGE, "MANIFEST_INVALID"};
    case R::kNameInvalid:
      return {HTTPResponse::HTTP_BAD_REQUEST, "NAME_INVALID"};
    case R::kNameUnknown:
      return {HTTPResponse::HTTP_NOT_FOUND, "NAME_UNKNOWN"};
    case R::kTagInvalid:
      return {HTTPResponse::HTTP_BAD_REQUEST, "TAG_INVALID"};
    case R::kSizeInvalid:
      return {HTTPResponse::HTTP_BAD_REQUEST, "SIZE_INVALID"};
    case R::kRangeInvalid:
      return {HTTPResponse::HTTP_REQUESTED_RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID"};
    case R::kUnsupported:
      return {HTTPResponse::HTTP_METHOD_NOT_ALLOWED, "UNSUPPORTED"};
    case R::kPaginationInvalid:
      return {HTTPResponse::HTTP_BAD_REQUEST, "PAGINATION_NUMBER_INVALID"};
    case R::kStorageFull:
      return {HTTPResponse::HTTP_INSUFFICIENT_STORAGE, "UNKNOWN"};
    case R::kNone:
      break;
  }
  using C = Status::Code;
  switch (s.code()) {
    case C::kNotFound:
      return {HTTPResponse::HTTP_NOT_FOUND, "NAME_UNKNOWN"};
    case C::kInvalidArgument:
      return {HTTPResponse::HTTP_BAD_REQUEST, "UNSUPPORTED"};
    case C::kPermissionDenied:
      // Callers are refused by the Authorizer before a handler runs; a permission error
      // without a reason comes from the storage and is the server's problem.
      return {HTTPResponse::HTTP_INTERNAL_SERVER_ERROR, "UNKNOWN"};
    case C::kOutOfRange:
      return {HTTPResponse::HTTP_REQUESTED_RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID"};
    case C::kUnavailable:
      return {HTTPResponse::HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE"};
    case C::kResourceExhausted:
      return {HTTPResponse::HTTP_INSUFFICIENT_STORAGE, "UNKNOWN"};
    default:
      return {HTTPResponse::HTTP_INTERNAL_SERVER_ERROR, "UNKNOWN"};
  }
}

// A JSON string literal of `s`. Error messages echo client input (a path, a header), which
// may be any bytes: bytes that are not UTF-8 become U+FFFD so the body stays valid JSON.
std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(s, i, n);
      i += n;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(s[i++]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

Exchange::Exchange(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response,
                   const ServerContext& context)
    : request_(request),
      response_(response),
      context_(context),
      changes_(context.recorder,
               RequestInfo{.id = NewUuid(),
                           .addr = request.clientAddress().toString(),
                           .host = request.get("Host", ""),
                           .method = request.getMethod(),
                           .user_agent = request.get("User-Agent", "")},
               "") {}

void Exchange::RecordPull(ChangeEvent::Kind kind, const std::string& repository,
                          const Digest& digest, uint64_t size, const std::string& media_type,
                          const std::string& tag) {
  if (!context_.record_pulls || IsHead()) return;
  changes_.Add({.kind = kind,
                .repository = repository,
                .digest = digest,
                .tag = tag,
                .media_type = media_type,
                .size = size});
}

std::optional<std::string> Exchange::Query(const std::string& key) const {
  const std::string& uri = request_.getURI();
  auto q = uri.find('?');
  if (q == std::string::npos) return std::nullopt;
  try {
    Poco::URI parsed(uri);
    for (const auto& [k, v] : parsed.getQueryParameters()) {
      if (k == key) return v;
    }
  } catch (const Poco::Exception&) {
  }
  return std::nullopt;
}

std::string Exchange::Url(const std::string& path) const {
  const Config& c = context_.config;
  if (c.relative_urls) return path;
  if (!c.host.empty()) return c.host + path;
  // HTTP/1.0 requests may come without Host (getHost would throw): then a relative URL.
  if (request_.has("Host") && !request_.getHost().empty()) {
    // Behind a TLS-terminating proxy the client spoke https even though we did not.
    std::string scheme = c.tls.enabled() ? "https" : "http";
    const std::string forwarded = request_.get("X-Forwarded-Proto", "");
    if (forwarded == "https" || forwarded == "http") scheme = forwarded;
    return scheme + "://" + request_.getHost() + path;
  }
  return path;
}

bool Exchange::HasBody() const {
  return request_.getChunkedTransferEncoding() ||
         (request_.hasContentLength() && request_.getContentLength64() > 0);
}

std::istream& Exchange::Body() {
  if (body_ != nullptr) return *body_;
  auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request_);
  if (request_.getChunkedTransferEncoding() && impl != nullptr) {
    chunked_body_ = std::make_unique<ChunkedBodyStream>(impl->session());
    body_ = chunked_body_.get();
  } else if (HasBody()) {
    body_ = &request_.stream();
  } else {
    body_ = &no_body_;
  }
  return *body_;
}

std::string Exchange::BodyError() const {
  if (chunked_body_ && !chunked_body_->buf().Error().empty()) return chunked_body_->buf().Error();
  if (body_ != nullptr && body_->bad()) return "the request body was cut off";
  return "";
}

void Exchange::PrepareToSend() {
  // What the request changed is in the change log before the client hears of it.
  // A failed append is kept for a retry (the change itself is committed), and logged.
  (void)changes_.Flush();
  if (body_abandoned_ || !BodyError().empty()) {
    // What follows on this connection cannot be told apart from a request: close it.
    response_.setKeepAlive(false);
    return;
  }
  if (HasBody() && !body_consumed_) {
    // Read what the client is still sending, up to a bound, so it sees our answer instead of
    // a connection reset; past the bound, close rather than read it all.
    constexpr std::streamsize kMaxDrain = 8 << 20;
    std::istream& body = Body();
    char buf[65536];
    std::streamsize drained = 0;
    while (body && drained < kMaxDrain) {
      body.read(buf, sizeof buf);
      drained += body.gcount();
    }
    body_consumed_ = body.eof() && !body.bad();
  }
  if ((HasBody() && !body_consumed_) || context_.shutting_down.load()) {
    response_.setKeepAlive(false);
  }
}

void Exchange::SendStatus(HTTPResponse::HTTPStatus status) {
  PrepareToSend();
  response_.setStatusAndReason(status);
  response_.setContentLength(0);
  response_.send().flush();
}

void Exchange::LingerIfClosingEarly() {
  const bool unread_body = body_abandoned_ || (HasBody() && !body_consumed_);
  if (!response_.sent() || response_.getKeepAlive() || !unread_body) return;
  auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request_);
  if (impl == nullptr) return;
  // Every Send* flushes, so the answer is on the wire (TLS writes each record as it goes).
  const int fd = impl->socket().impl()->sockfd();
  if (fd < 0 || ::shutdown(fd, SHUT_WR) != 0) return;
  // Bounds: a client reading while it sends (curl, Go, skopeo, docker) has our answer within
  // milliseconds; these only keep one that does not from holding a thread for long.
  constexpr auto kMaxLinger = std::chrono::seconds(2);
  constexpr uint64_t kMaxDiscard = 256ULL << 20;
  const auto deadline = std::chrono::steady_clock::now() + kMaxLinger;
  uint64_t discarded = 0;
  std::vector<char> buf(256 * 1024);
  while (discarded < kMaxDiscard) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;  // the client closed (or reset): nothing more to wait for
    discarded += static_cast<uint64_t>(n);
  }
}

void Exchange::SendHead(HTTPResponse::HTTPStatus status) {
  PrepareToSend();
  response_.setStatusAndReason(status);
  response_.send().flush();
}

void Exchange::SendBody(HTTPResponse::HTTPStatus status, const std::string& content_type,
                        const std::string& body) {
  PrepareToSend();
  response_.setStatusAndReason(status);
  response_.setContentType(content_type);
  response_.setContentLength64(static_cast<Poco::Int64>(body.size()));
  std::ostream& out = response_.send();
  if (!IsHead()) {
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
    bytes_sent_ += body.size();
  }
  out.flush();
}

void Exchange::SendError(const Status& status) {
  HttpError e = Translate(status);
  if (e.status >= 500) {
    context_.logger.Error(method() + " " + LoggableTarget(request_.getURI()) + ": " +
                          status.ToString());
  } else {
    context_.logger.Debug(method() + " " + LoggableTarget(request_.getURI()) + ": " +
                          status.ToString());
  }
  // Internal details (paths, errno text) stay in the log. A "not found" without a reason
  // comes from the storage (a file that vanished under a concurrent delete) and names where
  // the data lives: not the client's business.
  const bool from_storage =
      status.reason() == Status::Reason::kNone && status.code() == Status::Code::kNotFound;
  // A full storage is said as such: the client (and whoever reads its error) can act on it.
  const bool full = status.reason() == Status::Reason::kStorageFull;
  std::string message = full ? "the registry's storage is full; try again once space is freed"
                        : e.status >= 500 ? "internal error; see the registry's log"
                        : from_storage    ? "not found"
                                          : status.message();
  SendError(e.status, e.code, message);
}

void Exchange::SendError(HTTPResponse::HTTPStatus http_status, const std::string& code,
                         const std::string& message) {
  std::string body = "{\"errors\":[{\"code\":" + JsonString(code) +
                     ",\"message\":" + JsonString(message) + ",\"detail\":null}]}";
  SendBody(http_status, "application/json", body);
}

void Exchange::SendFileBody(HTTPResponse::HTTPStatus status, FileReader& reader, uint64_t offset,
                            uint64_t length) {
  PrepareToSend();
  response_.setStatusAndReason(status);
  response_.setContentLength64(static_cast<Poco::Int64>(length));
  std::ostream& out = response_.send();
  if (IsHead() || length == 0) {
    out.flush();
    return;
  }
  auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request_);
  Poco::Net::StreamSocket* socket = impl ? &impl->socket() : nullptr;
  // sendfile writes straight to the socket: only for plain TCP (a TLS socket must encrypt).
  Poco::Net::SocketImpl* socket_impl = socket ? socket->impl() : nullptr;
  bool plain_tcp = socket_impl && typeid(*socket_impl) == typeid(Poco::Net::StreamSocketImpl);
  if (reader.fd() >= 0 && plain_tcp) {
    out.flush();  // the headers must precede the body on the wire
    int sock = socket->impl()->sockfd();
    off_t pos = static_cast<off_t>(offset);
    uint64_t left = length;
    while (left > 0) {
      ssize_t n = ::sendfile(sock, reader.fd(), &pos, std::min<uint64_t>(left, 1ULL << 30));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // The client went away or timed out; nothing more can be said on this connection.
        response_.setKeepAlive(false);
        throw Poco::IOException("sendfile failed after " + std::to_string(length - left) +
                                " bytes");
      }
      left -= static_cast<uint64_t>(n);
      bytes_sent_ += static_cast<uint64_t>(n);
    }
    return;
  }
  std::vector<char> buf(256 * 1024);
  uint64_t left = length;
  while (left > 0) {
    auto n = reader.Read(buf.data(), std::min<uint64_t>(buf.size(), left));
    if (!n.ok() || *n == 0) {
      // The head promised more: only closing the connection tells the client it was cut.
      response_.setKeepAlive(false);
      throw Poco::IOException("blob read failed after " + std::to_string(length - left) +
                              " bytes" + (n.ok() ? std::string() : ": " + n.status().message()));
    }
    out.write(buf.data(), static_cast<std::streamsize>(*n));
    if (!out) {
      response_.setKeepAlive(false);
      throw Poco::IOException("client went away");
    }
    left -= *n;
    bytes_sent_ += *n;
  }
  out.flush();
}

}  // namespace regfs::httpd
