// Byte ranges a client sends: the Range header of blob GETs (RFC 9110) and the
// Content-Range header of upload chunks (the Distribution spec's "<first>-<last>").
// Pure functions of their text, so they can be fuzzed on their own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace regfs::httpd {

struct ByteRange {
  uint64_t first;
  uint64_t last;  // inclusive
};

// Parses a single "bytes=a-b", "bytes=a-" or "bytes=-n" range against `size`. nullopt for a
// header this server ignores (multiple ranges or bad syntax: RFC 9110 lets us send it all);
// a range with no byte inside the blob sets *unsatisfiable.
// ENSURES: a returned range has first <= last < size.
std::optional<ByteRange> ParseRange(const std::string& header, uint64_t size, bool* unsatisfiable);

// An upload chunk's Content-Range: "<first>-<last>" (inclusive; "bytes=" or "bytes " prefixes
// and a "/<total>" suffix are tolerated). nullopt when malformed or last < first.
std::optional<ByteRange> ParseContentRange(std::string text);

}  // namespace regfs::httpd
