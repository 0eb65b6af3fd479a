#include "change_event_json.h"

#include "regfs/core/change_feed.h"

namespace regfs {
namespace {

struct KindName {
  ChangeEvent::Kind kind;
  std::string_view name;
};
constexpr KindName kKindNames[] = {
    {ChangeEvent::Kind::kBlobLinked, "blob_linked"},
    {ChangeEvent::Kind::kBlobUnlinked, "blob_unlinked"},
    {ChangeEvent::Kind::kManifestPut, "manifest_put"},
    {ChangeEvent::Kind::kManifestDeleted, "manifest_deleted"},
    {ChangeEvent::Kind::kTagSet, "tag_set"},
    {ChangeEvent::Kind::kTagDeleted, "tag_deleted"},
    {ChangeEvent::Kind::kRepositoryDeleted, "repository_deleted"},
    {ChangeEvent::Kind::kUploadStarted, "upload_started"},
    {ChangeEvent::Kind::kUploadEnded, "upload_ended"},
    {ChangeEvent::Kind::kManifestPulled, "manifest_pulled"},
    {ChangeEvent::Kind::kBlobPulled, "blob_pulled"},
};

}  // namespace

std::string_view ChangeKindName(ChangeEvent::Kind kind) {
  for (const auto& k : kKindNames) {
    if (k.kind == kind) return k.name;
  }
  return "unknown";
}

std::optional<ChangeEvent::Kind> ChangeKindFromName(std::string_view name) {
  for (const auto& k : kKindNames) {
    if (k.name == name) return k.kind;
  }
  return std::nullopt;
}

Poco::JSON::Object EventToJson(const ChangeEvent& e, bool with_media_type) {
  Poco::JSON::Object o;
  o.set("kind", std::string(ChangeKindName(e.kind)));
  o.set("repository", e.repository);
  if (e.digest) o.set("digest", e.digest->ToString());
  if (!e.tag.empty()) o.set("tag", e.tag);
  if (with_media_type && !e.media_type.empty()) o.set("media_type", e.media_type);
  if (e.size != 0) o.set("size", e.size);
  if (!e.from_repository.empty()) o.set("from_repository", e.from_repository);
  if (!e.upload_id.empty()) o.set("upload_id", e.upload_id);
  return o;
}

Result<ChangeEvent> EventFromJson(const Poco::JSON::Object& o) {
  try {
    auto kind = ChangeKindFromName(o.optValue<std::string>("kind", ""));
    if (!kind) return Status::Corruption("unknown kind");
    ChangeEvent e{.kind = *kind};
    e.repository = o.optValue<std::string>("repository", "");
    if (o.has("digest")) {
      auto d = Digest::Parse(o.getValue<std::string>("digest"));
      if (!d.ok()) return Status::Corruption("bad digest");
      e.digest = *d;
    }
    e.tag = o.optValue<std::string>("tag", "");
    e.media_type = o.optValue<std::string>("media_type", "");
    e.size = o.optValue<uint64_t>("size", 0);
    e.from_repository = o.optValue<std::string>("from_repository", "");
    e.upload_id = o.optValue<std::string>("upload_id", "");
    return e;
  } catch (const Poco::Exception& ex) {
    return Status::Corruption(ex.displayText());
  } catch (const std::exception& ex) {
    return Status::Corruption(ex.what());
  }
}

}  // namespace regfs
