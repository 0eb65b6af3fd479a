// The pull-through cache's pieces: challenge parsing, routing by prefix, and the cache itself
// against a small upstream served in this process (counting what it is asked, and able to
// lie, stall, fail and demand tokens), over a registry in memory.
#include <Poco/Base64Decoder.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "logger.h"
#include "proxy/auth_challenge.h"
#include "proxy/pull_through_cache.h"
#include "proxy/upstream_routes.h"

namespace regfs::httpd::proxy {
namespace {

using namespace std::chrono_literals;

TEST(AuthChallenge, DockerHubsBearerChallenge) {
  auto c = ParseAuthChallenge(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull")");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->Param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ(c->Param("service"), "registry.docker.io");
  EXPECT_EQ(c->Param("scope"), "repository:library/debian:pull");
}

TEST(AuthChallenge, SpacingCaseEscapesAndSeveralChallenges) {
  auto c = ParseAuthChallenge(R"(  BASIC   Realm = "a \"quoted\" realm" , charset=UTF-8)");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->scheme, "basic");
  EXPECT_EQ(c->Param("realm"), R"(a "quoted" realm)");
  EXPECT_EQ(c->Param("charset"), "UTF-8");
  auto first = ParseAuthChallenge(R"(Basic realm="x", Bearer realm="y")");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->scheme, "basic");
  EXPECT_EQ(first->Param("realm"), "x");
  EXPECT_EQ(first->params.size(), 1u);
  for (const char* bad : {"", "   ", R"(Bearer realm="unterminated)", "Bearer realm=x y=z",
                          "Bearer =x"}) {
    EXPECT_FALSE(ParseAuthChallenge(bad)) << bad;
  }
}

TEST(UpstreamRoutes, LongestPrefixDecidesAndPrefixesThemselvesAreOrdinary) {
  Config::Proxy proxy;
  proxy.upstreams = {{.prefix = "hub/library", .remote_url = "http://a"},
                     {.prefix = "hub", .remote_url = "https://registry-1.docker.io"},
                     {.prefix = "ghcr", .remote_url = "https://ghcr.io", .ttl = 0ms}};
  auto r = RouteToUpstream(proxy, "hub/library/debian");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->upstream->remote_url, "http://a");
  EXPECT_EQ(r->remote_repository, "debian");
  // Docker Hub's official images live under library/.
  r = RouteToUpstream(proxy, "hub/alpine");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->remote_repository, "library/alpine");
  r = RouteToUpstream(proxy, "hub/bitnami/redis");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->remote_repository, "bitnami/redis");
  EXPECT_FALSE(RouteToUpstream(proxy, "hub"));
  EXPECT_FALSE(RouteToUpstream(proxy, "hubble/app"));
  EXPECT_FALSE(RouteToUpstream(proxy, "mine/app"));

  auto expiry = CacheExpiry(proxy);
  auto cutoff = expiry("hub/alpine");
  ASSERT_TRUE(cutoff);
  EXPECT_LT(*cutoff, std::chrono::system_clock::now() - std::chrono::hours(167));
  EXPECT_FALSE(expiry("ghcr/owner/app"));  // ttl 0: kept forever
  EXPECT_FALSE(expiry("mine/app"));

  Config::Proxy whole;
  whole.upstreams = {{.prefix = "", .remote_url = "http://up"}};
  r = RouteToUpstream(whole, "team/app");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->remote_repository, "team/app");
}

// ---- a small upstream registry

constexpr char kIndexType[] = "application/vnd.oci.image.index.v1+json";

struct Upstream {
  std::string manifest;  // served for tag "1" and by its digest
  std::string blob;
  std::atomic<int> manifest_heads{0}, manifest_gets{0}, blob_gets{0}, blob_heads{0}, token_gets{0};
  std::atomic<bool> corrupt{false};   // the blob's last byte flipped
  std::atomic<int> fail_with{0};      // every /v2 request answers this status
  std::atomic<bool> tokens{false};    // demand a Bearer token from /token, for alice:pw
  std::chrono::milliseconds chunk_delay{0};
  std::atomic<bool> stopping{false};
  std::atomic<int> active{0};  // requests being answered: the test waits for none
  // Sleeps, but not past the test's end.
  void Pause() const {
    for (auto left = chunk_delay; left.count() > 0 && !stopping; left -= 10ms) {
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(left, 10ms));
    }
  }
};

class UpstreamHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit UpstreamHandler(Upstream& u) : u_(u) {}
  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& res) override {
    struct Active {
      explicit Active(std::atomic<int>& n) : n_(n) { ++n_; }
      ~Active() { --n_; }
      std::atomic<int>& n_;
    } active(u_.active);
    const std::string uri = req.getURI();
    if (uri.starts_with("/token")) {
      ++u_.token_gets;
      if (req.get("Authorization", "") != "Basic YWxpY2U6cHc=") {  // alice:pw
        res.setStatus(Poco::Net::HTTPResponse::HTTP_UNAUTHORIZED);
        res.send();
        return;
      }
      res.setContentType("application/json");
      res.send() << R"({"token":"tok-1","expires_in":300})";
      return;
    }
    if (u_.tokens && req.get("Authorization", "") != "Bearer tok-1") {
      res.set("WWW-Authenticate", "Bearer realm=\"http://" + req.getHost() +
                                      "/token\",service=\"test\",scope=\"repository:app:pull\"");
      res.setStatus(Poco::Net::HTTPResponse::HTTP_UNAUTHORIZED);
      res.send();
      return;
    }
    if (int status = u_.fail_with.load(); status != 0) {
      res.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
      res.send();
      return;
    }
    if (uri.starts_with("/v2/app/tags/list")) {
      res.setContentType("application/json");
      if (uri.find("last=1") != std::string::npos) {
        res.send() << R"({"name":"app","tags":["2"]})";
      } else {
        res.set("Link", "</v2/app/tags/list?last=1&n=1>; rel=\"next\"");
        res.send() << R"({"name":"app","tags":["1"]})";
      }
      return;
    }
    const std::string manifest_digest = Digest::Sha256Of(u_.manifest).ToString();
    if (uri == "/v2/app/manifests/1" || uri == "/v2/app/manifests/" + manifest_digest) {
      res.set("Docker-Content-Digest", manifest_digest);
      res.setContentType(kIndexType);
      res.setContentLength64(static_cast<Poco::Int64>(u_.manifest.size()));
      if (req.getMethod() == "HEAD") {
        ++u_.manifest_heads;
        res.send();
      } else {
        ++u_.manifest_gets;
        res.send() << u_.manifest;
      }
      return;
    }
    if (uri.ends_with("/blobs/" + Digest::Sha256Of(u_.blob).ToString())) {
      if (req.getMethod() == "HEAD") {
        ++u_.blob_heads;
        res.setContentLength64(static_cast<Poco::Int64>(u_.blob.size()));
        res.send();
        return;
      }
      ++u_.blob_gets;
      std::string bytes = u_.blob;
      if (u_.corrupt) bytes.back() ^= 1;
      res.setContentLength64(static_cast<Poco::Int64>(bytes.size()));
      std::ostream& out = res.send();
      for (size_t at = 0; at < bytes.size() && out; at += 65536) {
        out.write(bytes.data() + at, static_cast<std::streamsize>(std::min<size_t>(65536, bytes.size() - at)));
        out.flush();
        u_.Pause();
      }
      return;
    }
    res.setStatus(Poco::Net::HTTPResponse::HTTP_NOT_FOUND);
    res.send();
  }

 private:
  Upstream& u_;
};

class UpstreamFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit UpstreamFactory(Upstream& u) : u_(u) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new UpstreamHandler(u_);
  }

 private:
  Upstream& u_;
};

class PullThroughCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string blob(2 * 1024 * 1024 + 17, '\0');
    for (size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>((i * 2654435761u) >> 13);
    upstream_.blob = blob;
    const std::string blob_digest = Digest::Sha256Of(blob).ToString();
    upstream_.manifest = std::string(R"({"schemaVersion":2,"mediaType":")") + kIndexType +
                         R"(","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                         blob_digest + R"(","size":10}]})";
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(32);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new UpstreamFactory(upstream_),
                                                      Poco::Net::ServerSocket(0), params);
    server_->start();
    config_.upstreams = {{.prefix = "up",
                          .remote_url = "http://127.0.0.1:" + std::to_string(server_->port()),
                          .username = "alice",
                          .password = "pw",
                          .tag_check_interval = 300ms}};
    config_.timeout = 2s;
    config_.spool_directory = spool_;
    auto registry = Registry::Open({.driver = NewInMemoryDriver()});
    ASSERT_TRUE(registry.ok());
    registry_ = std::move(*registry);
    cache_ = std::make_unique<PullThroughCache>(config_, *registry_, logger_, &metrics_);
    ASSERT_TRUE(cache_->Prepare().ok());
  }
  void TearDown() override {
    upstream_.stopping = true;
    cache_.reset();
    server_->stopAll(true);
    // The server's threads outlive it: none may still be answering when the test ends.
    for (int i = 0; i < 500 && upstream_.active.load() > 0; ++i) std::this_thread::sleep_for(10ms);
    ::rmdir(spool_.c_str());
  }
  Digest BlobDigest() const { return Digest::Sha256Of(upstream_.blob); }
  // Reads a fetch from the start, as a client would; the bytes' digest, or the error.
  Result<Digest> ReadAll(const std::shared_ptr<BlobFetch>& fetch) {
    auto reader = fetch->NewReader(5s);
    DigestHasher hasher("sha256");
    uint64_t total = 0;
    char buf[100000];
    while (total < fetch->size()) {
      auto n = reader->Read(buf, sizeof buf);
      if (!n.ok()) return n.status();
      if (*n == 0) return Status::IOError("short");
      hasher.Update(buf, *n);
      total += *n;
    }
    return hasher.Current();
  }

  Upstream upstream_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  Config::Proxy config_;
  const std::string spool_ = "/tmp/regfs-proxy-test-" + std::to_string(::getpid());
  Logger logger_{"error", false, {}};
  Metrics metrics_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<PullThroughCache> cache_;
};

