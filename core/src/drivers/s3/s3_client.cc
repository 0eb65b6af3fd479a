#include "drivers/s3/s3_client.h"

#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeParser.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <istream>
#include <random>
#include <thread>

#include "drivers/s3/s3_responses.h"
#include "regfs/core/digest.h"

namespace regfs::s3 {
namespace {

using Poco::Net::HTTPClientSession;
using Poco::Net::HTTPRequest;
using Poco::Net::HTTPResponse;

std::chrono::system_clock::time_point ParseHttpDate(const std::string& text) {
  if (text.empty()) return {};
  try {
    int tz = 0;
    Poco::DateTime dt = Poco::DateTimeParser::parse(Poco::DateTimeFormat::HTTP_FORMAT, text, tz);
    return std::chrono::system_clock::from_time_t(dt.timestamp().epochTime());
  } catch (const Poco::Exception&) {
    return {};
  }
}

bool IsRetryableStatus(int status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

// 100 ms, 200 ms, 400 ms, ... capped at 3.2 s, each scaled by a random 50-100 %: replicas
// that failed together do not retry together.
std::chrono::milliseconds Backoff(int attempt) {
  thread_local std::mt19937 rng(std::random_device{}());
  int64_t base = int64_t{100} << std::min(attempt, 5);
  std::uniform_int_distribution<int64_t> jitter(base / 2, base);
  return std::chrono::milliseconds(jitter(rng));
}

void FillHead(const HTTPResponse& response, Response* out) {
  out->status = static_cast<int>(response.getStatus());
  out->etag = response.get("ETag", "");
  out->content_length =
      response.hasContentLength() ? static_cast<uint64_t>(response.getContentLength64()) : 0;
  out->content_range = response.get("Content-Range", "");
  out->last_modified = ParseHttpDate(response.get("Last-Modified", ""));
}

// Reads a body of at most `max` bytes.
Status ReadBody(std::istream& in, size_t max, std::string* out) {
  char buf[65536];
  while (in) {
    in.read(buf, sizeof buf);
    size_t got = static_cast<size_t>(in.gcount());
    if (got == 0) break;
    if (out->size() + got > max) {
      return Status::ResourceExhausted("the object store's answer is larger than " +
                                       std::to_string(max) + " bytes");
    }
    out->append(buf, got);
  }
  if (in.bad()) return Status::Unavailable("the object store's answer was cut off");
  return Status::Ok();
}

class SessionBody final : public BodyStream {
 public:
  SessionBody(std::unique_ptr<HTTPClientSession> session, std::istream& in, uint64_t length)
      : session_(std::move(session)), in_(in), remaining_(length) {}
  Result<size_t> Read(char* buffer, size_t size) override {
    if (remaining_ == 0) return size_t{0};
    try {
      in_.read(buffer, static_cast<std::streamsize>(std::min<uint64_t>(size, remaining_)));
    } catch (const Poco::Exception& e) {
      return Status::Unavailable("reading from the object store failed: " + e.displayText());
    }
    size_t got = static_cast<size_t>(in_.gcount());
    if (got == 0) {
      // Without a length (chunked transfer) the end of the stream is the end of the body.
      if (remaining_ == UINT64_MAX) return size_t{0};
      return Status::Unavailable("the object store cut the body off early");
    }
    if (remaining_ != UINT64_MAX) remaining_ -= got;
    return got;
  }

 private:
  // The connection is dropped with the stream, not reused: what is left of the body may
  // be large, and reading it out only to reuse a socket is not worth it.
  std::unique_ptr<HTTPClientSession> session_;
  std::istream& in_;
  uint64_t remaining_;
};

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return LowerHex(std::string_view(reinterpret_cast<const char*>(md), sizeof md));
}

std::string Md5Base64(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  unsigned char b64[64];
  int n = EVP_EncodeBlock(b64, md, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
}

Status ErrorStatus(const Response& response, const std::string& what, const std::string& bucket) {
  ErrorBody error = ParseError(response.body);
  std::string detail = " (HTTP " + std::to_string(response.status);
  if (!error.code.empty()) detail += " " + error.code;
  if (!error.message.empty()) detail += ": " + error.message;
  detail += ")";
  switch (response.status) {
    case 404:
      if (error.code == "NoSuchBucket") {
        return Status::Unavailable("the object store has no bucket " + bucket + detail);
      }
      return Status::NotFound(what + ": not found" + detail);
    case 304:
    case 412:
      return Status::FailedPrecondition(what + ": condition not met" + detail);
    case 416:
      return Status::OutOfRange(what + ": range outside the object" + detail);
    case 401:
    case 403:
      return Status::Unavailable(what + ": the object store refused the credentials or the"
                                 " bucket policy" + detail);
    default:
      if (response.status >= 500 || response.status == 429) {
        return Status::Unavailable(what + ": the object store keeps failing" + detail);
      }
      return Status::IOError(what + ": refused by the object store" + detail);
  }
}

struct S3Client::Prepared {
  HTTPRequest request;
  std::string what;
};

S3Client::S3Client(ClientOptions options) : options_(std::move(options)) {
  connect_host_ = options_.path_style ? options_.host : options_.bucket + "." + options_.host;
  const bool default_port = options_.port == (options_.https ? 443 : 80);
  host_header_ = connect_host_ + (default_port ? "" : ":" + std::to_string(options_.port));
  if (options_.https) {
    auto* ptr = new Poco::Net::Context::Ptr(new Poco::Net::Context(
        Poco::Net::Context::TLS_CLIENT_USE, "", "", options_.ca_file,
        options_.skip_verify ? Poco::Net::Context::VERIFY_NONE : Poco::Net::Context::VERIFY_RELAXED,
        9, options_.ca_file.empty()));
    context_holder_ = std::shared_ptr<void>(ptr, [](void* p) {
      delete static_cast<Poco::Net::Context::Ptr*>(p);
    });
  }
}

S3Client::~S3Client() = default;

std::string S3Client::Describe() const {
  return std::string(options_.https ? "https://" : "http://") + host_header_ +
         (options_.path_style ? "/" + options_.bucket : "");
}

std::unique_ptr<HTTPClientSession> S3Client::TakeSession() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto s = std::move(idle_.back());
      idle_.pop_back();
      return s;
    }
  }
  std::unique_ptr<HTTPClientSession> s;
  if (options_.https) {
    s = std::make_unique<Poco::Net::HTTPSClientSession>(
        connect_host_, options_.port, *static_cast<Poco::Net::Context::Ptr*>(context_holder_.get()));
  } else {
    s = std::make_unique<HTTPClientSession>(connect_host_, options_.port);
  }
  auto ms = [](std::chrono::milliseconds d) { return Poco::Timespan(d.count() * 1000); };
  s->setTimeout(ms(options_.connect_timeout), ms(options_.io_timeout), ms(options_.io_timeout));
  s->setKeepAlive(true);
  return s;
}

