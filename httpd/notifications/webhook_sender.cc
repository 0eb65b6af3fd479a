#include "notifications/webhook_sender.h"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include <memory>

#include "regfs/core/digest.h"

namespace regfs::httpd {

std::string WebhookSignature(const std::string& secret, const std::string& body) {
  return "sha256=" + LowerHex(HmacSha256(secret, body));
}

WebhookSender::WebhookSender(Config::NotificationEndpoint endpoint)
    : endpoint_(std::move(endpoint)) {
  try {
    Poco::URI uri(endpoint_.url);
    loggable_url_ = uri.getScheme() + "://" + uri.getHost() + ":" + std::to_string(uri.getPort()) +
                    uri.getPath();
  } catch (const Poco::Exception&) {
    loggable_url_ = "(unparsable url)";
  }
}

Status WebhookSender::CheckReachable() const {
  try {
    Poco::URI uri(endpoint_.url);
    Poco::Net::StreamSocket socket;
    socket.connect(Poco::Net::SocketAddress(uri.getHost(), uri.getPort()),
                   Poco::Timespan(std::chrono::duration_cast<std::chrono::microseconds>(
                                      endpoint_.timeout)
                                      .count()));
    return Status::Ok();
  } catch (const Poco::Exception& e) {
    return Status::Unavailable(loggable_url_ + ": " + e.displayText());
  }
}

Status WebhookSender::Post(const std::string& content_type, const std::string& body) {
  try {
    Poco::URI uri(endpoint_.url);
    if (!session_) {
      if (uri.getScheme() == "https") {
        // The system's CAs, and the peer's name checked against its certificate.
        static const Poco::Net::Context::Ptr context = new Poco::Net::Context(
            Poco::Net::Context::TLS_CLIENT_USE, "", "", "", Poco::Net::Context::VERIFY_RELAXED,
            9, true);
        session_ = std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort(),
                                                                   context);
      } else {
        session_ = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
      }
      const Poco::Timespan timeout(
          std::chrono::duration_cast<std::chrono::microseconds>(endpoint_.timeout).count());
      session_->setTimeout(timeout, timeout, timeout);
      session_->setKeepAlive(true);
    }
    std::string target = uri.getPathEtc();
    if (target.empty()) target = "/";
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_POST, target,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    request.setKeepAlive(true);
    for (const auto& [name, values] : endpoint_.headers) {
      for (const auto& v : values) request.add(name, v);
    }
    request.setContentType(content_type);
    request.setContentLength64(static_cast<Poco::Int64>(body.size()));
    if (!endpoint_.secret.empty()) {
      request.set(kSignatureHeader, WebhookSignature(endpoint_.secret, body));
    }
    session_->sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session_->receiveResponse(response);
    // The answer's content is unused; reading it (bounded) keeps the connection reusable.
    char sink[4096];
    size_t drained = 0;
    while (in.read(sink, sizeof sink) || in.gcount() > 0) {
      drained += static_cast<size_t>(in.gcount());
      if (drained > (1 << 20)) {
        session_.reset();
        break;
      }
    }
    if (session_ && !response.getKeepAlive()) session_.reset();
    const int status = static_cast<int>(response.getStatus());
    if (status >= 200 && status < 400) return Status::Ok();
    return Status::Unavailable("HTTP " + std::to_string(status) + " from " + loggable_url_);
  } catch (const Poco::TimeoutException&) {
    session_.reset();
    return Status::Unavailable("no answer from " + loggable_url_ + " within " +
                               std::to_string(endpoint_.timeout.count()) + " ms");
  } catch (const Poco::Exception& e) {
    session_.reset();
    return Status::Unavailable(loggable_url_ + ": " + e.displayText());
  } catch (const std::exception& e) {
    session_.reset();
    return Status::Unavailable(loggable_url_ + ": " + e.what());
  }
}

}  // namespace regfs::httpd
