#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <sstream>

#include "handlers/handlers.h"
#include "regfs/core/manifest.h"

namespace regfs::httpd {

void ReferrersHandler::Handle(Exchange& ex) {
  if (ex.method() != "GET" && ex.method() != "HEAD") return MethodNotAllowed(ex, "GET, HEAD");
  auto subject = Digest::Parse(route_.reference);
  if (!subject.ok()) return ex.SendError(subject.status());
  std::string artifact_type = ex.Query("artifactType").value_or("");
  auto referrers = ex.registry().ListReferrers(route_.name, *subject, artifact_type);
  if (!referrers.ok()) return ex.SendError(referrers.status());

  Poco::JSON::Object index(Poco::JSON_PRESERVE_KEY_ORDER);
  index.set("schemaVersion", 2);
  index.set("mediaType", std::string(media_types::kOciIndex));
  Poco::JSON::Array::Ptr manifests = new Poco::JSON::Array;
  for (const Descriptor& d : *referrers) {
    Poco::JSON::Object::Ptr desc = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    desc->set("mediaType", d.media_type);
    desc->set("digest", d.digest.ToString());
    desc->set("size", d.size);
    if (!d.artifact_type.empty()) desc->set("artifactType", d.artifact_type);
    if (!d.annotations.empty()) {
      Poco::JSON::Object::Ptr ann = new Poco::JSON::Object(Poco::JSON_PRESERVE_KEY_ORDER);
      for (const auto& [k, v] : d.annotations) ann->set(k, v);
      desc->set("annotations", ann);
    }
    manifests->add(desc);
  }
  index.set("manifests", manifests);
  std::ostringstream out;
  index.stringify(out);
  if (!artifact_type.empty()) ex.response().set("OCI-Filters-Applied", "artifactType");
  ex.SendBody(Poco::Net::HTTPResponse::HTTP_OK, std::string(media_types::kOciIndex), out.str());
}

}  // namespace regfs::httpd
