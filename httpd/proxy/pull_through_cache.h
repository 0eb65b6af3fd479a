// PullThroughCache: repositories that mirror an upstream registry (the proxy section).
//
// A mirrored repository is an ordinary repository of the registry, filled from upstream on
// demand: what a pull finds stored is served from storage; what it misses is fetched once,
// stored and verified, and streamed to the client meanwhile.
//
//   Manifests by digest never change: once stored they are served without asking the
//   upstream. A tag is asked about (HEAD, which Docker Hub does not count as a pull) at
//   most once per the upstream's tagcheckinterval; a changed tag is fetched again.
//   Blobs are fetched by one BlobFetch, which every concurrent client of the same blob
//   shares: N clients, one upstream request.
//   When the upstream fails (down, timing out, 5xx, 429), what is stored is served (a tag
//   as last seen) and the log says so; what is not is a clear error. An upstream that
//   says a tag or digest does not exist (404) is believed.
//   tags/list is the upstream's (registry:2's proxy does the same), or what is stored while
//   the upstream fails.
//
// Each pull counts as a hit, a miss, a stale answer (served stored content because the
// upstream failed) or an error, in regfs_proxy_requests_total and in the access log.
// Pulls also note that a manifest was used (Registry::NoteManifestUse), which is what the
// collector's expiry of content unused for the upstream's ttl goes by.
//
// Concurrent fetches are merged within this process; replicas behind a load balancer each
// fetch what they miss (the storage dedupes the bytes).
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "logger.h"
#include "observability/server_metrics.h"
#include "proxy/blob_fetch.h"
#include "proxy/upstream_client.h"
#include "regfs/config/config.h"
#include "regfs/core/registry.h"

namespace regfs::httpd::proxy {

// How a pull was answered, for the access log and the metrics.
enum class CacheOutcome { kNone, kHit, kMiss, kStale, kError };
const char* CacheOutcomeName(CacheOutcome outcome);

class PullThroughCache {
 public:
  // REQUIRES: every argument outlives this; metrics may be null.
  PullThroughCache(const Config::Proxy& config, Registry& registry, const Logger& logger,
                   Metrics* metrics);
  ~PullThroughCache();

  // Creates the spool directory. An error names it.
  Status Prepare();

  // Whether `repo` mirrors an upstream (and so accepts no pushes), and which.
  bool Mirrors(const std::string& repo) const;
  // "https://upstream (as library/debian)", for messages.
  std::string Describe(const std::string& repo) const;

  // A manifest of a mirrored repository by tag or digest, fetched and stored when missing
  // (or, by tag, when the upstream's tag moved). REQUIRES: Mirrors(repo).
  Result<Manifest> GetManifest(const std::string& repo, const std::string& reference,
                               CacheOutcome* outcome);

  // A page of a mirrored repository's tags as the upstream lists them; what is stored when
  // the upstream fails (kStale). REQUIRES: Mirrors(repo).
  Result<Page> ListTags(const std::string& repo, const std::string& last,
                        std::optional<size_t> n, CacheOutcome* outcome);

  // A blob of a mirrored repository: null when it is stored (read it from the registry),
  // else the fetch to stream it from. REQUIRES: Mirrors(repo).
  Result<std::shared_ptr<BlobFetch>> FetchBlob(const std::string& repo, const Digest& digest,
                                               CacheOutcome* outcome);
  // For a HEAD: nullopt when the blob is stored (answer from the registry), else its size
  // as the upstream says (nothing is fetched).
  Result<std::optional<uint64_t>> StatBlob(const std::string& repo, const Digest& digest,
                                           CacheOutcome* outcome);

  // How long a client waits for the next bytes of a fetch before giving up.
  std::chrono::milliseconds read_timeout() const;

 private:
  struct Mirror;
  struct Routed {
    Mirror* mirror;
    std::string remote;  // the repository's name upstream
  };
  std::optional<Routed> Route(const std::string& repo) const;

  // What a merged manifest fetch hands to everyone who waited for it.
  struct Fetched {
    Result<Manifest> manifest = Status::Unavailable("not fetched");
    CacheOutcome outcome = CacheOutcome::kError;
  };
  Fetched FetchByDigest(const Routed& route, const std::string& repo, const Digest& digest);
  Fetched RevalidateTag(const Routed& route, const std::string& repo, const std::string& tag);
  // Serves the stored manifest when the upstream failed in a way that is not "no such".
  Fetched StaleOrError(const Routed& route, const std::string& repo, const std::string& what,
                       const Status& failure, Result<Manifest> stored);
  // Merges concurrent calls with the same key into one run of `fetch`.
  Fetched Once(const std::string& key, const std::function<Fetched()>& fetch);

  bool CheckedRecently(const Mirror& mirror, const std::string& key);
  void MarkChecked(const std::string& key);
  void NoteUse(const Mirror& mirror, const std::string& repo, const Digest& digest);
  void Count(const Mirror& mirror, const char* kind, CacheOutcome outcome);
  void UpstreamFailed(const Mirror& mirror, const Status& failure);

  const Config::Proxy& config_;
  Registry& registry_;
  const Logger& logger_;
  Family<Counter>* requests_ = nullptr;  // upstream, kind, result
  Family<Counter>* upstream_errors_ = nullptr;  // upstream
  std::vector<std::unique_ptr<Mirror>> mirrors_;  // as config_.upstreams

  std::mutex mu_;
  std::map<std::string, std::shared_future<Fetched>> manifest_fetches_;
  std::map<std::string, std::chrono::steady_clock::time_point> tag_checked_;
  std::map<std::string, std::chrono::steady_clock::time_point> use_noted_;
  // Blob fetches being opened (merged like manifests) and running.
  std::map<std::string, std::shared_future<Result<std::shared_ptr<BlobFetch>>>> blob_starts_;
  std::map<std::string, std::shared_ptr<BlobFetch>> blob_fetches_;
};

}  // namespace regfs::httpd::proxy
