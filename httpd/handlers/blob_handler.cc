#include <optional>

#include "byte_ranges.h"
#include "handlers/handlers.h"
#include "proxy/pull_through_cache.h"
#include "regfs/core/names.h"
#include "regfs/core/reference.h"

namespace regfs::httpd {

using Poco::Net::HTTPResponse;

// What registry:2's blob pull events say of every blob.
constexpr char kBlobMediaType[] = "application/octet-stream";

void BlobHandler::Handle(Exchange& ex) {
  const std::string& m = ex.method();
  if (m != "GET" && m != "HEAD" && m != "DELETE") return MethodNotAllowed(ex, "GET, HEAD, DELETE");
  auto digest = Digest::Parse(route_.reference);
  if (!digest.ok()) {
    // Nothing is stored under a digest that does not parse: for every method here (all are
    // lookups) that is "not found", as for manifests.
    if (Status name = ValidateRepositoryName(route_.name); !name.ok()) return ex.SendError(name);
    if (route_.reference.size() > kMaxReferenceLength) return ex.SendError(digest.status());
    return ex.SendError(Status::NotFound("blob " + route_.reference + " is not known",
                                         Status::Reason::kBlobUnknown));
  }
  if (m != "DELETE") return Get(ex, *digest);
  Status s = ex.registry().DeleteBlob(route_.name, *digest);
  if (!s.ok()) return ex.SendError(s);
  ex.SendStatus(HTTPResponse::HTTP_ACCEPTED);
}

bool BlobHandler::ServeMirrored(Exchange& ex, const Digest& digest) {
  proxy::PullThroughCache& cache = *context_.proxy;
  proxy::CacheOutcome outcome;
  auto& res = ex.response();
  if (ex.IsHead()) {
    auto size = cache.StatBlob(route_.name, digest, &outcome);
    ex.set_cache_outcome(proxy::CacheOutcomeName(outcome));
    if (!size.ok()) {
      SendProxyError(ex, size.status());
      return true;
    }
    if (!*size) return false;  // stored
    res.set("Docker-Content-Digest", digest.ToString());
    res.set("Accept-Ranges", "bytes");
    res.setContentType("application/octet-stream");
    res.setContentLength64(static_cast<Poco::Int64>(**size));
    ex.SendHead(HTTPResponse::HTTP_OK);
    return true;
  }
  auto fetch = cache.FetchBlob(route_.name, digest, &outcome);
  ex.set_cache_outcome(proxy::CacheOutcomeName(outcome));
  if (!fetch.ok()) {
    SendProxyError(ex, fetch.status());
    return true;
  }
  if (!*fetch) return false;  // stored
  if (ex.request().has("Range")) {
    // A part of a blob is served once all of it is stored and verified.
    Status stored = (*fetch)->Wait(cache.read_timeout());
    if (!stored.ok()) {
      SendProxyError(ex, stored);
      return true;
    }
    return false;
  }
  // The bytes as they arrive; the last one once the blob is verified. A fetch that fails
  // midway cuts the answer off: the client sees a short body, never a wrong one.
  res.set("Docker-Content-Digest", digest.ToString());
  res.set("ETag", "\"" + digest.ToString() + "\"");
  res.setContentType("application/octet-stream");
  auto reader = (*fetch)->NewReader(cache.read_timeout());
  ex.RecordPull(ChangeEvent::Kind::kBlobPulled, route_.name, digest, (*fetch)->size(),
                kBlobMediaType);
  ex.SendFileBody(HTTPResponse::HTTP_OK, *reader, 0, (*fetch)->size());
  return true;
}

void BlobHandler::Get(Exchange& ex, const Digest& digest) {
  auto& res = ex.response();
  if (context_.proxy != nullptr && context_.proxy->Mirrors(route_.name) &&
      ServeMirrored(ex, digest)) {
    return;
  }
  if (!ex.IsHead()) {
    // On an object store the bytes go from the store to the client directly (registry:2's
    // default); HEAD stays here, it costs the store nothing to answer.
    auto url = ex.registry().BlobRedirect(route_.name, digest);
    if (url.ok()) {
      res.set("Docker-Content-Digest", digest.ToString());
      res.set("Location", *url);
      ex.RecordPull(ChangeEvent::Kind::kBlobPulled, route_.name, digest, 0, kBlobMediaType);
      return ex.SendStatus(HTTPResponse::HTTP_TEMPORARY_REDIRECT);
    }
    if (url.status().code() != Status::Code::kFailedPrecondition) return ex.SendError(url.status());
  }
  auto blob = ex.registry().OpenBlob(route_.name, digest, 0);
  if (!blob.ok()) return ex.SendError(blob.status());
  const uint64_t size = blob->info.size;
  res.set("Docker-Content-Digest", digest.ToString());
  res.set("ETag", "\"" + digest.ToString() + "\"");
  res.set("Accept-Ranges", "bytes");
  res.set("Cache-Control", "max-age=31536000");
  res.setContentType("application/octet-stream");

  uint64_t first = 0, length = size;
  auto status = HTTPResponse::HTTP_OK;
  if (ex.request().has("Range")) {
    bool unsatisfiable = false;
    auto range = ParseRange(ex.request().get("Range"), size, &unsatisfiable);
    if (unsatisfiable) {
      res.set("Content-Range", "bytes */" + std::to_string(size));
      return ex.SendError(HTTPResponse::HTTP_REQUESTED_RANGE_NOT_SATISFIABLE, "SIZE_INVALID",
                          "the requested range is outside the blob");
    }
    if (range) {
      first = range->first;
      length = range->last - range->first + 1;
      status = HTTPResponse::HTTP_PARTIAL_CONTENT;
      res.set("Content-Range", "bytes " + std::to_string(range->first) + "-" +
                                   std::to_string(range->last) + "/" + std::to_string(size));
    }
  }
  if (first > 0 && !ex.IsHead()) {
    // Reopen at the offset so the reader's position matches what SendFileBody sends.
    blob = ex.registry().OpenBlob(route_.name, digest, first);
    if (!blob.ok()) return ex.SendError(blob.status());
  }
  ex.RecordPull(ChangeEvent::Kind::kBlobPulled, route_.name, digest, size, kBlobMediaType);
  ex.SendFileBody(status, *blob->reader, first, length);
}

}  // namespace regfs::httpd
