#include "service_config.h"

#include "yaml_values.h"

namespace regfs {

namespace {

YAML::Node Child(const YAML::Node& node, const char* key) {
  if (!node || !node.IsMap()) return YAML::Node();
  return node[key];
}

Status ReadDuration(const YAML::Node& node, const std::string& key,
                    std::chrono::milliseconds* out, bool zero_ok = false) {
  if (!node || node.IsNull()) return Status::Ok();
  auto d = ParseGoDuration(node.as<std::string>());
  if (!d.ok()) return Status::InvalidArgument(key + ": " + d.status().message());
  if (d->count() < 0 || (d->count() == 0 && !zero_ok)) {
    return Status::InvalidArgument(key + " must be positive");
  }
  *out = *d;
  return Status::Ok();
}

template <typename T>
Status ReadScalar(const YAML::Node& node, const std::string& key, T* out) {
  if (!node || node.IsNull()) return Status::Ok();
  try {
    *out = node.as<T>();
  } catch (const YAML::Exception&) {
    return Status::InvalidArgument("configuration key " + key + " has an invalid value");
  }
  return Status::Ok();
}

Status ReadThreshold(const YAML::Node& node, const std::string& key, int* out) {
  REGFS_RETURN_IF_ERROR(ReadScalar(node, key, out));
  if (*out <= 0) return Status::InvalidArgument(key + " must be positive");
  return Status::Ok();
}

// A list of checks: registry:2 writes health.file etc. as sequences of maps.
template <typename F>
Status ForEachCheck(const YAML::Node& list, const std::string& key, F&& read) {
  if (!list || list.IsNull()) return Status::Ok();
  if (!list.IsSequence()) return Status::InvalidArgument(key + " must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    REGFS_RETURN_IF_ERROR(read(list[i], key + "[" + std::to_string(i) + "]"));
  }
  return Status::Ok();
}

Status ReadDebug(const YAML::Node& root, Config::Debug* debug) {
  YAML::Node section = Child(Child(root, "http"), "debug");
  std::string addr;
  REGFS_RETURN_IF_ERROR(ReadScalar(Child(section, "addr"), "http.debug.addr", &addr));
  if (!addr.empty()) {
    auto parsed = ParseListenAddress(addr);
    if (!parsed.ok()) return Status::InvalidArgument("http.debug.addr: " + parsed.status().message());
    debug->enabled = true;
    debug->addr = *parsed;
  }
  YAML::Node prometheus = Child(section, "prometheus");
  REGFS_RETURN_IF_ERROR(ReadScalar(Child(prometheus, "enabled"), "http.debug.prometheus.enabled",
                                   &debug->prometheus));
  REGFS_RETURN_IF_ERROR(
      ReadScalar(Child(prometheus, "path"), "http.debug.prometheus.path", &debug->prometheus_path));
  if (debug->prometheus_path.empty() || debug->prometheus_path[0] != '/') {
    return Status::InvalidArgument("http.debug.prometheus.path must start with /");
  }
  return Status::Ok();
}

Status ReadHealth(const YAML::Node& root, Config::Health* health) {
  YAML::Node section = Child(root, "health");
  YAML::Node storage = Child(section, "storagedriver");
  REGFS_RETURN_IF_ERROR(ReadScalar(Child(storage, "enabled"), "health.storagedriver.enabled",
                                   &health->storage.enabled));
  REGFS_RETURN_IF_ERROR(ReadDuration(Child(storage, "interval"), "health.storagedriver.interval",
                                     &health->storage.interval));
  REGFS_RETURN_IF_ERROR(ReadThreshold(Child(storage, "threshold"),
                                      "health.storagedriver.threshold", &health->storage.threshold));

  REGFS_RETURN_IF_ERROR(ForEachCheck(
      Child(section, "file"), "health.file", [&](const YAML::Node& n, const std::string& key) {
        Config::Health::File f;
        REGFS_RETURN_IF_ERROR(ReadScalar(Child(n, "file"), key + ".file", &f.path));
        if (f.path.empty()) return Status::InvalidArgument(key + " needs a file");
        REGFS_RETURN_IF_ERROR(ReadDuration(Child(n, "interval"), key + ".interval", &f.interval));
        health->files.push_back(std::move(f));
        return Status::Ok();
      }));
  REGFS_RETURN_IF_ERROR(ForEachCheck(
      Child(section, "http"), "health.http", [&](const YAML::Node& n, const std::string& key) {
        Config::Health::Http h;
        REGFS_RETURN_IF_ERROR(ReadScalar(Child(n, "uri"), key + ".uri", &h.uri));
        if (!h.uri.starts_with("http://") && !h.uri.starts_with("https://")) {
          return Status::InvalidArgument(key + ".uri must be an http:// or https:// URL");
        }
        h.headers = HeaderMap(Child(n, "headers"));
        REGFS_RETURN_IF_ERROR(ReadScalar(Child(n, "statuscode"), key + ".statuscode", &h.status));
        if (h.status < 100 || h.status > 599) {
          return Status::InvalidArgument(key + ".statuscode must be an HTTP status");
        }
        REGFS_RETURN_IF_ERROR(ReadDuration(Child(n, "timeout"), key + ".timeout", &h.timeout));
        REGFS_RETURN_IF_ERROR(ReadDuration(Child(n, "interval"), key + ".interval", &h.interval));
        REGFS_RETURN_IF_ERROR(ReadThreshold(Child(n, "threshold"), key + ".threshold", &h.threshold));
        health->http.push_back(std::move(h));
        return Status::Ok();
      }));
  REGFS_RETURN_IF_ERROR(ForEachCheck(
      Child(section, "tcp"), "health.tcp", [&](const YAML::Node& n, const std::string& key) {
        Config::Health::Tcp t;
        REGFS_RETURN_IF_ERROR(ReadScalar(Child(n, "addr"), key + ".addr", &t.addr));
        if (t.addr.find(':') == std::string::npos) {
          return Status::InvalidArgument(key + ".addr must be host:port");
        }
        REGFS_RETURN_IF_ERROR(ReadDuration(Child(n, "timeout"), key + ".timeout", &t.timeout));
        REGFS_RETURN_IF_ERROR(ReadDuration(Child(n, "interval"), key + ".interval", &t.interval));
        REGFS_RETURN_IF_ERROR(ReadThreshold(Child(n, "threshold"), key + ".threshold", &t.threshold));
        health->tcp.push_back(std::move(t));
        return Status::Ok();
      }));
  return Status::Ok();
}

Status ReadRedis(const YAML::Node& root, Config::Redis* redis) {
  YAML::Node section = Child(root, "redis");
  if (!section || section.IsNull()) return Status::Ok();
  std::string addr;
  REGFS_RETURN_IF_ERROR(ReadScalar(Child(section, "addr"), "redis.addr", &addr));
  if (!addr.empty()) redis->addrs.push_back(addr);
  if (YAML::Node addrs = Child(section, "addrs"); addrs && addrs.IsSequence()) {
    for (const auto& a : addrs) redis->addrs.push_back(a.as<std::string>());
  }
  for (const auto& a : redis->addrs) {
    auto colon = a.rfind(':');
    if (colon == std::string::npos || colon + 1 == a.size()) {
      return Status::InvalidArgument("redis address '" + a + "' must be host:port");
    }
  }
  REGFS_RETURN_IF_ERROR(ReadScalar(Child(section, "username"), "redis.username", &redis->username));
  REGFS_RETURN_IF_ERROR(ReadScalar(Child(section, "password"), "redis.password", &redis->password));
  REGFS_RETURN_IF_ERROR(ReadScalar(Child(section, "db"), "redis.db", &redis->db));
  if (redis->db < 0) return Status::InvalidArgument("redis.db must not be negative");
  REGFS_RETURN_IF_ERROR(
      ReadDuration(Child(section, "dialtimeout"), "redis.dialtimeout", &redis->dial_timeout));
  REGFS_RETURN_IF_ERROR(
      ReadDuration(Child(section, "readtimeout"), "redis.readtimeout", &redis->read_timeout));
  REGFS_RETURN_IF_ERROR(
      ReadDuration(Child(section, "writetimeout"), "redis.writetimeout", &redis->write_timeout));
  YAML::Node pool = Child(section, "pool");
  REGFS_RETURN_IF_ERROR(ReadScalar(Child(pool, "maxidle"), "redis.pool.maxidle", &redis->max_idle));
  REGFS_RETURN_IF_ERROR(
      ReadScalar(Child(pool, "maxactive"), "redis.pool.maxactive", &redis->max_active));
  if (redis->max_idle < 0) return Status::InvalidArgument("redis.pool.maxidle must not be negative");
  // registry:2 reads maxactive 0 as "no limit"; a bound keeps a burst from opening thousands.
  if (redis->max_active <= 0) redis->max_active = 1024;
  REGFS_RETURN_IF_ERROR(ReadDuration(Child(pool, "idletimeout"), "redis.pool.idletimeout",
                                     &redis->idle_timeout));
  REGFS_RETURN_IF_ERROR(ReadScalar(Child(Child(section, "tls"), "enabled"), "redis.tls.enabled",
                                   &redis->tls));
  if (redis->tls) {
    // Neither Redis client Debian 12 packages (Poco::Redis 1.11, hiredis 0.14) speaks TLS.
    return Status::InvalidArgument(
        "redis.tls is not supported: reach Redis over a private network or a local TLS "
        "tunnel (stunnel, spiped)");
  }
  return Status::Ok();
}

}  // namespace

Status ReadServiceSections(const YAML::Node& root, Config* out) {
  REGFS_RETURN_IF_ERROR(ReadDebug(root, &out->debug));
  REGFS_RETURN_IF_ERROR(ReadHealth(root, &out->health));
  REGFS_RETURN_IF_ERROR(ReadRedis(root, &out->redis));
  YAML::Node cache = Child(Child(Child(root, "storage"), "cache"), "blobdescriptor");
  REGFS_RETURN_IF_ERROR(
      ReadScalar(cache, "storage.cache.blobdescriptor", &out->blob_descriptor_cache));
  const std::string& kind = out->blob_descriptor_cache;
  if (!kind.empty() && kind != "inmemory" && kind != "redis") {
    return Status::InvalidArgument("storage.cache.blobdescriptor must be inmemory or redis");
  }
  if (kind == "redis" && !out->redis.enabled()) {
    return Status::InvalidArgument(
        "storage.cache.blobdescriptor is redis but the redis section has no addr");
  }
  if (out->debug.prometheus && !out->debug.enabled) {
    out->warnings.push_back(
        "http.debug.prometheus is enabled but http.debug.addr is not set: no metrics are served");
  }
  return Status::Ok();
}

}  // namespace regfs
