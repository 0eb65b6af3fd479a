#include "proxy/pull_through_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "proxy/upstream_routes.h"
#include "regfs/core/reference.h"

namespace regfs::httpd::proxy {

namespace {

// Bounds of the in-memory notes (tags checked, uses noted): old entries are dropped when
// there are more, so a client walking endless names cannot grow them without bound.
constexpr size_t kMaxNotes = 100000;

template <typename Map>
void PruneOlderThan(Map& map, std::chrono::steady_clock::time_point cutoff) {
  if (map.size() < kMaxNotes) return;
  for (auto it = map.begin(); it != map.end();) {
    it = it->second < cutoff ? map.erase(it) : std::next(it);
  }
  if (map.size() >= kMaxNotes) map.clear();
}

// How often a pull rewrites a manifest's use time: often enough that expiry after `ttl`
// never takes what is in use, rarely enough that pulls stay reads.
std::chrono::seconds UseResolution(std::chrono::milliseconds ttl) {
  auto r = std::chrono::duration_cast<std::chrono::seconds>(ttl / 24);
  return std::clamp<std::chrono::seconds>(r, std::chrono::seconds(1), std::chrono::hours(1));
}

}  // namespace

const char* CacheOutcomeName(CacheOutcome outcome) {
  switch (outcome) {
    case CacheOutcome::kNone:
      return "";
    case CacheOutcome::kHit:
      return "hit";
    case CacheOutcome::kMiss:
      return "miss";
    case CacheOutcome::kStale:
      return "stale";
    case CacheOutcome::kError:
      return "error";
  }
  return "";
}

struct PullThroughCache::Mirror {
  Mirror(const Config::Upstream& upstream, std::chrono::milliseconds timeout)
      : config(upstream), client(upstream, timeout) {}
  const Config::Upstream& config;
  UpstreamClient client;
};

PullThroughCache::PullThroughCache(const Config::Proxy& config, Registry& registry,
                                   const Logger& logger, Metrics* metrics)
    : config_(config), registry_(registry), logger_(logger) {
  for (const Config::Upstream& upstream : config_.upstreams) {
    mirrors_.push_back(std::make_unique<Mirror>(upstream, config_.timeout));
  }
  if (metrics != nullptr) {
    requests_ = &metrics->AddCounter(
        "regfs_proxy_requests_total",
        "Pulls of mirrored repositories, by upstream, kind (manifest, blob) and result: hit "
        "(stored), miss (fetched), stale (stored, served while the upstream failed), error.",
        {"upstream", "kind", "result"});
    upstream_errors_ = &metrics->AddCounter(
        "regfs_proxy_upstream_errors_total",
        "Upstream calls that failed (unreachable, timed out, 5xx, 429, refused).", {"upstream"});
  }
}

PullThroughCache::~PullThroughCache() {
  // Fetch threads report back here when they end: wait for them (each is bounded by the
  // upstream's timeouts).
  const auto deadline = std::chrono::steady_clock::now() + read_timeout();
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu_);
      if (blob_fetches_.empty() && blob_starts_.empty()) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Status PullThroughCache::Prepare() {
  const std::string& dir = config_.spool_directory;
  for (size_t slash = 1; slash != std::string::npos;) {
    slash = dir.find('/', slash + 1);
    std::string part = dir.substr(0, slash);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::IOError("proxy.spooldirectory " + dir + ": cannot create " + part + ": " +
                             std::strerror(errno));
    }
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || ::access(dir.c_str(), W_OK) != 0) {
    return Status::IOError("proxy.spooldirectory " + dir + " is not a writable directory");
  }
  return Status::Ok();
}

std::optional<PullThroughCache::Routed> PullThroughCache::Route(const std::string& repo) const {
  auto route = RouteToUpstream(config_, repo);
  if (!route) return std::nullopt;
  const size_t index = static_cast<size_t>(route->upstream - config_.upstreams.data());
  return Routed{mirrors_[index].get(), route->remote_repository};
}

bool PullThroughCache::Mirrors(const std::string& repo) const { return Route(repo).has_value(); }

std::string PullThroughCache::Describe(const std::string& repo) const {
  auto route = Route(repo);
  if (!route) return "";
  return route->mirror->config.remote_url + " (as " + route->remote + ")";
}

std::chrono::milliseconds PullThroughCache::read_timeout() const {
  // The upstream connection times out on its own (config_.timeout) and fails the fetch;
  // this bounds only a wait whose fetch is stuck storing.
  return std::max<std::chrono::milliseconds>(config_.timeout * 4, std::chrono::minutes(10));
}

