#include "proxy/upstream_routes.h"

namespace regfs::httpd::proxy {

namespace {

// Docker Hub keeps official images under library/: "hub/debian" is "library/debian"
// there, as docker itself spells it.
bool IsDockerHub(const std::string& url) {
  return url == "https://registry-1.docker.io" || url == "https://index.docker.io" ||
         url == "https://docker.io";
}

}  // namespace

std::optional<UpstreamRoute> RouteToUpstream(const Config::Proxy& proxy, const std::string& repo) {
  for (const Config::Upstream& upstream : proxy.upstreams) {  // longest prefix first
    std::string remote;
    if (upstream.prefix.empty()) {
      remote = repo;
    } else if (repo.size() > upstream.prefix.size() + 1 && repo.starts_with(upstream.prefix) &&
               repo[upstream.prefix.size()] == '/') {
      remote = repo.substr(upstream.prefix.size() + 1);
    } else {
      continue;
    }
    if (IsDockerHub(upstream.remote_url) && remote.find('/') == std::string::npos) {
      remote = "library/" + remote;
    }
    return UpstreamRoute{&upstream, remote};
  }
  return std::nullopt;
}

std::function<std::optional<std::chrono::system_clock::time_point>(const std::string&)>
CacheExpiry(const Config::Proxy& proxy) {
  return [proxy](const std::string& repo) -> std::optional<std::chrono::system_clock::time_point> {
    auto route = RouteToUpstream(proxy, repo);
    if (!route || route->upstream->ttl.count() == 0) return std::nullopt;
    return std::chrono::system_clock::now() -
           std::chrono::duration_cast<std::chrono::system_clock::duration>(route->upstream->ttl);
  };
}

}  // namespace regfs::httpd::proxy
