// One request and its response, with the helpers every handler needs: query parameters,
// absolute URLs, JSON and error responses, and a zero-copy path for blob bodies.
//
// Errors are translated to the Distribution API exactly once, here (SendError): a core
// Status becomes an HTTP status, an OCI error code and the spec's JSON body.
#pragma once

#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>

#include <istream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "chunked_body.h"

#include "regfs/core/status.h"
#include "regfs/core/storage_driver.h"
#include "server_context.h"

namespace regfs::httpd {

class Exchange {
 public:
  Exchange(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response,
           const ServerContext& context);

  Poco::Net::HTTPServerRequest& request() { return request_; }
  Poco::Net::HTTPServerResponse& response() { return response_; }
  const ServerContext& context() const { return context_; }
  Registry& registry() { return context_.registry; }
  const std::string& method() const { return request_.getMethod(); }
  bool IsHead() const { return request_.getMethod() == "HEAD"; }

  // The first value of a query parameter, if present.
  std::optional<std::string> Query(const std::string& key) const;
  // An absolute URL for `path` (http.host, else the request's Host), or the path itself
  // with http.relativeurls.
  std::string Url(const std::string& path) const;

  // The request declares a body (Content-Length > 0 or chunked).
  bool HasBody() const;
  // The request body: Content-Length bytes, a strictly decoded chunked body, or nothing at
  // all when the head declares neither (RFC 9112 §6.3: then there is no body, and reading
  // until the client closes would stall a keep-alive client). REQUIRES: CheckFraming passed.
  std::istream& Body();
  // Why the body could not be read whole (cut off, malformed chunking, a timeout); empty
  // when it was read fine or not yet read.
  std::string BodyError() const;
  // Answer without reading more of the body, and close the connection after the answer:
  // for requests whose framing is refused, so nothing of them is parsed as a request.
  void AbandonBody() { body_abandoned_ = true; }
  // Call once the handler has read the whole body; otherwise error responses close the
  // connection so unread bytes are never parsed as the next request.
  void MarkBodyConsumed() { body_consumed_ = true; }

  void SendStatus(Poco::Net::HTTPResponse::HTTPStatus status);
  // Sends the status and the headers already set, Content-Length included, and no body:
  // the answer to a HEAD request.
  void SendHead(Poco::Net::HTTPResponse::HTTPStatus status);
  void SendBody(Poco::Net::HTTPResponse::HTTPStatus status, const std::string& content_type,
                const std::string& body);
  void SendError(const Status& status);
  void SendError(Poco::Net::HTTPResponse::HTTPStatus http_status, const std::string& code,
                 const std::string& message);
  // Sends `length` bytes of `reader` starting at its current position, which is `offset`
  // in the file; headers must already be set (status, Content-Length). Uses sendfile when
  // the reader has a file descriptor and the connection is plain TCP.
  void SendFileBody(Poco::Net::HTTPResponse::HTTPStatus status, FileReader& reader, uint64_t offset,
                    uint64_t length);

  // The authenticated caller (set before the handler runs) and its permissions beyond the
  // request's own repository, e.g. on a mount's source.
  const Caller& caller() const { return caller_; }
  void set_caller(Caller caller) {
    caller_ = std::move(caller);
    changes_.set_actor(caller_.name);
  }
  // Records a pull of `digest` (a manifest or blob GET that is answered with content), when
  // the configuration asks for pull events.
  void RecordPull(ChangeEvent::Kind kind, const std::string& repository, const Digest& digest,
                  uint64_t size, const std::string& media_type, const std::string& tag = "");
  bool Permits(Actions actions, std::string_view repository) const {
    return context_.authorizer.Permits(caller_, actions, repository);
  }

  // Call last, once the answer is sent. When the connection closes while the client may still
  // be sending a body we did not read (an early refusal), closing at once would make the
  // kernel reset the connection, and a reset discards our answer from the client's receive
  // buffer before the client reads it. So: flush, half-close (the client sees the whole
  // answer and then end of stream), and read and discard what still arrives until the client
  // closes or a bound of time and bytes is reached.
  void LingerIfClosingEarly();

  // How a mirrored repository's pull was answered (hit, miss, stale, error), for the
  // access log; empty for everything else.
  void set_cache_outcome(std::string outcome) { cache_outcome_ = std::move(outcome); }
  const std::string& cache_outcome() const { return cache_outcome_; }

  bool sent() const { return response_.sent(); }
  uint64_t bytes_sent() const { return bytes_sent_; }
  // Body bytes the handler stored (an upload's chunk), for the metrics when the request
  // announced no length.
  void CountBodyBytes(uint64_t n) { bytes_received_ += n; }
  uint64_t bytes_received() const { return bytes_received_; }

 private:
  void PrepareToSend();
  Poco::Net::HTTPServerRequest& request_;
  Poco::Net::HTTPServerResponse& response_;
  const ServerContext& context_;
  Caller caller_;
  bool body_consumed_ = false;
  bool body_abandoned_ = false;
  std::istream* body_ = nullptr;
  std::unique_ptr<ChunkedBodyStream> chunked_body_;
  std::istringstream no_body_;
  uint64_t bytes_sent_ = 0;
  uint64_t bytes_received_ = 0;
  std::string cache_outcome_;
  // The changes this request makes, appended to the change log before the answer is sent.
  ChangeRecorder::Scope changes_;
};

}  // namespace regfs::httpd