void PullThroughCache::Count(const Mirror& mirror, const char* kind, CacheOutcome outcome) {
  if (requests_ == nullptr || outcome == CacheOutcome::kNone) return;
  requests_->With({mirror.config.remote_url, kind, CacheOutcomeName(outcome)}).Add();
}

void PullThroughCache::UpstreamFailed(const Mirror& mirror, const Status& failure) {
  if (upstream_errors_ != nullptr && !failure.IsNotFound()) {
    upstream_errors_->With({mirror.config.remote_url}).Add();
  }
}

bool PullThroughCache::CheckedRecently(const Mirror& mirror, const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = tag_checked_.find(key);
  return it != tag_checked_.end() &&
         std::chrono::steady_clock::now() - it->second < mirror.config.tag_check_interval;
}

void PullThroughCache::MarkChecked(const std::string& key) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  tag_checked_[key] = now;
  PruneOlderThan(tag_checked_, now - std::chrono::hours(24));
}

void PullThroughCache::NoteUse(const Mirror& mirror, const std::string& repo,
                               const Digest& digest) {
  if (mirror.config.ttl.count() == 0) return;  // nothing expires: nothing to note
  const auto resolution = UseResolution(mirror.config.ttl);
  const auto now = std::chrono::steady_clock::now();
  const std::string key = repo + "@" + digest.ToString();
  {
    std::lock_guard lock(mu_);
    auto it = use_noted_.find(key);
    if (it != use_noted_.end() && now - it->second < resolution) return;
    use_noted_[key] = now;
    PruneOlderThan(use_noted_, now - resolution);
  }
  if (Status s = registry_.NoteManifestUse(repo, digest, resolution); !s.ok() && !s.IsNotFound()) {
    logger_.Warn("proxy: cannot note the use of " + repo + "@" + digest.ToString() +
                 " (its expiry may come early): " + s.message());
  }
}

PullThroughCache::Fetched PullThroughCache::Once(const std::string& key,
                                                 const std::function<Fetched()>& fetch) {
  std::unique_lock lock(mu_);
  if (auto it = manifest_fetches_.find(key); it != manifest_fetches_.end()) {
    auto shared = it->second;
    lock.unlock();
    return shared.get();
  }
  std::promise<Fetched> promise;
  manifest_fetches_.emplace(key, promise.get_future().share());
  lock.unlock();
  Fetched result;
  try {
    result = fetch();
  } catch (const std::exception& e) {
    result.manifest = Status::Unavailable(std::string("fetching ") + key + " failed: " + e.what());
  }
  lock.lock();
  manifest_fetches_.erase(key);
  lock.unlock();
  promise.set_value(result);
  return result;
}

PullThroughCache::Fetched PullThroughCache::StaleOrError(const Routed& route,
                                                         const std::string& repo,
                                                         const std::string& what,
                                                         const Status& failure,
                                                         Result<Manifest> stored) {
  UpstreamFailed(*route.mirror, failure);
  if (stored.ok() && !failure.IsNotFound()) {
    logger_.Warn("proxy: " + failure.message() + "; serving " + repo + ":" + what +
                 " as stored (" + stored->info.digest.ToString() + ")");
    return {std::move(stored), CacheOutcome::kStale};
  }
  if (!failure.IsNotFound()) logger_.Warn("proxy: " + failure.message());
  return {failure, CacheOutcome::kError};
}

PullThroughCache::Fetched PullThroughCache::FetchByDigest(const Routed& route,
                                                          const std::string& repo,
                                                          const Digest& digest) {
  // Another request may have stored it while this one waited its turn.
  if (auto stored = registry_.GetManifest(repo, digest.ToString()); stored.ok()) {
    return {std::move(stored), CacheOutcome::kHit};
  }
  auto got = route.mirror->client.FetchManifest(route.remote, digest.ToString(), false);
  if (!got.ok()) return StaleOrError(route, repo, digest.ToString(), got.status(), got.status());
  auto put = registry_.PutMirroredManifest(repo, digest.ToString(), got->media_type, got->bytes);
  if (!put.ok()) {
    logger_.Warn("proxy: cannot store " + repo + "@" + digest.ToString() + " fetched from " +
                 route.mirror->config.remote_url + ": " + put.status().message());
    return {put.status(), CacheOutcome::kError};
  }
  logger_.Debug("proxy: fetched " + repo + "@" + digest.ToString() + " from " +
                route.mirror->config.remote_url);
  return {registry_.GetManifest(repo, digest.ToString()), CacheOutcome::kMiss};
}

