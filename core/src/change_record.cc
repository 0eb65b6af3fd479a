#include "regfs/core/change_record.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <sstream>

#include "change_event_json.h"

namespace regfs {

std::string EncodeChangeRecord(const ChangeRecord& record) {
  Poco::JSON::Object o;
  Poco::JSON::Array events;
  for (const auto& e : record.events) events.add(EventToJson(e));
  o.set("events", events);
  if (!record.actor.empty()) o.set("actor", record.actor);
  o.set("instance", record.instance);
  if (!record.source_addr.empty()) o.set("source", record.source_addr);
  const RequestInfo& r = record.request;
  if (!r.id.empty() || !r.method.empty()) {
    Poco::JSON::Object request;
    request.set("id", r.id);
    request.set("addr", r.addr);
    request.set("host", r.host);
    request.set("method", r.method);
    request.set("useragent", r.user_agent);
    o.set("request", request);
  }
  std::ostringstream out;
  o.stringify(out);
  return out.str();
}

Result<ChangeRecord> DecodeChangeRecord(std::string_view body) {
  try {
    Poco::JSON::Parser parser;
    auto o = parser.parse(std::string(body)).extract<Poco::JSON::Object::Ptr>();
    if (!o) return Status::Corruption("change record is not an object");
    ChangeRecord record;
    auto events = o->getArray("events");
    if (!events) return Status::Corruption("change record has no events");
    for (size_t i = 0; i < events->size(); ++i) {
      auto e = events->getObject(static_cast<unsigned>(i));
      if (!e) return Status::Corruption("change record event is not an object");
      auto event = EventFromJson(*e);
      if (!event.ok()) return event.status();
      record.events.push_back(std::move(*event));
    }
    record.actor = o->optValue<std::string>("actor", "");
    record.instance = o->optValue<std::string>("instance", "");
    record.source_addr = o->optValue<std::string>("source", "");
    if (auto r = o->getObject("request")) {
      record.request.id = r->optValue<std::string>("id", "");
      record.request.addr = r->optValue<std::string>("addr", "");
      record.request.host = r->optValue<std::string>("host", "");
      record.request.method = r->optValue<std::string>("method", "");
      record.request.user_agent = r->optValue<std::string>("useragent", "");
    }
    return record;
  } catch (const Poco::Exception& ex) {
    return Status::Corruption("change record: " + ex.displayText());
  } catch (const std::exception& ex) {
    return Status::Corruption(std::string("change record: ") + ex.what());
  }
}

}  // namespace regfs