void S3Client::ReturnSession(std::unique_ptr<HTTPClientSession> session) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < 64) idle_.push_back(std::move(session));
}

S3Client::Prepared S3Client::Prepare(const Call& call) const {
  SigningRequest signing;
  signing.method = call.method;
  signing.path = options_.path_style ? "/" + options_.bucket + "/" + call.key : "/" + call.key;
  signing.query = call.query;
  signing.payload_hash = call.body.empty() ? std::string(kEmptyPayloadHash) : Sha256Hex(call.body);
  signing.headers = call.headers;
  signing.headers.emplace_back("Host", host_header_);
  signing.headers.emplace_back("x-amz-content-sha256", signing.payload_hash);
  SigningScope scope{options_.region, "s3", std::chrono::system_clock::now()};
  std::string authorization = SignHeaders(&signing, options_.credentials, scope);

  std::string uri = UriEncode(signing.path, true);
  if (!call.query.empty()) uri += "?" + CanonicalQueryString(call.query);
  Prepared p{HTTPRequest(call.method, uri, HTTPRequest::HTTP_1_1),
             call.method + " " + (call.key.empty() ? options_.bucket : call.key)};
  for (const auto& [name, value] : signing.headers) p.request.set(name, value);
  p.request.set("Authorization", authorization);
  if (call.method == "PUT" || call.method == "POST") {
    p.request.setContentLength64(static_cast<Poco::Int64>(call.body.size()));
  }
  return p;
}

