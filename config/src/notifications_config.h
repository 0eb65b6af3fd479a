// The notifications section: registry:2's endpoint list, plus regfs's extensions per
// endpoint (format, envelope, secret, maxevents, maxage).
#pragma once

#include <yaml-cpp/yaml.h>

#include "regfs/config/config.h"

namespace regfs {

// `notifications` is the section's node (null when absent). Errors name the endpoint and
// the key at fault; nothing in them quotes a header value or a secret.
Status ReadNotifications(const YAML::Node& notifications, Config::Notifications* out);

}  // namespace regfs
