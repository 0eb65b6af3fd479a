// The proxy section: registry:2's single upstream (remoteurl, username, password, ttl) and
// regfs's `upstreams` list, each under a repository prefix.
#pragma once

#include <yaml-cpp/yaml.h>

#include "regfs/config/config.h"

namespace regfs {

// `proxy` is the section's node (null when absent). Errors name the key at fault and never
// quote a password.
Status ReadProxy(const YAML::Node& proxy, Config::Proxy* out);

// Checks an upstream URL: http or https, a host, an optional port, no path, no credentials.
// Returns it without a trailing slash.
Result<std::string> NormalizeUpstreamUrl(const std::string& url);

}  // namespace regfs
