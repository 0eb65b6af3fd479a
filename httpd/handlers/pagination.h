// The n/last pagination shared by tags/list and _catalog.
#pragma once

#include <optional>
#include <string>

#include "exchange.h"
#include "regfs/core/registry.h"

namespace regfs::httpd {

struct PageRequest {
  std::string last;
  std::optional<size_t> n;
};

// Reads n and last. Fails with kPaginationInvalid when n is not a non-negative integer.
Result<PageRequest> ReadPageRequest(const Exchange& ex);

// Adds `Link: <path?n=N&last=L>; rel="next"` when the page was cut.
void AddNextLink(Exchange& ex, const std::string& path, size_t n, const Page& page);

}  // namespace regfs::httpd
