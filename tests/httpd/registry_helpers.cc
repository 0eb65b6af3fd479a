// Digests, JSON writing/reading and error-body checks.
#include "registry_helpers.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/URI.h>
#include <openssl/evp.h>

#include <cctype>
#include <cstdio>
#include <functional>
#include <random>
#include <sstream>
#include <stdexcept>

namespace regfs::testing {

std::string ManifestAcceptHeader() {
  return std::string(media::kOciManifest) + ", " + std::string(media::kOciIndex) + ", " +
         std::string(media::kDockerManifest) + ", " + std::string(media::kDockerList);
}

HeaderList ManifestAccept() { return {{"Accept", ManifestAcceptHeader()}}; }

std::string Sha256Hex(std::string_view data) {
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), hash, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest(sha256) failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[hash[i] >> 4];
    hex += kHex[hash[i] & 0xf];
  }
  return hex;
}

std::string Sha256Digest(std::string_view data) { return "sha256:" + Sha256Hex(data); }

std::string RandomBytes(size_t size, std::string_view seed) {
  std::mt19937_64 generator(std::hash<std::string_view>{}(seed));
  std::string bytes;
  bytes.reserve(size + 8);
  while (bytes.size() < size) {
    uint64_t word = generator();
    bytes.append(reinterpret_cast<const char*>(&word), sizeof(word));
  }
  bytes.resize(size);
  return bytes;
}

std::string JsonQuote(std::string_view text) {
  std::string quoted = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        quoted += "\\\"";
        break;
      case '\\':
        quoted += "\\\\";
        break;
      case '\n':
        quoted += "\\n";
        break;
      case '\t':
        quoted += "\\t";
        break;
      default:
        if (c < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
          quoted += escaped;
        } else {
          quoted += static_cast<char>(c);
        }
    }
  }
  return quoted + "\"";
}

std::string JsonStringArray(const std::vector<std::string>& values) {
  std::string json = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) json += ",";
    json += JsonQuote(values[i]);
  }
  return json + "]";
}

namespace {

std::string AnnotationsJson(const std::map<std::string, std::string>& annotations) {
  std::string json = "{";
  bool first = true;
  for (const auto& [key, value] : annotations) {
    if (!first) json += ",";
    first = false;
    json += JsonQuote(key) + ":" + JsonQuote(value);
  }
  return json + "}";
}

std::string DescriptorArray(const std::vector<Descriptor>& descriptors) {
  std::string json = "[";
  for (size_t i = 0; i < descriptors.size(); ++i) {
    if (i > 0) json += ",";
    json += descriptors[i].ToJson();
  }
  return json + "]";
}

}  // namespace

std::string Descriptor::ToJson() const {
  std::string json = "{\"mediaType\":" + JsonQuote(media_type) +
                     ",\"digest\":" + JsonQuote(digest) + ",\"size\":" + std::to_string(size);
  if (!artifact_type.empty()) json += ",\"artifactType\":" + JsonQuote(artifact_type);
  if (!annotations.empty()) json += ",\"annotations\":" + AnnotationsJson(annotations);
  if (!platform_json.empty()) json += ",\"platform\":" + platform_json;
  return json + "}";
}

Descriptor DescriptorOf(std::string_view media_type, std::string_view content) {
  Descriptor descriptor;
  descriptor.media_type = media_type;
  descriptor.digest = Sha256Digest(content);
  descriptor.size = static_cast<int64_t>(content.size());
  return descriptor;
}

Descriptor EmptyConfigDescriptor() { return DescriptorOf(media::kOciEmpty, kEmptyJsonBlob); }

std::string BuildImageManifest(const ManifestSpec& spec) {
  std::string json = "{\"schemaVersion\":2";
  if (!spec.media_type.empty()) json += ",\"mediaType\":" + JsonQuote(spec.media_type);
  if (!spec.artifact_type.empty()) json += ",\"artifactType\":" + JsonQuote(spec.artifact_type);
  json += ",\"config\":" + spec.config.ToJson();
  json += ",\"layers\":" + DescriptorArray(spec.layers);
  if (spec.subject) json += ",\"subject\":" + spec.subject->ToJson();
  if (!spec.annotations.empty()) json += ",\"annotations\":" + AnnotationsJson(spec.annotations);
  return json + "}";
}