PullThroughCache::Fetched PullThroughCache::RevalidateTag(const Routed& route,
                                                          const std::string& repo,
                                                          const std::string& tag) {
  const std::string key = repo + ":" + tag;
  auto stored = registry_.GetManifest(repo, tag);
  if (stored.ok() && CheckedRecently(*route.mirror, key)) {
    return {std::move(stored), CacheOutcome::kHit};  // checked while this request waited
  }
  if (!stored.ok() && !stored.status().IsNotFound()) return {stored.status(), CacheOutcome::kError};
  // HEAD first: it says where the tag points without spending a pull of Docker Hub's.
  auto head = route.mirror->client.FetchManifest(route.remote, tag, true);
  if (!head.ok()) {
    // Asked again after the interval, not on every pull while the upstream is down; a tag
    // gone upstream stays gone for the next pulls too.
    if (stored.ok() && !head.status().IsNotFound()) MarkChecked(key);
    return StaleOrError(route, repo, tag, head.status(), std::move(stored));
  }
  if (stored.ok() && stored->info.digest == head->digest) {
    MarkChecked(key);
    return {std::move(stored), CacheOutcome::kHit};
  }
  // New, or the tag moved upstream. The manifest may be stored already (pulled by digest).
  if (auto by_digest = registry_.GetManifest(repo, head->digest.ToString()); by_digest.ok()) {
    if (Status s = registry_.SetTag(repo, tag, head->digest); !s.ok()) {
      return {s, CacheOutcome::kError};
    }
    MarkChecked(key);
    return {std::move(by_digest), CacheOutcome::kMiss};
  }
  auto got = route.mirror->client.FetchManifest(route.remote, head->digest.ToString(), false);
  if (!got.ok()) {
    if (stored.ok() && !got.status().IsNotFound()) MarkChecked(key);
    return StaleOrError(route, repo, tag, got.status(), std::move(stored));
  }
  auto put = registry_.PutMirroredManifest(repo, tag, got->media_type, got->bytes);
  if (!put.ok()) {
    logger_.Warn("proxy: cannot store " + key + " fetched from " +
                 route.mirror->config.remote_url + ": " + put.status().message());
    return {put.status(), CacheOutcome::kError};
  }
  MarkChecked(key);
  logger_.Debug("proxy: fetched " + key + " (" + got->digest.ToString() + ") from " +
                route.mirror->config.remote_url);
  return {registry_.GetManifest(repo, put->digest.ToString()), CacheOutcome::kMiss};
}

Result<Manifest> PullThroughCache::GetManifest(const std::string& repo,
                                               const std::string& reference,
                                               CacheOutcome* outcome) {
  *outcome = CacheOutcome::kNone;
  auto route = Route(repo);
  if (!route) return Status::FailedPrecondition(repo + " mirrors no upstream");
  auto parsed = Reference::Parse(reference);
  if (!parsed.ok()) {
    return LookupStatusOf(parsed, reference,
                          Status::NotFound("manifest " + reference + " is not known",
                                           Status::Reason::kManifestUnknown));
  }
  Fetched result;
  if (parsed->is_digest()) {
    auto stored = registry_.GetManifest(repo, reference);
    if (stored.ok() || !stored.status().IsNotFound()) {
      const CacheOutcome found = stored.ok() ? CacheOutcome::kHit : CacheOutcome::kError;
      result = {std::move(stored), found};
    } else {
      result = Once(repo + "@" + reference,
                    [&] { return FetchByDigest(*route, repo, parsed->digest()); });
    }
  } else {
    auto stored = registry_.GetManifest(repo, reference);
    if (stored.ok() && CheckedRecently(*route->mirror, repo + ":" + reference)) {
      result = {std::move(stored), CacheOutcome::kHit};
    } else {
      result = Once(repo + ":" + reference, [&] { return RevalidateTag(*route, repo, reference); });
    }
  }
  *outcome = result.outcome;
  Count(*route->mirror, "manifest", result.outcome);
  if (result.manifest.ok()) NoteUse(*route->mirror, repo, result.manifest->info.digest);
  return std::move(result.manifest);
}

Result<Page> PullThroughCache::ListTags(const std::string& repo, const std::string& last,
                                        std::optional<size_t> n, CacheOutcome* outcome) {
  *outcome = CacheOutcome::kNone;
  auto route = Route(repo);
  if (!route) return Status::FailedPrecondition(repo + " mirrors no upstream");
  auto listed = route->mirror->client.ListTags(route->remote, last, n);
  if (listed.ok()) {
    *outcome = CacheOutcome::kMiss;
    return Page{std::move(listed->tags), listed->more};
  }
  UpstreamFailed(*route->mirror, listed.status());
  if (listed.status().IsNotFound()) {
    *outcome = CacheOutcome::kError;
    return listed.status();
  }
  logger_.Warn("proxy: " + listed.status().message() + "; listing the tags stored for " + repo);
  *outcome = CacheOutcome::kStale;
  return registry_.ListTags(repo, last, n.value_or(static_cast<size_t>(-1)));
}