TEST_F(PullThroughCacheTest, ConcurrentPullsOfAMissShareOneFetch) {
  upstream_.chunk_delay = 5ms;  // the fetch is still running while the others join it
  constexpr int kClients = 8;
  std::vector<std::thread> clients;
  std::atomic<int> right{0}, missed{0};
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&] {
      CacheOutcome outcome;
      auto fetch = cache_->FetchBlob("up/app", BlobDigest(), &outcome);
      if (!fetch.ok()) return;
      if (!*fetch) {  // it finished before this client asked: stored
        if (registry_->StatBlob("up/app", BlobDigest()).ok()) ++right;
        return;
      }
      ++missed;
      auto digest = ReadAll(*fetch);
      if (digest.ok() && *digest == BlobDigest()) ++right;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(right.load(), kClients);
  EXPECT_GE(missed.load(), 1);
  EXPECT_EQ(upstream_.blob_gets.load(), 1);
  EXPECT_TRUE(registry_->StatBlob("up/app", BlobDigest()).ok());
  CacheOutcome outcome;
  auto again = cache_->FetchBlob("up/app", BlobDigest(), &outcome);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, nullptr);
  EXPECT_EQ(outcome, CacheOutcome::kHit);
}

TEST_F(PullThroughCacheTest, ABlobStoredForAnotherRepositoryCostsTheUpstreamAHeadOnly) {
  CacheOutcome outcome;
  auto fetch = cache_->FetchBlob("up/app", BlobDigest(), &outcome);
  ASSERT_TRUE(fetch.ok() && *fetch);
  ASSERT_TRUE(ReadAll(*fetch).ok());
  auto shared = cache_->FetchBlob("up/base-user", BlobDigest(), &outcome);
  ASSERT_TRUE(shared.ok()) << shared.status().ToString();
  EXPECT_EQ(*shared, nullptr);  // linked: read it from the registry
  EXPECT_EQ(outcome, CacheOutcome::kHit);
  EXPECT_EQ(upstream_.blob_gets.load(), 1);
  EXPECT_EQ(upstream_.blob_heads.load(), 1);
  EXPECT_TRUE(registry_->StatBlob("up/base-user", BlobDigest()).ok());
}

TEST_F(PullThroughCacheTest, ABlobNotMatchingItsDigestIsNeverStoredNorWhollyServed) {
  upstream_.corrupt = true;
  for (int attempt = 1; attempt <= 2; ++attempt) {
    CacheOutcome outcome;
    auto fetch = cache_->FetchBlob("up/app", BlobDigest(), &outcome);
    ASSERT_TRUE(fetch.ok()) << fetch.status().ToString();
    ASSERT_NE(*fetch, nullptr);
    auto digest = ReadAll(*fetch);
    ASSERT_FALSE(digest.ok());
    EXPECT_NE(digest.status().message().find("does not match its digest"), std::string::npos)
        << digest.status().ToString();
    EXPECT_TRUE(registry_->StatBlob("up/app", BlobDigest()).status().IsNotFound());
    // The fetch is gone with its failure: the next pull tries again.
    EXPECT_EQ(upstream_.blob_gets.load(), attempt);
  }
  auto uploads = registry_->ListUploads("up/app");
  ASSERT_TRUE(uploads.ok());
  EXPECT_TRUE(uploads->empty());  // nothing of the bad bytes stays
}

