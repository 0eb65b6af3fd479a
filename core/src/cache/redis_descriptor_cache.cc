// The blob descriptor cache in Redis, shared by every replica on one storage.
//
// Keys (all below "regfs:"):
//   regfs:epoch                          bumped to drop everything (after lost invalidations)
//   regfs:<epoch>:gen:<repo>             bumped by every deletion in the repository
//   regfs:<epoch>:<gen>:<repo>:<b|m>:<digest>  "<size>" or "<size> <media type>"
// A lookup reads all three in one round trip (a Lua script), so the key it reads is always
// of the current generation. Old generations are never read again and expire.
#include <Poco/Redis/Array.h>
#include <Poco/Redis/Client.h>
#include <Poco/Redis/Type.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "cache/redis_pool.h"
#include "regfs/core/descriptor_cache.h"
#include "regfs/core/uuid.h"

namespace regfs {

namespace {

constexpr const char* kEpochKey = "regfs:epoch";
// Where a replica notes, in storage, that it could not deliver an invalidation.
constexpr const char* kStaleNotes = "regfs/cache/stale";

// KEYS[1] epoch key; ARGV[1] repository, ARGV[2] "<b|m>:<digest>".
// Returns {epoch, generation, value or ""}.
constexpr const char* kLookupScript = R"(
local e = redis.call('GET', KEYS[1]) or '0'
local g = redis.call('GET', 'regfs:' .. e .. ':gen:' .. ARGV[1]) or '0'
local v = redis.call('GET', 'regfs:' .. e .. ':' .. g .. ':' .. ARGV[1] .. ':' .. ARGV[2])
return {e, g, v or ''}
)";

// KEYS[1] epoch key; ARGV[1] repository. Bumps the repository's generation in the current
// epoch; the old generation's entries expire unread.
constexpr const char* kInvalidateScript = R"(
local e = redis.call('GET', KEYS[1]) or '0'
return redis.call('INCR', 'regfs:' .. e .. ':gen:' .. ARGV[1])
)";

std::string KindTag(DescriptorCache::Kind kind) {
  return kind == DescriptorCache::Kind::kBlob ? "b" : "m";
}

class RedisDescriptorCache final : public DescriptorCache {
 public:
  RedisDescriptorCache(RedisCacheOptions options, std::shared_ptr<StorageDriver> driver,
                       std::function<void(const Status&)> on_error)
      : pool_(options),
        ttl_(options.entry_ttl),
        driver_(std::move(driver)),
        on_error_(std::move(on_error)) {
    // The first probe before the first request: a Redis that answers is used at once.
    (void)Probe();
    prober_ = std::thread([this] { ProbeLoop(); });
  }

  ~RedisDescriptorCache() override {
    {
      std::lock_guard lock(stop_mu_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    prober_.join();
  }

  CacheLookup Lookup(const std::string& repo, Kind kind, const Digest& digest) override {
    requests_.fetch_add(1, std::memory_order_relaxed);
    CacheLookup out;
    if (!Usable()) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      return out;
    }
    Poco::Redis::Array reply;
    Status s = pool_.Run([&](Poco::Redis::Client& c) {
      Poco::Redis::Array cmd;
      cmd << "EVAL" << kLookupScript << "1" << kEpochKey << repo
          << KindTag(kind) + ":" + digest.ToString();
      reply = c.execute<Poco::Redis::Array>(cmd);
    });
    if (!s.ok() || reply.size() != 3) {
      Failed(s.ok() ? Status::Unavailable("Redis: unexpected reply to a lookup") : s);
      errors_.fetch_add(1, std::memory_order_relaxed);
      return out;
    }
    std::string epoch, gen, value;
    try {
      epoch = reply.get<Poco::Redis::BulkString>(0).value();
      gen = reply.get<Poco::Redis::BulkString>(1).value();
      value = reply.get<Poco::Redis::BulkString>(2).value();
    } catch (const Poco::Exception&) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      return out;
    }
    out.token = epoch + ":" + gen;
    if (auto parsed = Parse(value)) {
      out.hit = std::move(parsed);
      hits_.fetch_add(1, std::memory_order_relaxed);
    } else {
      misses_.fetch_add(1, std::memory_order_relaxed);
    }
    return out;
  }

  void Store(const std::string& repo, Kind kind, const Digest& digest,
             const CachedDescriptor& descriptor, const std::string& token) override {
    if (token.empty() || !Usable()) return;
    std::string value = std::to_string(descriptor.size);
    if (!descriptor.media_type.empty()) value += " " + descriptor.media_type;
    Status s = pool_.Run([&](Poco::Redis::Client& c) {
      Poco::Redis::Array cmd;
      cmd << "SET"
          << "regfs:" + token + ":" + repo + ":" + KindTag(kind) + ":" + digest.ToString()
          << value << "EX" << std::to_string(ttl_.count());
      c.execute<std::string>(cmd);
    });
    if (!s.ok()) Failed(s);
  }

  void OnChange(const ChangeEvent& event) override { OnChanges({event}); }