Result<std::optional<uint64_t>> PullThroughCache::StatBlob(const std::string& repo,
                                                           const Digest& digest,
                                                           CacheOutcome* outcome) {
  *outcome = CacheOutcome::kNone;
  auto route = Route(repo);
  if (!route) return Status::FailedPrecondition(repo + " mirrors no upstream");
  if (registry_.StatBlob(repo, digest).ok()) {
    *outcome = CacheOutcome::kHit;
    Count(*route->mirror, "blob", *outcome);
    return std::optional<uint64_t>();
  }
  auto size = route->mirror->client.StatBlob(route->remote, digest);
  *outcome = size.ok() ? CacheOutcome::kMiss : CacheOutcome::kError;
  Count(*route->mirror, "blob", *outcome);
  if (!size.ok()) {
    UpstreamFailed(*route->mirror, size.status());
    if (!size.status().IsNotFound()) logger_.Warn("proxy: " + size.status().message());
    return size.status();
  }
  return std::optional<uint64_t>(*size);
}

Result<std::shared_ptr<BlobFetch>> PullThroughCache::FetchBlob(const std::string& repo,
                                                               const Digest& digest,
                                                               CacheOutcome* outcome) {
  *outcome = CacheOutcome::kNone;
  auto route = Route(repo);
  if (!route) return Status::FailedPrecondition(repo + " mirrors no upstream");
  const std::string key = repo + "@" + digest.ToString();
  auto finish = [&](Result<std::shared_ptr<BlobFetch>> r) {
    *outcome = !r.ok() ? CacheOutcome::kError : *r ? CacheOutcome::kMiss : CacheOutcome::kHit;
    Count(*route->mirror, "blob", *outcome);
    return r;
  };
  if (registry_.StatBlob(repo, digest).ok()) return finish(std::shared_ptr<BlobFetch>());

  std::unique_lock lock(mu_);
  if (auto running = blob_fetches_.find(key); running != blob_fetches_.end()) {
    return finish(running->second);  // a fetch in progress: share it
  }
  if (auto starting = blob_starts_.find(key); starting != blob_starts_.end()) {
    auto shared = starting->second;
    lock.unlock();
    return finish(shared.get());
  }
  std::promise<Result<std::shared_ptr<BlobFetch>>> promise;
  blob_starts_.emplace(key, promise.get_future().share());
  lock.unlock();

  Result<std::shared_ptr<BlobFetch>> started = std::shared_ptr<BlobFetch>();
  Mirror* mirror = route->mirror;
  const std::string remote = route->remote;
  if (registry_.StatBlob(repo, digest).ok()) {
    // A fetch ended meanwhile.
  } else if (registry_.StatContent(digest).ok()) {
    // Stored for another repository (a shared base layer): the upstream need only confirm
    // this repository has it, and a HEAD is all it costs.
    auto size = mirror->client.StatBlob(remote, digest);
    if (!size.ok()) {
      UpstreamFailed(*mirror, size.status());
      if (!size.status().IsNotFound()) logger_.Warn("proxy: " + size.status().message());
      started = size.status();
    } else if (auto linked = registry_.LinkMirroredBlob(repo, digest); !linked.ok()) {
      started = linked.status();
    }
  } else {
    started = BlobFetch::Open(
        registry_, repo, digest, [&] { return mirror->client.OpenBlob(remote, digest); },
        config_.spool_directory);
    if (!started.ok()) {
      UpstreamFailed(*mirror, started.status());
      if (!started.status().IsNotFound()) logger_.Warn("proxy: " + started.status().message());
    }
  }
  lock.lock();
  blob_starts_.erase(key);
  if (started.ok() && *started) {
    std::shared_ptr<BlobFetch> fetch = *started;
    blob_fetches_[key] = fetch;
    lock.unlock();
    logger_.Debug("proxy: fetching " + key + " (" + std::to_string(fetch->size()) +
                  " bytes) from " + route->mirror->config.remote_url);
    fetch->Launch([this, key, mirror, raw = fetch.get()](const Status& status) {
      if (!status.ok()) {
        UpstreamFailed(*mirror, status);
        logger_.Warn("proxy: " + key + ": " + status.message());
      }
      std::lock_guard done_lock(mu_);
      if (auto it = blob_fetches_.find(key); it != blob_fetches_.end() && it->second.get() == raw) {
        blob_fetches_.erase(it);
      }
    });
  } else {
    lock.unlock();
  }
  promise.set_value(started);
  return finish(started);
}

}  // namespace regfs::httpd::proxy
