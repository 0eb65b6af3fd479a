#include "regfs/core/manifest.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

namespace regfs {
namespace {

using Poco::JSON::Array;
using Poco::JSON::Object;

Status Invalid(std::string msg) {
  return Status::InvalidArgument(std::move(msg), Status::Reason::kManifestInvalid);
}

// Optional string member; Invalid when present but not a string.
Result<std::string> OptionalString(const Object::Ptr& obj, const std::string& key) {
  if (!obj->has(key) || obj->isNull(key)) return std::string();
  Poco::Dynamic::Var v = obj->get(key);
  if (!v.isString()) return Invalid("'" + key + "' must be a string");
  return v.extract<std::string>();
}

Result<std::map<std::string, std::string>> ParseAnnotations(const Object::Ptr& obj) {
  std::map<std::string, std::string> out;
  if (!obj->has("annotations") || obj->isNull("annotations")) return out;
  Object::Ptr a = obj->getObject("annotations");
  if (!a) return Invalid("'annotations' must be an object");
  for (const auto& [k, v] : *a) {
    if (!v.isString()) return Invalid("annotation values must be strings");
    out[k] = v.extract<std::string>();
  }
  return out;
}

Result<Descriptor> ParseDescriptor(const Poco::Dynamic::Var& var, const std::string& where) {
  if (var.type() != typeid(Object::Ptr)) return Invalid(where + " must be a descriptor object");
  Object::Ptr obj = var.extract<Object::Ptr>();
  Descriptor d;
  auto media = OptionalString(obj, "mediaType");
  if (!media.ok()) return media.status();
  d.media_type = *media;
  auto digest_text = OptionalString(obj, "digest");
  if (!digest_text.ok()) return digest_text.status();
  if (digest_text->empty()) return Invalid(where + " has no digest");
  auto digest = Digest::Parse(*digest_text);
  if (!digest.ok()) {
    return Status::InvalidArgument(where + ": " + digest.status().message(),
                                   Status::Reason::kDigestInvalid);
  }
  d.digest = *digest;
  if (!obj->has("size")) return Invalid(where + " has no size");
  Poco::Dynamic::Var size = obj->get("size");
  if (!size.isInteger()) return Invalid(where + ": size must be an integer");
  d.size = size.convert<int64_t>();
  if (d.size < 0) return Invalid(where + ": size must not be negative");
  auto at = OptionalString(obj, "artifactType");
  if (!at.ok()) return at.status();
  d.artifact_type = *at;
  auto ann = ParseAnnotations(obj);
  if (!ann.ok()) return ann.status();
  d.annotations = std::move(*ann);
  d.has_urls = obj->has("urls") && !obj->isNull("urls");
  return d;
}

Status ParseDescriptorList(const Object::Ptr& obj, const std::string& key, bool required,
                           std::vector<Descriptor>* out) {
  if (!obj->has(key) || obj->isNull(key)) {
    return required ? Invalid("manifest has no '" + key + "'") : Status::Ok();
  }
  Array::Ptr arr = obj->getArray(key);
  if (!arr) return Invalid("'" + key + "' must be an array");
  for (size_t i = 0; i < arr->size(); ++i) {
    auto d =
        ParseDescriptor(arr->get(static_cast<unsigned>(i)), key + "[" + std::to_string(i) + "]");
    if (!d.ok()) return d.status();
    out->push_back(std::move(*d));
  }
  return Status::Ok();
}

std::string_view StripParameters(std::string_view content_type) {
  auto semi = content_type.find(';');
  std::string_view t = content_type.substr(0, semi);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return t;
}

bool IsIndexType(std::string_view t) {
  return t == media_types::kOciIndex || t == media_types::kDockerManifestList;
}

Result<ParsedManifest> ParseObject(const Object::Ptr& root, std::string_view content_type) {
  if (!root->has("schemaVersion")) return Invalid("manifest has no schemaVersion");
  Poco::Dynamic::Var version = root->get("schemaVersion");
  if (!version.isInteger()) return Invalid("schemaVersion must be an integer");
  if (version.convert<int>() != 2) {
    return Invalid("only schemaVersion 2 manifests are supported (schema 1 is deprecated)");
  }

  ParsedManifest m;
  auto declared = OptionalString(root, "mediaType");
  if (!declared.ok()) return declared.status();
  std::string_view header_type = StripParameters(content_type);
  if (!declared->empty()) {
    if (!IsManifestMediaType(*declared)) return Invalid("unsupported mediaType " + *declared);
    if (IsManifestMediaType(header_type) && header_type != *declared) {
      return Invalid("Content-Type " + std::string(header_type) +
                     " does not match the manifest's mediaType " + *declared);
    }
    m.media_type = *declared;
  } else if (IsManifestMediaType(header_type)) {
    m.media_type = std::string(header_type);
  } else if (root->has("manifests")) {
    m.media_type = std::string(media_types::kOciIndex);
  } else if (root->has("config")) {
    m.media_type = std::string(media_types::kOciManifest);
  } else {
    return Invalid("cannot tell the manifest's type: no mediaType, config or manifests");
  }

  auto artifact_type = OptionalString(root, "artifactType");
  if (!artifact_type.ok()) return artifact_type.status();
  m.artifact_type = *artifact_type;

  if (IsIndexType(m.media_type)) {
    m.is_index = true;
    REGFS_RETURN_IF_ERROR(ParseDescriptorList(root, "manifests", true, &m.children));
  } else if (m.media_type == media_types::kOciArtifact) {
    if (m.artifact_type.empty()) return Invalid("artifact manifest has no artifactType");
    REGFS_RETURN_IF_ERROR(ParseDescriptorList(root, "blobs", false, &m.blobs));
  } else {
    if (!root->has("config")) return Invalid("image manifest has no config");
    auto config = ParseDescriptor(root->get("config"), "config");
    if (!config.ok()) return config.status();
    if (m.artifact_type.empty()) m.artifact_type = config->media_type;
    m.blobs.push_back(std::move(*config));
    REGFS_RETURN_IF_ERROR(ParseDescriptorList(root, "layers", true, &m.blobs));
  }

  if (root->has("subject") && !root->isNull("subject")) {
    auto subject = ParseDescriptor(root->get("subject"), "subject");
    if (!subject.ok()) return subject.status();
    m.subject = subject->digest;
  }
  auto ann = ParseAnnotations(root);
  if (!ann.ok()) return ann.status();
  m.annotations = std::move(*ann);
  return m;
}

}  // namespace

bool IsManifestMediaType(std::string_view t) {
  return t == media_types::kDockerManifest || t == media_types::kDockerManifestList ||
         t == media_types::kOciManifest || t == media_types::kOciIndex ||
         t == media_types::kOciArtifact;
}

Result<ParsedManifest> ParseManifest(std::string_view bytes, std::string_view content_type) {
  if (bytes.size() > kMaxManifestBytes) {
    return Status::InvalidArgument("manifest is larger than 4 MiB",
                                   Status::Reason::kManifestTooLarge);
  }
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var parsed = parser.parse(std::string(bytes));
    if (parsed.type() != typeid(Object::Ptr)) return Invalid("manifest must be a JSON object");
    return ParseObject(parsed.extract<Object::Ptr>(), content_type);
  } catch (const Poco::Exception& e) {
    return Invalid("manifest is not valid JSON: " + e.message());
  } catch (const std::exception& e) {
    return Invalid(std::string("manifest is not valid JSON: ") + e.what());
  }
}

}  // namespace regfs
