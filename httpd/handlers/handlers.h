// The endpoint handlers, one class per endpoint group of the Distribution API. Each is
// created per request by the RequestRouter with the parsed Route.
#pragma once

#include "handlers/api_handler.h"

namespace regfs::httpd {

// GET /v2/ — the API version check.
class BaseHandler final : public ApiHandler {
 public:
  using ApiHandler::ApiHandler;
  void Handle(Exchange& ex) override;
};

// Any path the API does not define.
class NotFoundHandler final : public ApiHandler {
 public:
  using ApiHandler::ApiHandler;
  void Handle(Exchange& ex) override;
};

// GET /v2/_catalog?n=&last=
class CatalogHandler final : public ApiHandler {
 public:
  using ApiHandler::ApiHandler;
  void Handle(Exchange& ex) override;
};

// GET /v2/<name>/tags/list?n=&last=
class TagsHandler final : public ApiHandler {
 public:
  using ApiHandler::ApiHandler;
  void Handle(Exchange& ex) override;
};

// GET, HEAD, PUT, DELETE /v2/<name>/manifests/<reference>
class ManifestHandler final : public ApiHandler {
 public:
  using ApiHandler::ApiHandler;
  void Handle(Exchange& ex) override;

 private:
  void Get(Exchange& ex);
  void Put(Exchange& ex);
  void Delete(Exchange& ex);
};

// GET, HEAD, DELETE /v2/<name>/blobs/<digest>
class BlobHandler final : public ApiHandler {
 public:
  using ApiHandler::ApiHandler;
  void Handle(Exchange& ex) override;

 private:
  void Get(Exchange& ex, const Digest& digest);
  // A mirrored repository's blob: true when answered (fetched, streamed, or an error),
  // false when it is stored and the ordinary answer follows.
  bool ServeMirrored(Exchange& ex, const Digest& digest);
};

// POST /v2/<name>/blobs/uploads/ and GET, PATCH, PUT, DELETE /v2/<name>/blobs/uploads/<id>
class UploadHandler final : public ApiHandler {
 public:
  using ApiHandler::ApiHandler;
  void Handle(Exchange& ex) override;

 private:
  void Start(Exchange& ex);
  void Progress(Exchange& ex);
  void Patch(Exchange& ex);
  void Finish(Exchange& ex);
  void Cancel(Exchange& ex);
  // Appends the request body, honouring Content-Range. False when an error was sent.
  bool AppendBody(Exchange& ex, const std::string& id);
  void SendUploadAccepted(Exchange& ex, const UploadInfo& info);
};

// GET /v2/<name>/referrers/<digest>?artifactType=
class ReferrersHandler final : public ApiHandler {
 public:
  using ApiHandler::ApiHandler;
  void Handle(Exchange& ex) override;
};

}  // namespace regfs::httpd
