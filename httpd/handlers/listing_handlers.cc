#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <sstream>

#include "handlers/handlers.h"
#include "handlers/pagination.h"
#include "proxy/pull_through_cache.h"

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
  Page page;
  if (!context_.authorizer.FiltersCatalog()) {
    auto listed = ex.registry().ListRepositories(req->last, n);
    if (!listed.ok()) return ex.SendError(listed.status());
    page = std::move(*listed);
  } else {
    // Only what the caller may pull: read on until the page is full or the list ends.
    // (A page may then say "more" when the rest turns out to hold nothing visible.)
    std::string last = req->last;
    while (true) {
      auto listed = ex.registry().ListRepositories(last, n);
      if (!listed.ok()) return ex.SendError(listed.status());
      if (listed->entries.empty()) break;
      last = listed->entries.back();
      size_t i = 0;
      for (; i < listed->entries.size() && page.entries.size() < n; ++i) {
        if (ex.Permits(kPull, listed->entries[i])) page.entries.push_back(listed->entries[i]);
      }
      if (page.entries.size() == n) {
        page.more = i < listed->entries.size() || listed->more;
        break;
      }
      if (!listed->more) break;
    }
  }
  AddNextLink(ex, "/v2/_catalog", n, page);
  ex.SendBody(Poco::Net::HTTPResponse::HTTP_OK, "application/json",
              ToJson("repositories", page.entries, nullptr));
}

void TagsHandler::Handle(Exchange& ex) {
  if (ex.method() != "GET" && ex.method() != "HEAD") return MethodNotAllowed(ex, "GET, HEAD");
  auto req = ReadPageRequest(ex);
  if (!req.ok()) return ex.SendError(req.status());
  size_t n = req->n.value_or(static_cast<size_t>(-1));
  Result<Page> page = Status::Unavailable("not listed");
  if (context_.proxy != nullptr && context_.proxy->Mirrors(route_.name)) {
    proxy::CacheOutcome outcome;
    page = context_.proxy->ListTags(route_.name, req->last, req->n, &outcome);
    ex.set_cache_outcome(proxy::CacheOutcomeName(outcome));
    if (!page.ok()) return SendProxyError(ex, page.status());
  } else {
    page = ex.registry().ListTags(route_.name, req->last, n);
    if (!page.ok()) return ex.SendError(page.status());
  }
  // An upstream may cut a page the client set no size for: the next one is as long.
  if (!req->n && page->more) n = page->entries.size();
  AddNextLink(ex, "/v2/" + route_.name + "/tags/list", n, *page);
  ex.SendBody(Poco::Net::HTTPResponse::HTTP_OK, "application/json",
              ToJson("tags", page->entries, &route_.name));
}

}  // namespace regfs::httpd
