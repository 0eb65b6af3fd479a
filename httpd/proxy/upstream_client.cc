#include "proxy/upstream_client.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPBasicCredentials.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/URI.h>

#include "proxy/auth_challenge.h"
#include "regfs/core/manifest.h"

namespace regfs::httpd::proxy {

namespace {

using Poco::Net::HTTPResponse;

// What a pull asks for: every manifest type, so a tag resolves to the same digest
// whichever client asks (an index when there is one), as docker and registry:2 ask.
constexpr char kManifestAccept[] =
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";
constexpr int kMaxRedirects = 5;
constexpr size_t kMaxTokenAnswer = 64 * 1024;
constexpr size_t kMaxTagListBytes = 16 * 1024 * 1024;
// A token is dropped this long before it expires: a request must not carry one that dies
// on its way.
constexpr std::chrono::seconds kTokenMargin{10};

Poco::Timespan Span(std::chrono::milliseconds d) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(d.count()) * 1000);
}

std::unique_ptr<Poco::Net::HTTPClientSession> SessionFor(const Poco::URI& uri,
                                                         std::chrono::milliseconds timeout) {
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  if (uri.getScheme() == "https") {
    // The system's CAs, and the peer's name checked against its certificate.
    static const Poco::Net::Context::Ptr context =
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", "", "",
                               Poco::Net::Context::VERIFY_RELAXED, 9, true);
    session = std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort(),
                                                              context);
  } else {
    session = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
  }
  session->setTimeout(Span(timeout), Span(timeout), Span(timeout));
  session->setKeepAlive(false);
  return session;
}

// Reads at most `limit` bytes of a body; false when there were more.
bool ReadBounded(std::istream& in, size_t limit, std::string* out) {
  char buf[65536];
  while (in && out->size() <= limit) {
    in.read(buf, sizeof buf);
    out->append(buf, static_cast<size_t>(in.gcount()));
  }
  return out->size() <= limit;
}

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

struct UpstreamClient::Answer {
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  std::unique_ptr<HTTPResponse> response = std::make_unique<HTTPResponse>();
  std::istream* body = nullptr;
  int status() const { return static_cast<int>(response->getStatus()); }
};

UpstreamBody::UpstreamBody(std::unique_ptr<Poco::Net::HTTPClientSession> session,
                           std::unique_ptr<Poco::Net::HTTPResponse> response, std::istream& body,
                           uint64_t size)
    : session_(std::move(session)), response_(std::move(response)), body_(body), size_(size) {}

UpstreamBody::~UpstreamBody() = default;

UpstreamClient::UpstreamClient(Config::Upstream upstream, std::chrono::milliseconds timeout)
    : upstream_(std::move(upstream)), timeout_(timeout) {}

UpstreamClient::~UpstreamClient() = default;

Status UpstreamClient::StatusOf(int http_status, const std::string& what,
                                Status::Reason not_found) {
  const std::string from = "upstream " + upstream_.remote_url;
  if (http_status == 404) return Status::NotFound(what + " is not known to " + from, not_found);
  if (http_status == 429) {
    return Status::ResourceExhausted(from + " is rate-limiting (429 Too Many Requests) " + what);
  }
  if (http_status == 401 || http_status == 403) {
    // Docker Hub answers 401 for a repository that does not exist, too.
    return Status::PermissionDenied(from + " refused access to " + what + " (" +
                                    std::to_string(http_status) +
                                    "): it may not exist there, or the proxy's username and "
                                    "password may not grant it");
  }
  return Status::Unavailable(from + " answered " + std::to_string(http_status) + " for " + what);
}

std::string UpstreamClient::CachedToken(const std::string& scope) {
  std::lock_guard lock(mu_);
  auto it = tokens_.find(scope);
  if (it == tokens_.end()) return "";
  if (std::chrono::steady_clock::now() >= it->second.expires) {
    tokens_.erase(it);
    return "";
  }
  return it->second.value;
}

