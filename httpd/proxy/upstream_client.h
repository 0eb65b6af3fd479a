// UpstreamClient: regfs as a client of the registry a pull-through cache mirrors.
//
// It speaks the Distribution API's read side (manifests by HEAD and GET, blobs by HEAD and
// GET) and authenticates as the upstream asks: anonymously, with Basic credentials, or with
// Docker's token authentication (a Bearer challenge names a realm; the client fetches a
// token there for the repository's pull scope, with the configured credentials if any, and
// reuses it until it expires). Redirects are followed (blobs often live on a CDN), without
// the Authorization header once they leave the upstream's host.
//
// Every call has the configured connect and read timeout, so an upstream that is down or
// stalls fails a request instead of hanging it. Errors say which upstream failed and how,
// and never quote credentials or tokens:
//   NotFound (kManifestUnknown / kBlobUnknown)  the upstream has no such thing (404)
//   ResourceExhausted                           the upstream rate-limits (429)
//   PermissionDenied                            the upstream refused access (401, 403)
//   Unavailable                                 unreachable, timed out, 5xx, or nonsense
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <istream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "regfs/config/config.h"
#include "regfs/core/digest.h"
#include "regfs/core/status.h"

namespace Poco::Net {
class HTTPClientSession;
class HTTPResponse;
}  // namespace Poco::Net

namespace regfs::httpd::proxy {

struct UpstreamManifest {
  Digest digest;
  std::string media_type;
  uint64_t size = 0;
  std::string bytes;  // empty for a HEAD
};

// An upstream answer whose body is still to be read (a blob being downloaded). Holds the
// connection; reading `body()` past `size` bytes is an error of the caller.
class UpstreamBody {
 public:
  UpstreamBody(std::unique_ptr<Poco::Net::HTTPClientSession> session,
               std::unique_ptr<Poco::Net::HTTPResponse> response, std::istream& body,
               uint64_t size);
  ~UpstreamBody();
  std::istream& body() { return body_; }
  uint64_t size() const { return size_; }

 private:
  std::unique_ptr<Poco::Net::HTTPClientSession> session_;
  std::unique_ptr<Poco::Net::HTTPResponse> response_;
  std::istream& body_;
  uint64_t size_;
};

class UpstreamClient {
 public:
  UpstreamClient(Config::Upstream upstream, std::chrono::milliseconds timeout);
  ~UpstreamClient();

  // The upstream's URL, for logs and metrics.
  const std::string& url() const { return upstream_.remote_url; }

  // HEAD (`head`: no bytes) or GET of a manifest of the upstream's repository `repo`, by
  // tag or digest, accepting every manifest type. A GET checks the bytes against the
  // digest asked for (or the one the upstream states) and refuses more than 4 MiB.
  Result<UpstreamManifest> FetchManifest(const std::string& repo, const std::string& reference,
                                         bool head);
  // A page of the repository's tags, as the upstream lists them (`last` and `n` passed on;
  // n 0: the upstream's default). `more` when it links a next page.
  struct TagPage {
    std::vector<std::string> tags;
    bool more = false;
  };
  Result<TagPage> ListTags(const std::string& repo, const std::string& last,
                           std::optional<size_t> n);
  // The size of a blob, by HEAD.
  Result<uint64_t> StatBlob(const std::string& repo, const Digest& digest);
  // Starts downloading a blob. The caller verifies the bytes (the upstream may lie).
  Result<std::unique_ptr<UpstreamBody>> OpenBlob(const std::string& repo, const Digest& digest);

 private:
  struct Answer;
  // Sends a request to the upstream, authenticating as it asks and following redirects;
  // the answer's body is unread.
  Result<std::unique_ptr<Answer>> Send(const std::string& method, const std::string& path,
                                       const std::string& repo, const std::string& accept);
  Result<std::unique_ptr<Answer>> SendFollowingRedirects(const std::string& method,
                                                         const std::string& url,
                                                         const std::string& authorization,
                                                         const std::string& accept);
  // Fetches a token from a Bearer challenge's realm for `scope`.
  Status FetchToken(const std::string& realm, const std::string& service,
                    const std::string& scope);
  std::string CachedToken(const std::string& scope);
  // The error an unexpected status stands for; `what` names the thing asked for.
  Status StatusOf(int http_status, const std::string& what, Status::Reason not_found);

  const Config::Upstream upstream_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  struct Token {
    std::string value;
    std::chrono::steady_clock::time_point expires;
  };
  std::map<std::string, Token> tokens_;  // by scope
  bool basic_ = false;                   // the upstream challenged for Basic credentials
};

}  // namespace regfs::httpd::proxy