std::string BuildIndex(const IndexSpec& spec) {
  std::string json = "{\"schemaVersion\":2";
  if (!spec.media_type.empty()) json += ",\"mediaType\":" + JsonQuote(spec.media_type);
  if (!spec.artifact_type.empty()) json += ",\"artifactType\":" + JsonQuote(spec.artifact_type);
  json += ",\"manifests\":" + DescriptorArray(spec.manifests);
  if (spec.subject) json += ",\"subject\":" + spec.subject->ToJson();
  if (!spec.annotations.empty()) json += ",\"annotations\":" + AnnotationsJson(spec.annotations);
  return json + "}";
}

Poco::JSON::Object::Ptr ParseObject(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var value = parser.parse(text);
    if (value.type() == typeid(Poco::JSON::Object::Ptr)) {
      return value.extract<Poco::JSON::Object::Ptr>();
    }
  } catch (const Poco::Exception&) {
  } catch (const std::exception&) {
  }
  return nullptr;
}

std::optional<std::vector<std::string>> StringArray(const Poco::JSON::Object::Ptr& object,
                                                    const std::string& key) {
  if (!object || !object->isArray(key)) return std::nullopt;
  Poco::JSON::Array::Ptr array = object->getArray(key);
  std::vector<std::string> values;
  for (size_t i = 0; i < array->size(); ++i) {
    Poco::Dynamic::Var item = array->get(static_cast<unsigned>(i));
    if (!item.isString()) return std::nullopt;
    values.push_back(item.extract<std::string>());
  }
  return values;
}

std::vector<std::string> ErrorCodes(const HttpResponse& response) {
  std::vector<std::string> codes;
  Poco::JSON::Object::Ptr body = ParseObject(response.body);
  if (!body || !body->isArray("errors")) return codes;
  Poco::JSON::Array::Ptr errors = body->getArray("errors");
  for (size_t i = 0; i < errors->size(); ++i) {
    Poco::JSON::Object::Ptr error = errors->getObject(static_cast<unsigned>(i));
    if (error && error->has("code") && error->get("code").isString()) {
      codes.push_back(error->getValue<std::string>("code"));
    }
  }
  return codes;
}

::testing::AssertionResult IsRegistryErrorOneOf(const HttpResponse& response, int status,
                                                const std::vector<std::string>& codes) {
  std::ostringstream expected;
  expected << "expected HTTP " << status << " with error code";
  for (const auto& code : codes) expected << ' ' << code;
  auto failure = [&](std::string_view why) {
    return ::testing::AssertionFailure() << expected.str() << ", but " << why << "\n"
                                         << response.Describe();
  };
  if (response.status != status) return failure("the status differs");
  if (response.MediaType() != "application/json") {
    return failure("Content-Type is not application/json");
  }
  Poco::JSON::Object::Ptr body = ParseObject(response.body);
  if (!body || !body->isArray("errors")) return failure("the body has no \"errors\" array");
  Poco::JSON::Array::Ptr errors = body->getArray("errors");
  if (errors->size() == 0) return failure("\"errors\" is empty");
  for (size_t i = 0; i < errors->size(); ++i) {
    Poco::JSON::Object::Ptr error = errors->getObject(static_cast<unsigned>(i));
    if (!error || !error->has("code") || !error->get("code").isString() || !error->has("message") ||
        !error->get("message").isString()) {
      return failure("an error lacks a string \"code\" or \"message\"");
    }
  }
  for (const auto& code : ErrorCodes(response)) {
    for (const auto& wanted : codes) {
      if (code == wanted) return ::testing::AssertionSuccess();
    }
  }
  return failure("no error has that code");
}

::testing::AssertionResult IsRegistryError(const HttpResponse& response, int status,
                                           std::string_view code) {
  return IsRegistryErrorOneOf(response, status, {std::string(code)});
}

std::optional<std::string> NextLink(const HttpResponse& response) {
  std::string link = response.Header("Link");
  size_t open = link.find('<');
  size_t close = link.find('>', open);
  if (open == std::string::npos || close == std::string::npos) return std::nullopt;
  std::string params = link.substr(close + 1);
  if (params.find("rel=\"next\"") == std::string::npos &&
      params.find("rel=next") == std::string::npos) {
    return std::nullopt;
  }
  return ResolveLocation(link.substr(open + 1, close - open - 1));
}

std::string QueryEscape(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string escaped;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      escaped += static_cast<char>(c);
    } else {
      escaped += '%';
      escaped += kHex[c >> 4];
      escaped += kHex[c & 0xf];
    }
  }
  return escaped;
}

std::map<std::string, std::string> QueryParams(std::string_view target) {
  std::map<std::string, std::string> params;
  Poco::URI uri("http://localhost" + ResolveLocation(target));
  for (const auto& [key, value] : uri.getQueryParameters()) params[key] = value;
  return params;
}

}  // namespace regfs::testing