Status UpstreamClient::FetchToken(const std::string& realm, const std::string& service,
                                  const std::string& scope) {
  const std::string from = "token server of upstream " + upstream_.remote_url;
  if (!realm.starts_with("https://") && !realm.starts_with("http://")) {
    return Status::Unavailable(from + ": the challenge names no http(s) realm");
  }
  try {
    Poco::URI uri(realm);
    if (!service.empty()) uri.addQueryParameter("service", service);
    uri.addQueryParameter("scope", scope);
    if (!upstream_.username.empty()) uri.addQueryParameter("account", upstream_.username);
    auto session = SessionFor(uri, timeout_);
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, uri.getPathEtc(),
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    if (!upstream_.username.empty()) {
      Poco::Net::HTTPBasicCredentials(upstream_.username, upstream_.password)
          .authenticate(request);
    }
    session->sendRequest(request);
    HTTPResponse response;
    std::istream& body = session->receiveResponse(response);
    const int status = static_cast<int>(response.getStatus());
    if (status != 200) {
      if (status == 401 || status == 403) {
        return Status::PermissionDenied(from + " refused the credentials (" +
                                        std::to_string(status) +
                                        "): check the proxy's username and password");
      }
      return Status::Unavailable(from + " answered " + std::to_string(status));
    }
    std::string text;
    if (!ReadBounded(body, kMaxTokenAnswer, &text)) {
      return Status::Unavailable(from + " sent an answer larger than 64 KiB");
    }
    Poco::JSON::Parser parser;
    auto object = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
    std::string token = object->optValue<std::string>("token", "");
    if (token.empty()) token = object->optValue<std::string>("access_token", "");
    if (token.empty()) return Status::Unavailable(from + " sent no token");
    // The token spec's default lifetime is 60 seconds.
    int expires_in = object->optValue<int>("expires_in", 60);
    if (expires_in < 0) expires_in = 0;
    std::lock_guard lock(mu_);
    tokens_[scope] = {token, std::chrono::steady_clock::now() + std::chrono::seconds(expires_in) -
                                 kTokenMargin};
    return Status::Ok();
  } catch (const Poco::Exception& e) {
    return Status::Unavailable(from + ": " + e.displayText());
  } catch (const std::exception& e) {
    return Status::Unavailable(from + " sent an answer that is not a token: " + e.what());
  }
}

