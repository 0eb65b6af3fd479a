#include "notifications/event_format.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSONString.h>

#include <algorithm>
#include <ctime>
#include <sstream>

namespace regfs::httpd {
namespace {

using Poco::JSON::Object;

// What registry:2 says of every blob's media type.
constexpr char kBlobMediaType[] = "application/octet-stream";

Object::Ptr NewObject() { return new Object(Poco::JSON_PRESERVE_KEY_ORDER); }

// A name-based (version 5 layout) UUID of the log, the entry and the event's place in it.
std::string StableEventId(const std::string& log_identity, uint64_t sequence, size_t index) {
  const std::string hex = Digest::Sha256Of(log_identity + ":" + std::to_string(sequence) + ":" +
                                           std::to_string(index))
                              .hex();
  std::string id = hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-5" + hex.substr(13, 3) + "-";
  const char variant = "89ab"[std::stoi(hex.substr(16, 1), nullptr, 16) & 3];
  id += std::string(1, variant) + hex.substr(17, 3) + "-" + hex.substr(20, 12);
  return id;
}

std::string BaseUrl(const ChangeRecord& record, const EventOptions& options) {
  if (!options.configured_host.empty()) return options.configured_host;
  const std::string& host = record.request.host.empty() ? record.source_addr : record.request.host;
  return std::string(options.tls ? "https://" : "http://") + host;
}

struct Target {
  std::string media_type;
  std::optional<Digest> digest;
  uint64_t size = 0;
  bool has_size = false;
  std::string repository;
  std::string from_repository;
  std::string url;
  std::string tag;
  std::vector<Descriptor> references;
};

Object::Ptr TargetJson(const Target& t) {
  Object::Ptr o = NewObject();
  if (!t.media_type.empty()) o->set("mediaType", t.media_type);
  if (t.has_size) o->set("size", t.size);
  if (t.digest) o->set("digest", t.digest->ToString());
  if (t.has_size) o->set("length", t.size);
  o->set("repository", t.repository);
  if (!t.from_repository.empty()) o->set("fromRepository", t.from_repository);
  if (!t.url.empty()) o->set("url", t.url);
  if (!t.tag.empty()) o->set("tag", t.tag);
  if (!t.references.empty()) {
    Poco::JSON::Array refs;
    for (const auto& d : t.references) {
      Object::Ptr r = NewObject();
      r->set("mediaType", d.media_type);
      r->set("size", d.size);
      r->set("digest", d.digest.ToString());
      refs.add(r);
    }
    o->set("references", refs);
  }
  return o;
}

// The events of one record as (action, target) pairs, in order.
std::vector<std::pair<std::string, Target>> Translate(const ChangeRecord& record,
                                                      const EventOptions& options) {
  std::vector<std::pair<std::string, Target>> out;
  const std::string base = BaseUrl(record, options);
  const auto& events = record.events;
  for (size_t i = 0; i < events.size(); ++i) {
    const ChangeEvent& e = events[i];
    Target t;
    t.repository = e.repository;
    t.digest = e.digest;
    const std::string digest = e.digest ? e.digest->ToString() : "";
    switch (e.kind) {
      case ChangeEvent::Kind::kBlobLinked:
      case ChangeEvent::Kind::kBlobPulled:
        t.media_type = kBlobMediaType;
        t.size = e.size;
        t.has_size = true;
        t.from_repository = e.from_repository;
        t.url = base + "/v2/" + e.repository + "/blobs/" + digest;
        out.emplace_back(e.kind == ChangeEvent::Kind::kBlobPulled ? "pull"
                         : e.from_repository.empty()              ? "push"
                                                                  : "mount",
                         t);
        break;
      case ChangeEvent::Kind::kManifestPut:
      case ChangeEvent::Kind::kManifestPulled:
        t.media_type = e.media_type;
        t.size = e.size;
        t.has_size = true;
        t.tag = e.tag;
        t.url = base + "/v2/" + e.repository + "/manifests/" + digest;
        // A PUT by tag stores the manifest and sets the tag: one push event with the tag.
        if (e.kind == ChangeEvent::Kind::kManifestPut && i + 1 < events.size() &&
            events[i + 1].kind == ChangeEvent::Kind::kTagSet && events[i + 1].digest == e.digest &&
            events[i + 1].repository == e.repository) {
          t.tag = events[++i].tag;
        }
        if (options.include_references && options.references && e.digest) {
          t.references = options.references(e.repository, *e.digest);
        }
        out.emplace_back(e.kind == ChangeEvent::Kind::kManifestPulled ? "pull" : "push", t);
        break;
      case ChangeEvent::Kind::kTagSet:
        // A tag set on a manifest already there (a PUT by tag of stored content, ln -s on
        // the mount): registry:2 sends a manifest push with the tag for the PUT.
        t.tag = e.tag;
        t.url = base + "/v2/" + e.repository + "/manifests/" + digest;
        if (options.include_references && options.references && e.digest) {
          t.references = options.references(e.repository, *e.digest);
        }
        out.emplace_back("push", t);
        break;
      case ChangeEvent::Kind::kManifestDeleted:
      case ChangeEvent::Kind::kBlobUnlinked:
        out.emplace_back("delete", t);
        break;
      case ChangeEvent::Kind::kTagDeleted:
        t.digest.reset();  // registry:2's tag delete names the tag only
        t.tag = e.tag;
        out.emplace_back("delete", t);
        break;
      case ChangeEvent::Kind::kRepositoryDeleted:
        t.digest.reset();
        out.emplace_back("delete", t);
        break;
      case ChangeEvent::Kind::kUploadStarted:
      case ChangeEvent::Kind::kUploadEnded:
        break;  // not events of registry:2 (and not in the log)
    }
  }
  return out;
}

}  // namespace

std::string Rfc3339Nano(std::chrono::system_clock::time_point t) {
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = date;
  int64_t fraction = ns % 1'000'000'000;
  if (fraction != 0) {
    char digits[16];
    std::snprintf(digits, sizeof digits, ".%09lld", static_cast<long long>(fraction));
    std::string f = digits;
    while (f.back() == '0') f.pop_back();  // Go drops trailing zeros
    out += f;
  }
  return out + "Z";
}

std::vector<Object::Ptr> EventsOf(const LogEntry& entry, const ChangeRecord& record,
                                  const EventOptions& options) {
  std::vector<Object::Ptr> out;
  auto translated = Translate(record, options);
  for (size_t i = 0; i < translated.size(); ++i) {
    const auto& [action, target] = translated[i];
    Object::Ptr event = NewObject();
    event->set("id", StableEventId(options.log_identity, entry.sequence, i));
    // Distinct events of one entry get distinct times, as registry:2's do.
    event->set("timestamp", Rfc3339Nano(entry.time + std::chrono::nanoseconds(i)));
    event->set("action", action);
    event->set("target", TargetJson(target));
    Object::Ptr request = NewObject();
    request->set("id", record.request.id);
    request->set("addr", record.request.addr);
    request->set("host", record.request.host);
    request->set("method", record.request.method);
    request->set("useragent", record.request.user_agent);
    event->set("request", request);
    Object::Ptr actor = NewObject();
    if (!record.actor.empty()) actor->set("name", record.actor);
    event->set("actor", actor);
    Object::Ptr source = NewObject();
    source->set("addr", record.source_addr);
    source->set("instanceID", record.instance);
    event->set("source", source);
    out.push_back(event);
  }
  return out;
}

bool IsCacheUpkeep(const Object& event, const EventOptions& options) {
  if (!options.mirrored || event.optValue<std::string>("action", "") == "pull") return false;
  auto target = event.getObject("target");
  return target && options.mirrored(target->optValue<std::string>("repository", ""));
}

bool IsIgnored(const Object& event, const Config::NotificationEndpoint& endpoint) {
  const std::string action = event.optValue<std::string>("action", "");
  if (std::find(endpoint.ignored_actions.begin(), endpoint.ignored_actions.end(), action) !=
      endpoint.ignored_actions.end()) {
    return true;
  }
  auto target = event.getObject("target");
  const std::string media_type = target ? target->optValue<std::string>("mediaType", "") : "";
  return !media_type.empty() &&
         std::find(endpoint.ignored_media_types.begin(), endpoint.ignored_media_types.end(),
                   media_type) != endpoint.ignored_media_types.end();
}

std::string EnvelopeBody(const std::vector<Object::Ptr>& events) {
  Object envelope(Poco::JSON_PRESERVE_KEY_ORDER);
  Poco::JSON::Array list;
  for (const auto& e : events) list.add(e);
  envelope.set("events", list);
  std::ostringstream out;
  envelope.stringify(out);
  return out.str();
}

std::string EnvelopeMediaType(const Config::NotificationEndpoint& endpoint) {
  return endpoint.envelope_version == "v2" ? "application/vnd.docker.distribution.events.v2+json"
                                           : "application/vnd.docker.distribution.events.v1+json";
}

std::string CloudEventBody(const Object& event) {
  Object ce(Poco::JSON_PRESERVE_KEY_ORDER);
  auto target = event.getObject("target");
  auto source = event.getObject("source");
  const std::string repository = target ? target->optValue<std::string>("repository", "") : "";
  const std::string tag = target ? target->optValue<std::string>("tag", "") : "";
  ce.set("specversion", "1.0");
  ce.set("id", event.optValue<std::string>("id", ""));
  ce.set("source", "regfs://" + (source ? source->optValue<std::string>("addr", "") : ""));
  ce.set("type", "regfs.registry." + event.optValue<std::string>("action", ""));
  ce.set("subject", tag.empty() ? repository : repository + ":" + tag);
  ce.set("time", event.optValue<std::string>("timestamp", ""));
  ce.set("datacontenttype", "application/json");
  ce.set("data", Object::Ptr(new Object(event)));
  std::ostringstream out;
  ce.stringify(out);
  return out.str();
}

}  // namespace regfs::httpd
