#include "handlers/pagination.h"

#include <Poco/URI.h>

namespace regfs::httpd {

Result<PageRequest> ReadPageRequest(const Exchange& ex) {
  PageRequest r;
  r.last = ex.Query("last").value_or("");
  if (auto n = ex.Query("n")) {
    bool digits =
        !n->empty() && n->size() <= 9 && n->find_first_not_of("0123456789") == std::string::npos;
    if (!digits) {
      return Status::InvalidArgument("n must be a non-negative integer",
                                     Status::Reason::kPaginationInvalid);
    }
    r.n = static_cast<size_t>(std::stoul(*n));
  }
  return r;
}

void AddNextLink(Exchange& ex, const std::string& path, size_t n, const Page& page) {
  if (!page.more || page.entries.empty()) return;
  std::string last;
  Poco::URI::encode(page.entries.back(), "&=?#+/", last);
  ex.response().set("Link",
                    "<" + path + "?n=" + std::to_string(n) + "&last=" + last + ">; rel=\"next\"");
}

}  // namespace regfs::httpd
