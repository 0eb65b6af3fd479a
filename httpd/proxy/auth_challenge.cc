#include "proxy/auth_challenge.h"

#include <cctype>

namespace regfs::httpd::proxy {

namespace {

bool IsTokenChar(char c) {
  // RFC 9110 tchar.
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void SkipSpace(const std::string& s, size_t* i) {
  while (*i < s.size() && (s[*i] == ' ' || s[*i] == '\t')) ++*i;
}

std::string ReadToken(const std::string& s, size_t* i) {
  size_t start = *i;
  while (*i < s.size() && IsTokenChar(s[*i])) ++*i;
  return s.substr(start, *i - start);
}

}  // namespace

std::optional<AuthChallenge> ParseAuthChallenge(const std::string& header) {
  size_t i = 0;
  SkipSpace(header, &i);
  AuthChallenge challenge;
  challenge.scheme = Lower(ReadToken(header, &i));
  if (challenge.scheme.empty()) return std::nullopt;
  while (true) {
    SkipSpace(header, &i);
    while (i < header.size() && header[i] == ',') {
      ++i;
      SkipSpace(header, &i);
    }
    if (i >= header.size()) break;
    std::string name = Lower(ReadToken(header, &i));
    if (name.empty()) return std::nullopt;
    SkipSpace(header, &i);
    if (i >= header.size() || header[i] != '=') {
      // A token with no "=" after the parameters began is the next challenge's scheme.
      if (!challenge.params.empty()) break;
      return std::nullopt;  // token68 forms are not used by registries
    }
    ++i;
    SkipSpace(header, &i);
    std::string value;
    if (i < header.size() && header[i] == '"') {
      ++i;
      bool closed = false;
      while (i < header.size()) {
        char c = header[i++];
        if (c == '\\' && i < header.size()) {
          value.push_back(header[i++]);
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          value.push_back(c);
        }
      }
      if (!closed) return std::nullopt;
    } else {
      value = ReadToken(header, &i);
    }
    challenge.params[name] = value;
    SkipSpace(header, &i);
    if (i < header.size() && header[i] != ',') return std::nullopt;
  }
  return challenge;
}

}  // namespace regfs::httpd::proxy
