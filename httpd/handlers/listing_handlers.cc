#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <sstream>

#include "handlers/handlers.h"
#include "handlers/pagination.h"

namespace regfs::httpd {

namespace {

std::string ToJson(const std::string& key, const std::vector<std::string>& entries,
                   const std::string* name) {
  Poco::JSON::Object obj(Poco::JSON_PRESERVE_KEY_ORDER);
  if (name) obj.set("name", *name);
  Poco::JSON::Array::Ptr arr = new Poco::JSON::Array;
  for (const auto& e : entries) arr->add(e);
  obj.set(key, arr);
  std::ostringstream out;
  obj.stringify(out);
  return out.str();
}

}  // namespace

void CatalogHandler::Handle(Exchange& ex) {
  if (ex.method() != "GET" && ex.method() != "HEAD") return MethodNotAllowed(ex, "GET, HEAD");
  auto req = ReadPageRequest(ex);
  if (!req.ok()) return ex.SendError(req.status());
  // More than catalog.maxentries is answered with a shorter page and a Link to the rest.
  size_t n = std::min(req->n.value_or(context_.config.catalog_max_entries),
                      context_.config.catalog_max_entries);
  auto page = ex.registry().ListRepositories(req->last, n);
  if (!page.ok()) return ex.SendError(page.status());
  AddNextLink(ex, "/v2/_catalog", n, *page);
  ex.SendBody(Poco::Net::HTTPResponse::HTTP_OK, "application/json",
              ToJson("repositories", page->entries, nullptr));
}

void TagsHandler::Handle(Exchange& ex) {
  if (ex.method() != "GET" && ex.method() != "HEAD") return MethodNotAllowed(ex, "GET, HEAD");
  auto req = ReadPageRequest(ex);
  if (!req.ok()) return ex.SendError(req.status());
  size_t n = req->n.value_or(static_cast<size_t>(-1));
  auto page = ex.registry().ListTags(route_.name, req->last, n);
  if (!page.ok()) return ex.SendError(page.status());
  AddNextLink(ex, "/v2/" + route_.name + "/tags/list", n, *page);
  ex.SendBody(Poco::Net::HTTPResponse::HTTP_OK, "application/json",
              ToJson("tags", page->entries, &route_.name));
}

}  // namespace regfs::httpd
