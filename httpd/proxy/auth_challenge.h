// Parsing an upstream registry's WWW-Authenticate challenge (RFC 9110 §11.6.1), as Docker's
// token authentication sends it: `Bearer realm="https://auth.example/token",
// service="registry.example",scope="repository:library/debian:pull"`, or `Basic
// realm="..."`.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace regfs::httpd::proxy {

struct AuthChallenge {
  std::string scheme;                        // lower-cased: "bearer", "basic"
  std::map<std::string, std::string> params; // names lower-cased, values unquoted
  std::string Param(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  }
};

// The first challenge of a header value; nullopt when it does not parse. A header that
// offers several schemes ("Basic realm=x, Bearer realm=y") yields the first.
std::optional<AuthChallenge> ParseAuthChallenge(const std::string& header);

}  // namespace regfs::httpd::proxy
