// S3Client: signed HTTP(S) requests to one bucket of an S3-compatible object store, over
// Poco's HTTP client with keep-alive connections.
//
// Every call has a connect and an I/O timeout, and is retried with exponential backoff (and
// jitter) when the store does not answer, answers 5xx, or throttles (429, SlowDown): bodies
// are always held in memory, so a retry resends them exactly. Failures come back as Status
// values whose messages name the operation and the key, never a credential:
//   NotFound            the key (or upload) does not exist
//   FailedPrecondition  a condition (If-None-Match, If-Match) did not hold
//   OutOfRange          a range outside the object
//   Unavailable         the store is unreachable, keeps failing, refuses the credentials, or
//                       the bucket is missing: the registry answers 503 and logs the line
//   IOError             any other refusal, with S3's error code and message
//
// Thread-safe: any number of calls may run at once; each takes its own connection.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/s3/sigv4.h"
#include "regfs/core/status.h"

namespace Poco::Net {
class HTTPClientSession;
class Context;
}  // namespace Poco::Net

namespace regfs::s3 {

struct ClientOptions {
  std::string host;  // the endpoint's host name or address, e.g. "s3.eu-west-1.amazonaws.com"
  uint16_t port = 443;
  bool https = true;
  // Path style sends /bucket/key to host; virtual-hosted style sends /key to bucket.host.
  bool path_style = false;
  std::string bucket;  // REQUIRED
  std::string region = "us-east-1";
  Credentials credentials;
  std::string ca_file;  // PEM bundle of trusted CAs; empty: the system's
  bool skip_verify = false;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds io_timeout{30'000};
  int max_attempts = 5;  // first try included
};

struct Response {
  int status = 0;
  std::string etag;
  uint64_t content_length = 0;
  std::string content_range;
  std::chrono::system_clock::time_point last_modified;
  std::string body;  // the whole body for Send; empty for streams
};

struct Call {
  std::string method;  // GET, HEAD, PUT, POST, DELETE
  std::string key;     // object key, not encoded; empty for the bucket itself
  Pairs query;         // not encoded
  Pairs headers;       // extra headers to send and sign (Range, If-None-Match, x-amz-*)
  std::string_view body;
};

// An object's body being received; owns its connection until destroyed.
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  // Up to `size` bytes; 0 at the end of the body.
  virtual Result<size_t> Read(char* buffer, size_t size) = 0;
};

class S3Client {
 public:
  explicit S3Client(ClientOptions options);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // Sends the call and reads the whole response body (at most `max_body` bytes, else
  // ResourceExhausted). Any 2xx is success; other statuses become the errors above.
  Result<Response> Send(const Call& call, size_t max_body = 16 << 20);
  // Sends a GET and returns its body as a stream once the status is 2xx; `head` gets the
  // response's headers. Retries happen only before the body starts.
  Result<std::unique_ptr<BodyStream>> Open(const Call& call, Response* head);

  // A presigned GET URL of `key`, valid for `ttl`.
  std::string PresignGet(const std::string& key, std::chrono::seconds ttl) const;

  // Requests sent so far (retries included): the cost of registry operations, for tests and
  // metrics.
  uint64_t requests_sent() const { return requests_sent_.load(std::memory_order_relaxed); }

  // "http://host:port/bucket" or "https://bucket.host": for logs (no credentials).
  std::string Describe() const;
  const ClientOptions& options() const { return options_; }

 private:
  struct Prepared;
  Prepared Prepare(const Call& call) const;
  std::unique_ptr<Poco::Net::HTTPClientSession> TakeSession();
  void ReturnSession(std::unique_ptr<Poco::Net::HTTPClientSession> session);
  // One attempt; `stream` set when the caller wants the body as a stream.
  Status Attempt(const Call& call, size_t max_body, Response* out,
                 std::unique_ptr<BodyStream>* stream, bool* retryable);
  template <typename Fn>
  Status WithRetries(const Call& call, Fn attempt);

  ClientOptions options_;
  std::string connect_host_;  // bucket.host in virtual-hosted style
  std::string host_header_;
  std::shared_ptr<void> context_holder_;  // a Poco::Net::Context::Ptr, for HTTPS
  std::mutex mu_;
  std::vector<std::unique_ptr<Poco::Net::HTTPClientSession>> idle_;  // GUARDED_BY(mu_)
  std::atomic<uint64_t> requests_sent_{0};
};

// Hex SHA-256 and base64 MD5 of a body (payload hash; DeleteObjects wants Content-MD5).
std::string Sha256Hex(std::string_view data);
std::string Md5Base64(std::string_view data);

// The Status for a non-2xx response: `what` names the operation ("GET key").
Status ErrorStatus(const Response& response, const std::string& what, const std::string& bucket);

}  // namespace regfs::s3
