// What a webhook receiver gets: registry:2's events, made from the change log's records.
//
// One log entry (one registry operation) gives one or more events, in order: a manifest
// stored with its tag is one "push" event carrying the tag, as in registry:2. Event ids are
// derived from the log's identity, the entry and the event's place in it, so an event keeps
// its id through redeliveries by any replica and a receiver can drop duplicates.
#pragma once

#include <Poco/JSON/Object.h>

#include <functional>
#include <string>
#include <vector>

#include "regfs/config/config.h"
#include "regfs/core/change_log.h"
#include "regfs/core/change_record.h"
#include "regfs/core/manifest.h"

namespace regfs::httpd {

struct EventOptions {
  std::string log_identity;
  // Base of target.url ("https://registry.example.com"): http.host when configured,
  // else built from the request's Host (events of the mount: from the source address).
  std::string configured_host;
  bool tls = false;
  // notifications.events.includereferences: the descriptors a manifest refers to, looked
  // up when its push is delivered (nothing when it is gone by then).
  bool include_references = false;
  std::function<std::vector<Descriptor>(const std::string& repo, const Digest& digest)>
      references;
  // Repositories a pull-through cache fills (may be empty): as with registry:2's proxy,
  // storing what a pull fetched, and expiring it, is no push nor delete to notify. Their
  // pulls are notified like any.
  std::function<bool(const std::string& repo)> mirrored;
};

// The events of one entry, with every field registry:2 2.8 sends. Objects keep their keys
// in registry:2's order.
std::vector<Poco::JSON::Object::Ptr> EventsOf(const LogEntry& entry, const ChangeRecord& record,
                                              const EventOptions& options);

// Whether an event is a pull-through cache filling or expiring itself (see
// EventOptions::mirrored), never sent.
bool IsCacheUpkeep(const Poco::JSON::Object& event, const EventOptions& options);

// Whether the endpoint's ignore rules (ignoredmediatypes, ignore.mediatypes, ignore.actions)
// leave the event out.
bool IsIgnored(const Poco::JSON::Object& event, const Config::NotificationEndpoint& endpoint);

// registry:2's envelope: {"events":[...]}, and its Content-Type for the endpoint.
std::string EnvelopeBody(const std::vector<Poco::JSON::Object::Ptr>& events);
std::string EnvelopeMediaType(const Config::NotificationEndpoint& endpoint);

// One event as a CloudEvents 1.0 structured-mode JSON (application/cloudevents+json):
// specversion, id, source, type "regfs.registry.<action>", subject (the repository, with
// ":tag" when there is one), time, datacontenttype, data (the registry:2 event).
std::string CloudEventBody(const Poco::JSON::Object& event);
inline constexpr char kCloudEventsMediaType[] = "application/cloudevents+json";

// RFC 3339 with nanoseconds, as Go's time.RFC3339Nano writes UTC times.
std::string Rfc3339Nano(std::chrono::system_clock::time_point t);

}  // namespace regfs::httpd
