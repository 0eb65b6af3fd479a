#include "proxy_config.h"

#include <algorithm>
#include <set>

#include "regfs/core/names.h"

namespace regfs {

namespace {

YAML::Node Child(const YAML::Node& node, const char* key) {
  if (!node || !node.IsMap()) return YAML::Node();
  return node[key];
}

Status ReadString(const YAML::Node& node, const std::string& key, std::string* out) {
  if (!node || node.IsNull()) return Status::Ok();
  if (!node.IsScalar()) return Status::InvalidArgument(key + " must be a string");
  *out = node.as<std::string>();
  return Status::Ok();
}

Status ReadDuration(const YAML::Node& node, const std::string& key, bool zero_ok,
                    std::chrono::milliseconds* out) {
  if (!node || node.IsNull()) return Status::Ok();
  if (!node.IsScalar()) return Status::InvalidArgument(key + " must be a duration");
  const std::string text = node.as<std::string>();
  // registry:2 reads ttl as a Go duration, where a bare 0 is allowed.
  if (text == "0") {
    if (!zero_ok) return Status::InvalidArgument(key + " must be positive");
    *out = std::chrono::milliseconds(0);
    return Status::Ok();
  }
  auto d = ParseGoDuration(text);
  if (!d.ok()) return Status::InvalidArgument(key + ": " + d.status().message());
  if (d->count() < 0 || (d->count() == 0 && !zero_ok)) {
    return Status::InvalidArgument(key + " must be positive");
  }
  *out = *d;
  return Status::Ok();
}

// The keys one upstream has, whether at the top of `proxy` or in an `upstreams` entry.
Status ReadUpstream(const YAML::Node& node, const std::string& key,
                    std::chrono::milliseconds default_interval, Config::Upstream* out) {
  out->tag_check_interval = default_interval;
  std::string url;
  REGFS_RETURN_IF_ERROR(ReadString(Child(node, "remoteurl"), key + ".remoteurl", &url));
  if (url.empty()) return Status::InvalidArgument(key + ".remoteurl is required");
  auto normalized = NormalizeUpstreamUrl(url);
  if (!normalized.ok()) {
    return Status::InvalidArgument(key + ".remoteurl: " + normalized.status().message());
  }
  out->remote_url = *normalized;
  REGFS_RETURN_IF_ERROR(ReadString(Child(node, "username"), key + ".username", &out->username));
  REGFS_RETURN_IF_ERROR(ReadString(Child(node, "password"), key + ".password", &out->password));
  if (out->username.empty() != out->password.empty()) {
    return Status::InvalidArgument(key + ": username and password go together");
  }
  REGFS_RETURN_IF_ERROR(ReadDuration(Child(node, "ttl"), key + ".ttl", true, &out->ttl));
  REGFS_RETURN_IF_ERROR(ReadDuration(Child(node, "tagcheckinterval"), key + ".tagcheckinterval",
                                     false, &out->tag_check_interval));
  return Status::Ok();
}

}  // namespace

Result<std::string> NormalizeUpstreamUrl(const std::string& url) {
  std::string rest;
  if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    return Status::InvalidArgument("must start with http:// or https://");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty()) return Status::InvalidArgument("names no host");
  if (rest.find('@') != std::string::npos) {
    return Status::InvalidArgument("must not hold credentials: give username and password");
  }
  if (rest.find_first_of("/?#") != std::string::npos) {
    return Status::InvalidArgument("must be scheme://host[:port] without a path");
  }
  for (char c : rest) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '\\') {
      return Status::InvalidArgument("holds a character a host name cannot");
    }
  }
  return url.substr(0, url.find("://") + 3) + rest;
}

Status ReadProxy(const YAML::Node& proxy, Config::Proxy* out) {
  if (!proxy || proxy.IsNull()) return Status::Ok();
  if (!proxy.IsMap()) return Status::InvalidArgument("proxy must be a map");
  std::chrono::milliseconds interval{std::chrono::minutes(5)};
  REGFS_RETURN_IF_ERROR(
      ReadDuration(Child(proxy, "tagcheckinterval"), "proxy.tagcheckinterval", false, &interval));
  REGFS_RETURN_IF_ERROR(ReadDuration(Child(proxy, "timeout"), "proxy.timeout", false,
                                     &out->timeout));
  REGFS_RETURN_IF_ERROR(ReadString(Child(proxy, "spooldirectory"), "proxy.spooldirectory",
                                   &out->spool_directory));
  if (out->spool_directory.empty() || out->spool_directory.front() != '/') {
    return Status::InvalidArgument("proxy.spooldirectory must be an absolute path");
  }

  std::vector<Config::Upstream> upstreams;
  if (YAML::Node url = Child(proxy, "remoteurl"); url && !url.IsNull()) {
    Config::Upstream whole;  // registry:2's proxy mode: every repository
    REGFS_RETURN_IF_ERROR(ReadUpstream(proxy, "proxy", interval, &whole));
    upstreams.push_back(std::move(whole));
  } else {
    for (const char* key : {"username", "password", "ttl"}) {
      if (Child(proxy, key)) {
        return Status::InvalidArgument(std::string("proxy.") + key +
                                       " is set but proxy.remoteurl is not");
      }
    }
  }
  YAML::Node list = Child(proxy, "upstreams");
  if (list && !list.IsNull()) {
    if (!list.IsSequence()) return Status::InvalidArgument("proxy.upstreams must be a list");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string key = "proxy.upstreams[" + std::to_string(i) + "]";
      if (!list[i].IsMap()) return Status::InvalidArgument(key + " must be a map");
      for (const auto& kv : list[i]) {
        static const std::set<std::string> kKeys = {"prefix",   "remoteurl", "username",
                                                    "password", "ttl",       "tagcheckinterval"};
        const std::string name = kv.first.as<std::string>();
        if (!kKeys.count(name)) {
          return Status::InvalidArgument(key + "." + name + " is not a key regfs knows");
        }
      }
      Config::Upstream upstream;
      REGFS_RETURN_IF_ERROR(ReadString(Child(list[i], "prefix"), key + ".prefix", &upstream.prefix));
      while (!upstream.prefix.empty() && upstream.prefix.back() == '/') upstream.prefix.pop_back();
      if (upstream.prefix.empty()) {
        return Status::InvalidArgument(
            key + ".prefix is required (proxy.remoteurl mirrors every repository)");
      }
      if (!ValidateRepositoryName(upstream.prefix).ok()) {
        return Status::InvalidArgument(key + ".prefix must be a valid repository name");
      }
      REGFS_RETURN_IF_ERROR(ReadUpstream(list[i], key, interval, &upstream));
      upstreams.push_back(std::move(upstream));
    }
  }
  std::set<std::string> prefixes;
  for (const Config::Upstream& u : upstreams) {
    if (!prefixes.insert(u.prefix).second) {
      return Status::InvalidArgument("proxy.upstreams names prefix " + u.prefix + " twice");
    }
  }
  // The most specific prefix decides: "hub/library" before "hub" before "".
  std::stable_sort(upstreams.begin(), upstreams.end(),
                   [](const Config::Upstream& a, const Config::Upstream& b) {
                     return a.prefix.size() > b.prefix.size();
                   });
  out->upstreams = std::move(upstreams);
  return Status::Ok();
}

}  // namespace regfs
