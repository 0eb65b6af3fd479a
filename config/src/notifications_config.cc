#include "notifications_config.h"

#include <set>

#include "yaml_values.h"

namespace regfs {
namespace {

Status Invalid(const std::string& where, const std::string& what) {
  return Status::InvalidArgument("notifications.endpoints " + where + ": " + what);
}


Status ReadEndpoint(const YAML::Node& node, const std::string& where,
                    Config::NotificationEndpoint* e) {
  if (!node.IsMap()) return Invalid(where, "each endpoint is a map (name, url, ...)");
  static const std::set<std::string> kKeys = {
      "name",   "disabled", "url",    "headers",  "timeout",   "threshold", "backoff",
      "ignoredmediatypes", "ignore", "format", "envelope", "secret", "maxevents", "maxage"};
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    if (!kKeys.count(key)) return Invalid(where, "unknown key " + key);
  }
  if (node["name"]) e->name = node["name"].as<std::string>();
  if (e->name.empty()) return Invalid(where, "every endpoint needs a name");
  const std::string at = where + " (" + e->name + ")";
  if (node["disabled"]) e->disabled = node["disabled"].as<bool>();
  if (node["url"]) e->url = node["url"].as<std::string>();
  if (!e->url.starts_with("http://") && !e->url.starts_with("https://")) {
    return Invalid(at, "url must be an http:// or https:// URL");
  }
  if (const YAML::Node headers = node["headers"]) {
    if (!headers.IsMap()) return Invalid(at, "headers is a map of header name to values");
    for (const auto& kv : headers) {
      e->headers.emplace_back(kv.first.as<std::string>(), ScalarOrList(kv.second));
    }
  }
  for (auto [key, target] : {std::pair{"timeout", &e->timeout}, std::pair{"backoff", &e->backoff}}) {
    if (const YAML::Node n = node[key]; n && !n.IsNull()) {
      auto d = ParseGoDuration(n.as<std::string>());
      if (!d.ok()) return Invalid(at, std::string(key) + ": " + d.status().message());
      if (d->count() < 0) return Invalid(at, std::string(key) + " must not be negative");
      *target = *d;
    }
  }
  if (e->timeout.count() == 0) e->timeout = std::chrono::milliseconds(1000);  // registry:2's default
  if (node["threshold"]) {
    e->threshold = node["threshold"].as<int>();
    if (e->threshold < 0) return Invalid(at, "threshold must not be negative");
  }
  e->ignored_media_types = ScalarOrList(node["ignoredmediatypes"]);
  if (const YAML::Node ignore = node["ignore"]) {
    for (const auto& m : ScalarOrList(ignore["mediatypes"])) e->ignored_media_types.push_back(m);
    e->ignored_actions = ScalarOrList(ignore["actions"]);
    for (const auto& a : e->ignored_actions) {
      if (a != "push" && a != "pull" && a != "mount" && a != "delete") {
        return Invalid(at, "ignore.actions: unknown action " + a + " (push, pull, mount, delete)");
      }
    }
  }
  if (node["format"]) e->format = node["format"].as<std::string>();
  if (e->format != "envelope" && e->format != "cloudevents") {
    return Invalid(at, "format must be envelope or cloudevents");
  }
  if (node["envelope"]) e->envelope_version = node["envelope"].as<std::string>();
  if (e->envelope_version != "v1" && e->envelope_version != "v2") {
    return Invalid(at, "envelope must be v1 or v2");
  }
  if (node["secret"]) e->secret = node["secret"].as<std::string>();
  if (node["maxevents"]) {
    const long long n = node["maxevents"].as<long long>();
    if (n <= 0) return Invalid(at, "maxevents must be positive");
    e->max_pending = static_cast<uint64_t>(n);
  }
  if (const YAML::Node n = node["maxage"]; n && !n.IsNull()) {
    auto d = ParseGoDuration(n.as<std::string>());
    if (!d.ok()) return Invalid(at, "maxage: " + d.status().message());
    if (d->count() <= 0) return Invalid(at, "maxage must be positive");
    e->max_age = std::chrono::duration_cast<std::chrono::seconds>(*d);
  }
  return Status::Ok();
}

}  // namespace

Result<std::chrono::milliseconds> ParseGoDuration(const std::string& text) {
  if (text.empty()) return Status::InvalidArgument("empty duration");
  int64_t total_ms = 0;
  size_t pos = 0;
  const bool negative = text[0] == '-';
  if (negative) ++pos;
  while (pos < text.size()) {
    size_t digits = pos;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == pos || digits - pos > 9) {
      return Status::InvalidArgument("'" + text + "' is not a duration (like 1s, 500ms, 1m30s)");
    }
    const int64_t value = std::stoll(text.substr(pos, digits - pos));
    size_t unit_end = digits;
    while (unit_end < text.size() && (text[unit_end] < '0' || text[unit_end] > '9')) ++unit_end;
    const std::string unit = text.substr(digits, unit_end - digits);
    int64_t per_unit = 0;
    if (unit == "ms") per_unit = 1;
    if (unit == "s") per_unit = 1000;
    if (unit == "m") per_unit = 60'000;
    if (unit == "h") per_unit = 3'600'000;
    if (per_unit == 0) {
      return Status::InvalidArgument("'" + text + "' is not a duration (units: h, m, s, ms)");
    }
    total_ms += value * per_unit;
    pos = unit_end;
  }
  return std::chrono::milliseconds(negative ? -total_ms : total_ms);
}

Status ReadNotifications(const YAML::Node& notifications, Config::Notifications* out) {
  if (!notifications || notifications.IsNull()) return Status::Ok();
  try {
    const YAML::Node& section = notifications;  // const: lookups must not add keys
    if (const YAML::Node events = section["events"]; events && events.IsMap()) {
      if (const YAML::Node refs = events["includereferences"]) {
        out->include_references = refs.as<bool>();
      }
    }
    YAML::Node endpoints = section["endpoints"];
    if (!endpoints || endpoints.IsNull()) return Status::Ok();
    // REGISTRY_NOTIFICATIONS_ENDPOINTS gives the whole list as YAML text.
    if (endpoints.IsScalar()) endpoints = YAML::Load(endpoints.as<std::string>());
    if (!endpoints.IsSequence()) {
      return Status::InvalidArgument("notifications.endpoints is a list of endpoints");
    }
    std::set<std::string> names;
    for (size_t i = 0; i < endpoints.size(); ++i) {
      Config::NotificationEndpoint e;
      REGFS_RETURN_IF_ERROR(ReadEndpoint(endpoints[i], "[" + std::to_string(i) + "]", &e));
      if (!names.insert(e.name).second) {
        return Status::InvalidArgument("notifications.endpoints: two endpoints are named " + e.name);
      }
      out->endpoints.push_back(std::move(e));
    }
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("notifications: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace regfs
