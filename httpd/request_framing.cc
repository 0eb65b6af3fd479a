#include "request_framing.h"

#include <Poco/String.h>

#include <algorithm>
#include <vector>

namespace regfs::httpd {

namespace {

using Poco::Net::HTTPResponse;

std::vector<std::string> AllValues(const Poco::Net::HTTPServerRequest& request,
                                   const std::string& name) {
  std::vector<std::string> values;
  for (auto it = request.find(name); it != request.end(); ++it) {
    if (Poco::icompare(it->first, name) != 0) break;
    values.push_back(it->second);
  }
  return values;
}

bool IsDecimal(const std::string& s) {
  // 18 digits are below 2^63: the value always fits the signed 64 bits Poco reads it into.
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The "user:password@" of an absolute-form target ("http://user:pw@host/path"), as the
// half-open range [begin, end) to cut, or begin == end when there is none.
std::pair<size_t, size_t> UserInfo(const std::string& target) {
  size_t scheme_end = target.find("://");
  if (scheme_end == std::string::npos || target.find('/') < scheme_end) return {0, 0};
  size_t authority = scheme_end + 3;
  size_t authority_end = target.find_first_of("/?#", authority);
  if (authority_end == std::string::npos) authority_end = target.size();
  size_t at = target.rfind('@', authority_end);
  if (at == std::string::npos || at < authority) return {0, 0};
  return {authority, at + 1};
}

}  // namespace

std::optional<FramingError> CheckFraming(const Poco::Net::HTTPServerRequest& request) {
  const bool http11 = request.getVersion() == Poco::Net::HTTPMessage::HTTP_1_1;
  const std::vector<std::string> hosts = AllValues(request, "Host");
  if (hosts.size() > 1 || (http11 && hosts.empty())) {
    return FramingError{HTTPResponse::HTTP_BAD_REQUEST, "UNSUPPORTED",
                        "an HTTP/1.1 request needs exactly one Host header"};
  }
  if (auto [begin, end] = UserInfo(request.getURI()); begin != end) {
    return FramingError{HTTPResponse::HTTP_BAD_REQUEST, "UNSUPPORTED",
                        "credentials belong in the Authorization header, not in the URL"};
  }
  const std::vector<std::string> lengths = AllValues(request, "Content-Length");
  const std::vector<std::string> codings = AllValues(request, "Transfer-Encoding");
  if (lengths.size() > 1) {
    return FramingError{HTTPResponse::HTTP_BAD_REQUEST, "SIZE_INVALID",
                        "the request has more than one Content-Length"};
  }
  if (lengths.size() == 1 && !IsDecimal(Poco::trim(lengths[0]))) {
    return FramingError{HTTPResponse::HTTP_BAD_REQUEST, "SIZE_INVALID",
                        "Content-Length must be a decimal number of bytes"};
  }
  if (!codings.empty()) {
    if (!lengths.empty()) {
      return FramingError{HTTPResponse::HTTP_BAD_REQUEST, "SIZE_INVALID",
                          "a request may have Content-Length or Transfer-Encoding, not both"};
    }
    if (codings.size() > 1 || Poco::icompare(Poco::trim(codings[0]), "chunked") != 0) {
      return FramingError{HTTPResponse::HTTP_NOT_IMPLEMENTED, "UNSUPPORTED",
                          "the only transfer coding this registry reads is a single chunked"};
    }
  }
  return std::nullopt;
}

std::string LoggableTarget(const std::string& target) {
  auto [begin, end] = UserInfo(target);
  if (begin == end) return target;
  return target.substr(0, begin) + target.substr(end);
}

}  // namespace regfs::httpd
