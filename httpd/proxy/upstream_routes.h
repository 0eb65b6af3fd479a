// Which repositories mirror which upstream (proxy.upstreams, or proxy.remoteurl for all),
// and the expiry that follows from it: one place, for the server and the collector.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "regfs/config/config.h"

namespace regfs::httpd::proxy {

struct UpstreamRoute {
  const Config::Upstream* upstream;  // points into the Config::Proxy given
  std::string remote_repository;     // the name upstream: the prefix removed
};

// The upstream `repo` mirrors (the longest matching prefix), or nullopt for an ordinary
// repository. A prefix itself ("hub") names no upstream repository: it is ordinary.
std::optional<UpstreamRoute> RouteToUpstream(const Config::Proxy& proxy, const std::string& repo);

// GcOptions::expire_unused_before for these upstreams: now minus the ttl of the upstream a
// repository mirrors, none for ordinary repositories and a ttl of 0.
std::function<std::optional<std::chrono::system_clock::time_point>(const std::string&)>
CacheExpiry(const Config::Proxy& proxy);

}  // namespace regfs::httpd::proxy
