// The sections that make regfs-httpd a service among replicas: http.debug, health, redis
// and storage.cache, as registry:2 spells them.
#pragma once

#include <yaml-cpp/yaml.h>

#include "regfs/config/config.h"

namespace regfs {

// `root` is the whole configuration. Errors name the key at fault and never quote the
// Redis password.
Status ReadServiceSections(const YAML::Node& root, Config* out);

}  // namespace regfs