TEST_F(PullThroughCacheTest, TagsAreCheckedByHeadOncePerIntervalAndServedStaleWhenTheUpstreamFails) {
  CacheOutcome outcome;
  auto first = cache_->GetManifest("up/app", "1", &outcome);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(outcome, CacheOutcome::kMiss);
  EXPECT_EQ(first->bytes, upstream_.manifest);
  EXPECT_EQ(upstream_.manifest_heads.load(), 1);
  EXPECT_EQ(upstream_.manifest_gets.load(), 1);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(cache_->GetManifest("up/app", "1", &outcome).ok());
    EXPECT_EQ(outcome, CacheOutcome::kHit);
  }
  EXPECT_EQ(upstream_.manifest_heads.load(), 1);  // within the interval: no upstream call
  std::this_thread::sleep_for(350ms);
  ASSERT_TRUE(cache_->GetManifest("up/app", "1", &outcome).ok());
  EXPECT_EQ(outcome, CacheOutcome::kHit);
  EXPECT_EQ(upstream_.manifest_heads.load(), 2);  // unchanged: a HEAD, no GET
  EXPECT_EQ(upstream_.manifest_gets.load(), 1);
  // By digest: never asked again.
  ASSERT_TRUE(cache_->GetManifest("up/app", first->info.digest.ToString(), &outcome).ok());
  EXPECT_EQ(outcome, CacheOutcome::kHit);

  for (int status : {503, 429}) {
    upstream_.fail_with = status;
    std::this_thread::sleep_for(350ms);
    auto stale = cache_->GetManifest("up/app", "1", &outcome);
    ASSERT_TRUE(stale.ok()) << stale.status().ToString();
    EXPECT_EQ(outcome, CacheOutcome::kStale);
    EXPECT_EQ(stale->info.digest, first->info.digest);
    auto uncached = cache_->GetManifest("up/other", "1", &outcome);
    EXPECT_EQ(outcome, CacheOutcome::kError);
    EXPECT_EQ(uncached.status().code(), status == 429 ? Status::Code::kResourceExhausted
                                                       : Status::Code::kUnavailable);
  }
  upstream_.fail_with = 404;  // the upstream says it is gone: believed, every time
  std::this_thread::sleep_for(350ms);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(cache_->GetManifest("up/app", "1", &outcome).status().reason(),
              Status::Reason::kManifestUnknown);
  }
}

TEST_F(PullThroughCacheTest, TagsAreListedByTheUpstreamOrAsStoredWhenItFails) {
  CacheOutcome outcome;
  auto first = cache_->ListTags("up/app", "", 1, &outcome);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->entries, std::vector<std::string>{"1"});
  EXPECT_TRUE(first->more);
  auto second = cache_->ListTags("up/app", "1", 1, &outcome);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->entries, std::vector<std::string>{"2"});
  EXPECT_FALSE(second->more);
  EXPECT_EQ(cache_->ListTags("up/none", "", std::nullopt, &outcome).status().reason(),
            Status::Reason::kNameUnknown);

  ASSERT_TRUE(cache_->GetManifest("up/app", "1", &outcome).ok());
  upstream_.fail_with = 503;
  auto stored = cache_->ListTags("up/app", "", std::nullopt, &outcome);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(outcome, CacheOutcome::kStale);
  EXPECT_EQ(stored->entries, std::vector<std::string>{"1"});
}

TEST_F(PullThroughCacheTest, TokensAreFetchedWithTheCredentialsAndReused) {
  upstream_.tokens = true;
  CacheOutcome outcome;
  auto manifest = cache_->GetManifest("up/app", "1", &outcome);
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  auto fetch = cache_->FetchBlob("up/app", BlobDigest(), &outcome);
  ASSERT_TRUE(fetch.ok()) << fetch.status().ToString();
  auto digest = ReadAll(*fetch);
  ASSERT_TRUE(digest.ok()) << digest.status().ToString();
  EXPECT_EQ(upstream_.token_gets.load(), 1);

  // Wrong credentials: a clear refusal, without the password in it.
  Config::Proxy wrong = config_;
  wrong.upstreams[0].password = "not-the-pw";
  PullThroughCache refused(wrong, *registry_, logger_, nullptr);
  auto denied = refused.GetManifest("up/app", "2", &outcome);
  EXPECT_EQ(denied.status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(denied.status().message().find("not-the-pw"), std::string::npos);
}

TEST_F(PullThroughCacheTest, AStalledUpstreamFailsWithinTheTimeout) {
  upstream_.chunk_delay = 3s;  // longer than the 2 s timeout, after the first chunk
  CacheOutcome outcome;
  auto started = std::chrono::steady_clock::now();
  auto fetch = cache_->FetchBlob("up/app", BlobDigest(), &outcome);
  ASSERT_TRUE(fetch.ok()) << fetch.status().ToString();
  auto digest = ReadAll(*fetch);
  EXPECT_FALSE(digest.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  EXPECT_TRUE(registry_->StatBlob("up/app", BlobDigest()).status().IsNotFound());
}

}  // namespace
}  // namespace regfs::httpd::proxy
