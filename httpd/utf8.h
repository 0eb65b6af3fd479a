// UTF-8 as it arrives from clients: any bytes. Error bodies and log lines echo client input
// (paths, headers), so both need to tell well-formed, printable text from everything else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace regfs::httpd {

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF), or 0 when the byte there starts none. REQUIRES: i < s.size().
size_t Utf8SequenceLength(std::string_view s, size_t i);

// The code point of the well-formed sequence of length n (from Utf8SequenceLength) at s[i].
uint32_t Utf8CodePoint(std::string_view s, size_t i, size_t n);

// Code points that change what a terminal or a reader sees rather than showing a glyph:
// C0 and C1 controls, DEL, line/paragraph separators, bidirectional overrides and isolates,
// the byte order mark.
bool IsControlCodePoint(uint32_t cp);

}  // namespace regfs::httpd