Status S3Client::Attempt(const Call& call, size_t max_body, Response* out,
                         std::unique_ptr<BodyStream>* stream, bool* retryable) {
  *retryable = false;
  Prepared p = Prepare(call);
  auto session = TakeSession();
  HTTPResponse response;
  std::istream* in = nullptr;
  try {
    requests_sent_.fetch_add(1, std::memory_order_relaxed);
    std::ostream& os = session->sendRequest(p.request);
    if (!call.body.empty()) os.write(call.body.data(), static_cast<std::streamsize>(call.body.size()));
    in = &session->receiveResponse(response);
  } catch (const Poco::Exception& e) {
    *retryable = true;
    return Status::Unavailable(p.what + ": the object store at " + Describe() +
                               " did not answer: " + e.displayText());
  }
  *out = Response{};
  FillHead(response, out);
  const bool success = out->status >= 200 && out->status < 300;
  try {
    if (success && stream != nullptr) {
      uint64_t length = response.hasContentLength() ? out->content_length : UINT64_MAX;
      *stream = std::make_unique<SessionBody>(std::move(session), *in, length);
      return Status::Ok();
    }
    Status read = ReadBody(*in, success ? max_body : 1 << 20, &out->body);
    if (!read.ok()) {
      *retryable = read.code() == Status::Code::kUnavailable;
      return read.WithContext(p.what);
    }
  } catch (const Poco::Exception& e) {
    *retryable = true;
    return Status::Unavailable(p.what + ": reading the object store's answer failed: " +
                               e.displayText());
  }
  if (response.getKeepAlive()) ReturnSession(std::move(session));
  if (success) return Status::Ok();
  ErrorBody error = ParseError(out->body);
  *retryable = IsRetryableStatus(out->status) || error.code == "SlowDown" ||
               error.code == "RequestTimeout" || error.code == "InternalError";
  return ErrorStatus(*out, p.what, options_.bucket);
}

template <typename Fn>
Status S3Client::WithRetries(const Call& call, Fn attempt) {
  (void)call;
  // Retries fit in one I/O timeout: a store that stopped answering costs a request one
  // timeout (plus the attempt under way), not one per attempt.
  const auto deadline = std::chrono::steady_clock::now() + options_.io_timeout;
  Status last;
  for (int i = 0; i < std::max(1, options_.max_attempts); ++i) {
    if (i > 0) {
      auto pause = Backoff(i - 1);
      if (std::chrono::steady_clock::now() + pause > deadline) break;
      std::this_thread::sleep_for(pause);
    }
    bool retryable = false;
    last = attempt(&retryable);
    if (last.ok() || !retryable) return last;
  }
  return last;
}

Result<Response> S3Client::Send(const Call& call, size_t max_body) {
  Response out;
  Status s = WithRetries(call, [&](bool* retryable) {
    return Attempt(call, max_body, &out, nullptr, retryable);
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::unique_ptr<BodyStream>> S3Client::Open(const Call& call, Response* head) {
  std::unique_ptr<BodyStream> stream;
  Status s = WithRetries(call, [&](bool* retryable) {
    return Attempt(call, 0, head, &stream, retryable);
  });
  if (!s.ok()) return s;
  return stream;
}

std::string S3Client::PresignGet(const std::string& key, std::chrono::seconds ttl) const {
  SigningRequest signing;
  signing.method = "GET";
  signing.path = options_.path_style ? "/" + options_.bucket + "/" + key : "/" + key;
  signing.headers = {{"Host", host_header_}};
  signing.payload_hash = std::string(kUnsignedPayload);
  SigningScope scope{options_.region, "s3", std::chrono::system_clock::now()};
  Presign(&signing, options_.credentials, scope, ttl);
  return std::string(options_.https ? "https://" : "http://") + host_header_ +
         UriEncode(signing.path, true) + "?" + CanonicalQueryString(signing.query);
}

}  // namespace regfs::s3
