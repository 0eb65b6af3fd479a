#include <istream>

#include "handlers/handlers.h"
#include "proxy/pull_through_cache.h"
#include "regfs/core/manifest.h"

namespace regfs::httpd {

using Poco::Net::HTTPResponse;

void ManifestHandler::Handle(Exchange& ex) {
  const std::string& m = ex.method();
  if (m == "GET" || m == "HEAD") return Get(ex);
  if (m == "PUT") return Put(ex);
  if (m == "DELETE") return Delete(ex);
  MethodNotAllowed(ex, "GET, HEAD, PUT, DELETE");
}

void ManifestHandler::Get(Exchange& ex) {
  auto& res = ex.response();
  const bool mirrored = context_.proxy != nullptr && context_.proxy->Mirrors(route_.name);
  if (ex.IsHead() && !mirrored) {
    auto info = ex.registry().StatManifest(route_.name, route_.reference);
    if (!info.ok()) return ex.SendError(info.status());
    res.set("Docker-Content-Digest", info->digest.ToString());
    res.set("ETag", "\"" + info->digest.ToString() + "\"");
    res.setContentType(info->media_type);
    res.setContentLength64(static_cast<Poco::Int64>(info->size));
    return ex.SendHead(HTTPResponse::HTTP_OK);
  }
  Result<Manifest> manifest = Status::Unavailable("not read");
  if (mirrored) {
    // HEAD too: a client's HEAD by tag is how it learns the tag moved upstream.
    proxy::CacheOutcome outcome;
    manifest = context_.proxy->GetManifest(route_.name, route_.reference, &outcome);
    ex.set_cache_outcome(proxy::CacheOutcomeName(outcome));
    if (!manifest.ok()) return SendProxyError(ex, manifest.status());
  } else {
    manifest = ex.registry().GetManifest(route_.name, route_.reference);
    if (!manifest.ok()) return ex.SendError(manifest.status());
  }
  res.set("Docker-Content-Digest", manifest->info.digest.ToString());
  res.set("ETag", "\"" + manifest->info.digest.ToString() + "\"");
  if (ex.IsHead()) {
    res.setContentType(manifest->info.media_type);
    res.setContentLength64(static_cast<Poco::Int64>(manifest->info.size));
    return ex.SendHead(HTTPResponse::HTTP_OK);
  }
  const bool by_tag = route_.reference.find(':') == std::string::npos;
  ex.RecordPull(ChangeEvent::Kind::kManifestPulled, route_.name, manifest->info.digest,
                manifest->info.size, manifest->info.media_type, by_tag ? route_.reference : "");
  ex.SendBody(HTTPResponse::HTTP_OK, manifest->info.media_type, manifest->bytes);
}

void ManifestHandler::Put(Exchange& ex) {
  auto& req = ex.request();
  if (req.hasContentLength() &&
      req.getContentLength64() > static_cast<Poco::Int64>(kMaxManifestBytes)) {
    return ex.SendError(Status::InvalidArgument("manifest is larger than 4 MiB",
                                                Status::Reason::kManifestTooLarge));
  }
  // Read at most one byte past the limit, so an oversized chunked body is caught too.
  std::string bytes;
  std::istream& body = ex.Body();
  char buf[65536];
  while (body && bytes.size() <= kMaxManifestBytes) {
    body.read(buf, sizeof buf);
    bytes.append(buf, static_cast<size_t>(body.gcount()));
  }
  if (bytes.size() > kMaxManifestBytes) {
    return ex.SendError(Status::InvalidArgument("manifest is larger than 4 MiB",
                                                Status::Reason::kManifestTooLarge));
  }
  if (std::string why = ex.BodyError(); !why.empty()) {
    return ex.SendError(Status::InvalidArgument(why, Status::Reason::kSizeInvalid));
  }
  ex.MarkBodyConsumed();
  if (req.hasContentLength() &&
      static_cast<Poco::Int64>(bytes.size()) != req.getContentLength64()) {
    return ex.SendError(Status::InvalidArgument(
        "the request body is shorter than its Content-Length", Status::Reason::kSizeInvalid));
  }
  auto result =
      ex.registry().PutManifest(route_.name, route_.reference, req.getContentType(), bytes);
  if (!result.ok()) return ex.SendError(result.status());
  auto& res = ex.response();
  const std::string digest = result->digest.ToString();
  res.set("Location", ex.Url("/v2/" + route_.name + "/manifests/" + digest));
  res.set("Docker-Content-Digest", digest);
  if (result->subject) res.set("OCI-Subject", result->subject->ToString());
  ex.SendStatus(HTTPResponse::HTTP_CREATED);
}

void ManifestHandler::Delete(Exchange& ex) {
  Status s = ex.registry().DeleteManifest(route_.name, route_.reference);
  if (!s.ok()) return ex.SendError(s);
  ex.SendStatus(HTTPResponse::HTTP_ACCEPTED);
}

}  // namespace regfs::httpd
