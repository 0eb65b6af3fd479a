// WebhookSender: one endpoint's HTTP(S) POSTs, with its headers, a timeout on every step,
// and (with a secret) a signature of the body. The connection is kept open between
// requests (and opened anew after any failure). Not thread-safe: one sender per thread.
//
// The signature header is X-Regfs-Signature-256: "sha256=" + hex HMAC-SHA256(secret, body),
// computed over the exact bytes of the body; a receiver recomputes it and compares in
// constant time. Header values and the URL's credentials never appear in a Status message.
#pragma once

#include <Poco/Net/HTTPClientSession.h>

#include <memory>
#include <string>

#include "regfs/config/config.h"
#include "regfs/core/status.h"

namespace regfs::httpd {

inline constexpr char kSignatureHeader[] = "X-Regfs-Signature-256";

// "sha256=<hex>" of `body` under `secret`.
std::string WebhookSignature(const std::string& secret, const std::string& body);

class WebhookSender {
 public:
  explicit WebhookSender(Config::NotificationEndpoint endpoint);

  // Delivered: the receiver answered 2xx or 3xx within the timeout. Otherwise Unavailable,
  // saying "HTTP <status>" or what failed (connect, timeout, TLS).
  Status Post(const std::string& content_type, const std::string& body);

  // Whether the receiver accepts a TCP connection within the timeout (sends nothing): for a
  // warning at start.
  Status CheckReachable() const;

  // The URL without credentials or query, for log lines.
  const std::string& loggable_url() const { return loggable_url_; }

 private:
  const Config::NotificationEndpoint endpoint_;
  std::string loggable_url_;
  std::unique_ptr<Poco::Net::HTTPClientSession> session_;  // null until needed, or after a failure
};

}  // namespace regfs::httpd