  void OnChanges(const std::vector<ChangeEvent>& events) override {
    std::vector<std::string> repos;
    for (const ChangeEvent& e : events) {
      bool removes = e.kind == ChangeEvent::Kind::kBlobUnlinked ||
                     e.kind == ChangeEvent::Kind::kManifestDeleted ||
                     e.kind == ChangeEvent::Kind::kRepositoryDeleted;
      if (removes && (repos.empty() || repos.back() != e.repository)) {
        repos.push_back(e.repository);
      }
    }
    for (const auto& repo : repos) Invalidate(repo);
  }

  Status Probe() override {
    Status s = pool_.Run([](Poco::Redis::Client& c) {
      Poco::Redis::Array ping;
      ping << "PING";
      c.execute<std::string>(ping);
    });
    if (!s.ok()) {
      Failed(s);
      return s;
    }
    // Back (or never gone): invalidations some replica could not deliver meanwhile make
    // everything cached before them suspect. Drop it all, then use the cache again.
    Status recovered = DropIfStale();
    if (!recovered.ok()) {
      Failed(recovered);
      return recovered;
    }
    if (!available_.exchange(true)) {
      if (on_error_) on_error_(Status::Ok());
    }
    return Status::Ok();
  }

  bool available() const override { return available_.load(); }

  Stats stats() const override {
    return {requests_.load(), hits_.load(), misses_.load(), errors_.load()};
  }

  std::string Describe() const override { return pool_.Describe(); }

 private:
  static std::optional<CachedDescriptor> Parse(const std::string& value) {
    if (value.empty()) return std::nullopt;
    CachedDescriptor d;
    size_t space = value.find(' ');
    try {
      d.size = std::stoull(value.substr(0, space));
    } catch (...) {
      return std::nullopt;
    }
    if (space != std::string::npos) d.media_type = value.substr(space + 1);
    return d;
  }

  // Lookups go to Redis only while it is known to answer; after a failure, the probe
  // decides when it is back (so requests do not each wait for a dial timeout).
  bool Usable() const { return available_.load(std::memory_order_relaxed); }

  void Failed(const Status& s) {
    if (available_.exchange(false) && on_error_) on_error_(s);
  }

  void Invalidate(const std::string& repo) {
    Status s = Usable() ? pool_.Run([&](Poco::Redis::Client& c) {
      Poco::Redis::Array cmd;
      cmd << "EVAL" << kInvalidateScript << "1" << kEpochKey << repo;
      c.execute<Poco::Int64>(cmd);
    })
                        : Status::Unavailable("Redis is unavailable");
    if (s.ok()) return;
    Failed(s);
    // Other replicas may still read this repository's entries once Redis answers them:
    // leave a note in storage that makes whichever replica sees Redis first drop it all.
    Status noted = driver_->CreateContent(std::string(kStaleNotes) + "/" + NewUuid(), repo);
    if (!noted.ok() && on_error_) {
      on_error_(Status::Unavailable("could not note a lost cache invalidation of " + repo +
                                    " in storage: " + noted.message()));
    }
  }

  // Bumps the epoch when notes of lost invalidations exist, then removes those notes.
  Status DropIfStale() {
    auto notes = driver_->List(kStaleNotes);
    if (!notes.ok()) return notes.status().IsNotFound() ? Status::Ok() : notes.status();
    if (notes->empty()) return Status::Ok();
    Status s = pool_.Run([](Poco::Redis::Client& c) {
      Poco::Redis::Array cmd;
      cmd << "INCR" << kEpochKey;
      c.execute<Poco::Int64>(cmd);
    });
    if (!s.ok()) return s;
    for (const auto& note : *notes) {
      Status d = driver_->Delete(std::string(kStaleNotes) + "/" + note);
      if (!d.ok() && !d.IsNotFound()) return d;
    }
    return Status::Ok();
  }

  // Probes every 2 s (the first ran in the constructor): soon
  // enough that a Redis back from a restart is used again, and notes of lost
  // invalidations are acted on, within seconds.
  void ProbeLoop() {
    std::unique_lock lock(stop_mu_);
    while (!stop_cv_.wait_for(lock, std::chrono::seconds(2), [this] { return stopping_; })) {
      lock.unlock();
      (void)Probe();  // its failures are reported through on_error_
      lock.lock();
    }
  }

  RedisPool pool_;
  const std::chrono::seconds ttl_;
  const std::shared_ptr<StorageDriver> driver_;
  const std::function<void(const Status&)> on_error_;
  // Unknown until the first probe: the cache starts bypassed.
  std::atomic<bool> available_{false};
  std::atomic<uint64_t> requests_{0}, hits_{0}, misses_{0}, errors_{0};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread prober_;  // last: started once everything above exists
};

}  // namespace

std::shared_ptr<DescriptorCache> NewRedisDescriptorCache(
    RedisCacheOptions options, std::shared_ptr<StorageDriver> driver,
    std::function<void(const Status&)> on_error) {
  return std::make_shared<RedisDescriptorCache>(std::move(options), std::move(driver),
                                                std::move(on_error));
}

}  // namespace regfs
