#include "handlers/pagination.h"

#include <Poco/URI.h>

#include <algorithm>
#include <string_view>

namespace regfs::httpd {

Result<PageRequest> ReadPageRequest(const Exchange& ex) {
  PageRequest r;
  r.last = ex.Query("last").value_or("");
  if (auto n = ex.Query("n")) {
    bool digits = !n->empty() && n->find_first_not_of("0123456789") == std::string::npos;
    if (!digits) {
      return Status::InvalidArgument("n must be a non-negative integer",
                                     Status::Reason::kPaginationInvalid);
    }
    // Any n is valid: the handlers cap the page (catalog.maxentries) and link the next one.
    // Past nine digits it is only a very large number, so it is read as the largest we take.
    std::string_view significant = std::string_view(*n).substr(
        std::min(n->find_first_not_of('0'), n->size()));
    r.n = significant.size() > 9 ? 999'999'999 : static_cast<size_t>(std::stoul(*n));
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
