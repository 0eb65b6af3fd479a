#include "byte_ranges.h"
#include "handlers/handlers.h"

namespace regfs::httpd {

using Poco::Net::HTTPResponse;

namespace {

std::string RangeHeader(uint64_t size) {
  // registry:2 answers "0-0" for an empty upload; clients expect that shape.
  return "0-" + std::to_string(size == 0 ? 0 : size - 1);
}

}  // namespace

void UploadHandler::Handle(Exchange& ex) {
  const std::string& m = ex.method();
  if (route_.kind == Route::Kind::kUploadStart) {
    if (m == "POST") return Start(ex);
    return MethodNotAllowed(ex, "POST");
  }
  if (m == "GET" || m == "HEAD") return Progress(ex);
  if (m == "PATCH") return Patch(ex);
  if (m == "PUT") return Finish(ex);
  if (m == "DELETE") return Cancel(ex);
  MethodNotAllowed(ex, "GET, PATCH, PUT, DELETE");
}

void UploadHandler::SendUploadAccepted(Exchange& ex, const UploadInfo& info) {
  auto& res = ex.response();
  res.set("Location", ex.Url("/v2/" + route_.name + "/blobs/uploads/" + info.id));
  res.set("Docker-Upload-UUID", info.id);
  res.set("Range", RangeHeader(info.size));
  ex.SendStatus(HTTPResponse::HTTP_ACCEPTED);
}

void UploadHandler::Start(Exchange& ex) {
  Registry& registry = ex.registry();
  auto mount = ex.Query("mount");
  auto from = ex.Query("from");
  // Pull on `from` was part of what this request needed to be let in (ApiHandler::Needs).
  if (mount && from) {
    auto digest = Digest::Parse(*mount);
    if (!digest.ok()) return ex.SendError(digest.status());
    auto mounted = registry.MountBlob(route_.name, *from, *digest);
    if (mounted.ok()) {
      auto& res = ex.response();
      res.set("Location", ex.Url("/v2/" + route_.name + "/blobs/" + digest->ToString()));
      res.set("Docker-Content-Digest", digest->ToString());
      return ex.SendStatus(HTTPResponse::HTTP_CREATED);
    }
    if (mounted.status().reason() == Status::Reason::kUnsupported) {
      return ex.SendError(mounted.status());
    }
    // The source lacks the blob (or is no valid name): the spec says start a normal upload.
  }
  std::optional<Digest> digest;
  if (auto text = ex.Query("digest")) {
    auto parsed = Digest::Parse(*text);
    if (!parsed.ok()) return ex.SendError(parsed.status());
    digest = *parsed;
  }
  // Every session holds a folder until it finishes or is purged: bound them per repository.
  if (auto open = registry.ListUploads(route_.name);
      open.ok() && open->size() >= context_.config.limits.uploads_per_repository) {
    ex.response().set("Retry-After", "60");
    return ex.SendError(HTTPResponse::HTTP_TOO_MANY_REQUESTS, "TOOMANYREQUESTS",
                        std::to_string(open->size()) +
                            " uploads are already open in this repository; finish or cancel "
                            "some (limits.uploadsperrepository)");
  }
  auto upload = registry.StartUpload(route_.name);
  if (!upload.ok()) return ex.SendError(upload.status());
  if (!digest) {
    return SendUploadAccepted(ex, *upload);
  }
  // Monolithic upload: POST with ?digest= and the whole blob as body.
  if (!AppendBody(ex, upload->id)) {
    (void)registry.CancelUpload(route_.name, upload->id);
    return;
  }
  auto blob = registry.CommitUpload(route_.name, upload->id, *digest);
  if (!blob.ok()) {
    (void)registry.CancelUpload(route_.name, upload->id);
    return ex.SendError(blob.status());
  }
  auto& res = ex.response();
  res.set("Location", ex.Url("/v2/" + route_.name + "/blobs/" + digest->ToString()));
  res.set("Docker-Content-Digest", digest->ToString());
  ex.SendStatus(HTTPResponse::HTTP_CREATED);
}

void UploadHandler::Progress(Exchange& ex) {
  auto info = ex.registry().StatUpload(route_.name, route_.reference);
  if (!info.ok()) return ex.SendError(info.status());
  auto& res = ex.response();
  res.set("Location", ex.Url("/v2/" + route_.name + "/blobs/uploads/" + info->id));
  res.set("Docker-Upload-UUID", info->id);
  res.set("Range", RangeHeader(info->size));
  ex.SendStatus(HTTPResponse::HTTP_NO_CONTENT);
}

bool UploadHandler::AppendBody(Exchange& ex, const std::string& id) {
  auto& req = ex.request();
  std::optional<uint64_t> expected_offset;
  std::optional<uint64_t> expected_length;
  if (req.has("Content-Range")) {
    auto range = ParseContentRange(req.get("Content-Range"));
    if (!range) {
      ex.SendError(::regfs::Status::OutOfRange("Content-Range must be <first>-<last>"));
      return false;
    }
    expected_offset = range->first;
    expected_length = range->last - range->first + 1;
    if (req.hasContentLength() &&
        static_cast<uint64_t>(req.getContentLength64()) != *expected_length) {
      ex.SendError(::regfs::Status::OutOfRange("Content-Range and Content-Length disagree"));
      return false;
    }
  }
  if (!expected_offset && !ex.HasBody()) {
    ex.MarkBodyConsumed();
    return true;
  }
  // Each streaming body holds a thread and a file; past the limit, ask the client to retry.
  struct Slot {
    std::atomic<int>& n;
    explicit Slot(std::atomic<int>& count) : n(count) { n.fetch_add(1); }
    ~Slot() { n.fetch_sub(1); }
  } slot(context_.uploads_in_flight);
  if (static_cast<size_t>(slot.n.load()) > context_.config.limits.concurrent_uploads) {
    ex.response().set("Retry-After", "1");
    ex.SendError(HTTPResponse::HTTP_TOO_MANY_REQUESTS, "TOOMANYREQUESTS",
                 "too many uploads at once (limits.concurrentuploads); retry shortly");
    return false;
  }
  auto before = ex.registry().StatUpload(route_.name, id);
  if (!before.ok()) {
    ex.SendError(before.status());
    return false;
  }
  auto info = ex.registry().AppendUpload(route_.name, id, ex.Body(), expected_offset);
  if (!info.ok()) {
    const std::string why = ex.BodyError();
    ex.SendError(why.empty() ? info.status()
                             : ::regfs::Status::InvalidArgument(
                                   why, Status::Reason::kBlobUploadInvalid));
    return false;
  }
  ex.MarkBodyConsumed();
  uint64_t received = info->size - before->size;
  ex.CountBodyBytes(received);
  uint64_t declared = expected_length.value_or(
      req.hasContentLength() ? static_cast<uint64_t>(req.getContentLength64()) : received);
  if (received != declared) {
    // The bytes that did arrive stay: the client can ask where the upload stands and resume.
    ex.SendError(::regfs::Status::InvalidArgument("received " + std::to_string(received) +
                                                      " bytes, but the request announced " +
                                                      std::to_string(declared),
                                                  Status::Reason::kSizeInvalid));
    return false;
  }
  return true;
}

void UploadHandler::Patch(Exchange& ex) {
  if (!AppendBody(ex, route_.reference)) return;
  auto info = ex.registry().StatUpload(route_.name, route_.reference);
  if (!info.ok()) return ex.SendError(info.status());
  SendUploadAccepted(ex, *info);
}

void UploadHandler::Finish(Exchange& ex) {
  auto text = ex.Query("digest");
  if (!text) {
    return ex.SendError(::regfs::Status::InvalidArgument("the digest query parameter is required",
                                                         Status::Reason::kDigestInvalid));
  }
  auto digest = Digest::Parse(*text);
  if (!digest.ok()) return ex.SendError(digest.status());
  if (!AppendBody(ex, route_.reference)) return;
  auto blob = ex.registry().CommitUpload(route_.name, route_.reference, *digest);
  if (!blob.ok()) return ex.SendError(blob.status());
  auto& res = ex.response();
  res.set("Location", ex.Url("/v2/" + route_.name + "/blobs/" + digest->ToString()));
  res.set("Docker-Content-Digest", digest->ToString());
  ex.SendStatus(HTTPResponse::HTTP_CREATED);
}

void UploadHandler::Cancel(Exchange& ex) {
  ::regfs::Status s = ex.registry().CancelUpload(route_.name, route_.reference);
  if (!s.ok()) return ex.SendError(s);
  ex.SendStatus(HTTPResponse::HTTP_NO_CONTENT);
}

}  // namespace regfs::httpd