Result<std::unique_ptr<UpstreamClient::Answer>> UpstreamClient::SendFollowingRedirects(
    const std::string& method, const std::string& url, const std::string& authorization,
    const std::string& accept) {
  Poco::URI uri(url);
  const std::string upstream_host = uri.getHost();
  std::string current_method = method;
  for (int hop = 0;; ++hop) {
    auto answer = std::make_unique<Answer>();
    answer->session = SessionFor(uri, timeout_);
    Poco::Net::HTTPRequest request(current_method, uri.getPathEtc(),
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    request.set("User-Agent", "regfs-proxy");
    if (!accept.empty()) request.set("Accept", accept);
    // Credentials go to the upstream only, never to where it redirects.
    if (!authorization.empty() && uri.getHost() == upstream_host) {
      request.set("Authorization", authorization);
    }
    answer->session->sendRequest(request);
    answer->body = &answer->session->receiveResponse(*answer->response);
    if (!IsRedirect(answer->status())) return answer;
    if (hop >= kMaxRedirects) {
      return Status::Unavailable("upstream " + upstream_.remote_url + " redirected more than " +
                                 std::to_string(kMaxRedirects) + " times");
    }
    const std::string location = answer->response->get("Location", "");
    if (location.empty()) {
      return Status::Unavailable("upstream " + upstream_.remote_url +
                                 " sent a redirect without a Location");
    }
    Poco::URI next(uri, location);
    if (next.getScheme() != "http" && next.getScheme() != "https") {
      return Status::Unavailable("upstream " + upstream_.remote_url +
                                 " redirected to a URL that is not http(s)");
    }
    uri = next;
    if (answer->status() == 303) current_method = Poco::Net::HTTPRequest::HTTP_GET;
  }
}

Result<std::unique_ptr<UpstreamClient::Answer>> UpstreamClient::Send(const std::string& method,
                                                                     const std::string& path,
                                                                     const std::string& repo,
                                                                     const std::string& accept) {
  const std::string url = upstream_.remote_url + path;
  const std::string scope = "repository:" + repo + ":pull";
  try {
    for (int attempt = 0;; ++attempt) {
      std::string authorization;
      bool basic;
      {
        std::lock_guard lock(mu_);
        basic = basic_;
      }
      if (basic) {
        Poco::Net::HTTPRequest scratch;
        Poco::Net::HTTPBasicCredentials(upstream_.username, upstream_.password)
            .authenticate(scratch);
        authorization = scratch.get("Authorization");
      } else if (std::string token = CachedToken(scope); !token.empty()) {
        authorization = "Bearer " + token;
      }
      auto answer = SendFollowingRedirects(method, url, authorization, accept);
      if (!answer.ok() || (*answer)->status() != 401 || attempt > 0) return answer;
      // Challenged: learn how the upstream wants to be asked, then ask once more.
      auto challenge = ParseAuthChallenge((*answer)->response->get("WWW-Authenticate", ""));
      if (challenge && challenge->scheme == "bearer") {
        {
          std::lock_guard lock(mu_);
          tokens_.erase(scope);
        }
        REGFS_RETURN_IF_ERROR(FetchToken(challenge->Param("realm"), challenge->Param("service"),
                                         scope));
      } else if (challenge && challenge->scheme == "basic" && !upstream_.username.empty()) {
        std::lock_guard lock(mu_);
        basic_ = true;
      } else {
        return answer;  // nothing to try: the caller reports the 401
      }
    }
  } catch (const Poco::Exception& e) {
    return Status::Unavailable("upstream " + upstream_.remote_url + ": " + e.displayText());
  }
}

Result<UpstreamManifest> UpstreamClient::FetchManifest(const std::string& repo,
                                                       const std::string& reference, bool head) {
  const std::string what = "manifest " + repo + ":" + reference;
  auto answer = Send(head ? "HEAD" : "GET", "/v2/" + repo + "/manifests/" + reference, repo,
                     kManifestAccept);
  if (!answer.ok()) return answer.status();
  Answer& a = **answer;
  if (a.status() != 200) return StatusOf(a.status(), what, Status::Reason::kManifestUnknown);
  std::string media_type = a.response->getContentType();
  if (auto semicolon = media_type.find(';'); semicolon != std::string::npos) {
    media_type.resize(semicolon);
  }
  std::string bytes;
  std::optional<Digest> stated;
  if (std::string header = a.response->get("Docker-Content-Digest", ""); !header.empty()) {
    auto parsed = Digest::Parse(header);
    if (!parsed.ok()) {
      return Status::Unavailable("upstream " + upstream_.remote_url +
                                 " sent an invalid Docker-Content-Digest for " + what);
    }
    stated = *parsed;
  }
  std::optional<Digest> asked;
  if (auto parsed = Digest::Parse(reference); parsed.ok()) asked = *parsed;
  try {
    if (head) {
      if (!stated && !asked) {
        return Status::Unavailable("upstream " + upstream_.remote_url +
                                   " sent no Docker-Content-Digest for " + what);
      }
      uint64_t size = 0;
      if (a.response->hasContentLength()) size = static_cast<uint64_t>(a.response->getContentLength64());
      return UpstreamManifest{asked ? *asked : *stated, media_type, size, ""};
    }
    if (a.response->hasContentLength() &&
        a.response->getContentLength64() > static_cast<Poco::Int64>(kMaxManifestBytes)) {
      return Status::Unavailable("upstream " + upstream_.remote_url + " sent " + what +
                                 " larger than 4 MiB");
    }
    if (!ReadBounded(*a.body, kMaxManifestBytes, &bytes)) {
      return Status::Unavailable("upstream " + upstream_.remote_url + " sent " + what +
                                 " larger than 4 MiB");
    }
    if (a.response->hasContentLength() &&
        static_cast<Poco::Int64>(bytes.size()) != a.response->getContentLength64()) {
      return Status::Unavailable("upstream " + upstream_.remote_url + " cut off " + what);
    }
  } catch (const Poco::Exception& e) {
    return Status::Unavailable("upstream " + upstream_.remote_url + ": " + e.displayText());
  }
  // The bytes must be what was asked for: by digest, that digest; by tag, the digest the
  // upstream states (the sha256 of the bytes when it states none).
  const Digest expected = asked ? *asked : stated ? *stated : Digest::Sha256Of(bytes);
  DigestHasher check(expected.algorithm());
  check.Update(bytes.data(), bytes.size());
  if (!(check.Current() == expected)) {
    return Status::Unavailable("upstream " + upstream_.remote_url + " sent " + what +
                               " whose content does not match digest " + expected.ToString());
  }
  const uint64_t size = bytes.size();
  return UpstreamManifest{expected, std::move(media_type), size, std::move(bytes)};
}

Result<UpstreamClient::TagPage> UpstreamClient::ListTags(const std::string& repo,
                                                         const std::string& last,
                                                         std::optional<size_t> n) {
  const std::string what = "the tags of " + repo;
  Poco::URI path("/v2/" + repo + "/tags/list");
  if (n) path.addQueryParameter("n", std::to_string(*n));
  if (!last.empty()) path.addQueryParameter("last", last);
  auto answer = Send("GET", path.getPathEtc(), repo, "application/json");
  if (!answer.ok()) return answer.status();
  Answer& a = **answer;
  if (a.status() != 200) return StatusOf(a.status(), what, Status::Reason::kNameUnknown);
  try {
    std::string text;
    if (!ReadBounded(*a.body, kMaxTagListBytes, &text)) {
      return Status::Unavailable("upstream " + upstream_.remote_url + " sent " + what +
                                 " larger than 16 MiB");
    }
    Poco::JSON::Parser parser;
    auto object = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
    TagPage page;
    if (auto tags = object->getArray("tags")) {
      for (size_t i = 0; i < tags->size(); ++i) page.tags.push_back(tags->getElement<std::string>(i));
    }
    page.more = a.response->get("Link", "").find("rel=\"next\"") != std::string::npos;
    return page;
  } catch (const Poco::Exception& e) {
    return Status::Unavailable("upstream " + upstream_.remote_url + " sent " + what +
                               " that does not parse: " + e.displayText());
  } catch (const std::exception& e) {
    return Status::Unavailable("upstream " + upstream_.remote_url + " sent " + what +
                               " that does not parse: " + e.what());
  }
}

Result<uint64_t> UpstreamClient::StatBlob(const std::string& repo, const Digest& digest) {
  const std::string what = "blob " + digest.ToString() + " of " + repo;
  auto answer = Send("HEAD", "/v2/" + repo + "/blobs/" + digest.ToString(), repo, "");
  if (!answer.ok()) return answer.status();
  Answer& a = **answer;
  if (a.status() != 200) return StatusOf(a.status(), what, Status::Reason::kBlobUnknown);
  if (!a.response->hasContentLength()) {
    return Status::Unavailable("upstream " + upstream_.remote_url + " sent no size for " + what);
  }
  return static_cast<uint64_t>(a.response->getContentLength64());
}

Result<std::unique_ptr<UpstreamBody>> UpstreamClient::OpenBlob(const std::string& repo,
                                                               const Digest& digest) {
  const std::string what = "blob " + digest.ToString() + " of " + repo;
  auto answer = Send("GET", "/v2/" + repo + "/blobs/" + digest.ToString(), repo, "");
  if (!answer.ok()) return answer.status();
  Answer& a = **answer;
  if (a.status() != 200) return StatusOf(a.status(), what, Status::Reason::kBlobUnknown);
  if (!a.response->hasContentLength() || a.response->getContentLength64() < 0) {
    // Clients are told the size before the first byte; a blob of unknown size cannot be.
    return Status::Unavailable("upstream " + upstream_.remote_url + " sent no size for " + what);
  }
  const auto size = static_cast<uint64_t>(a.response->getContentLength64());
  return std::make_unique<UpstreamBody>(std::move(a.session), std::move(a.response), *a.body,
                                        size);
}

}  // namespace regfs::httpd::proxy
