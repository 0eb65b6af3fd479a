#include "chunked_body.h"

#include <Poco/Exception.h>

#include <algorithm>
#include <stdexcept>

namespace regfs::httpd {

namespace {

// HTTPSession reads through its buffer with protected members, meant for Poco's own body
// streams; a pointer to member named through a derived class reaches them.
struct SessionAccess : Poco::Net::HTTPSession {
  static int Get(Poco::Net::HTTPSession& s) { return (s.*&SessionAccess::get)(); }
  static int Read(Poco::Net::HTTPSession& s, char* buffer, std::streamsize length) {
    return (s.*&SessionAccess::read)(buffer, length);
  }
};

constexpr size_t kMaxLineBytes = 4096;    // a size line with extensions, or one trailer
constexpr int kMaxTrailerLines = 64;
constexpr int kHexDigitsAllowed = 15;     // < 2^60 bytes per chunk: no overflow

int HexValue(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

int ChunkedBodyBuf::Get() { return SessionAccess::Get(session_); }

bool ChunkedBodyBuf::Fail(std::string why) {
  state_ = State::kFailed;
  error_ = std::move(why);
  return false;
}

bool ChunkedBodyBuf::ReadLine(std::string* line) {
  line->clear();
  for (;;) {
    int c = Get();
    if (c == std::char_traits<char>::eof()) return false;
    if (c == '\n') break;
    if (line->size() >= kMaxLineBytes) return false;
    line->push_back(static_cast<char>(c));
  }
  if (!line->empty() && line->back() == '\r') line->pop_back();
  return true;
}

bool ChunkedBodyBuf::ReadSizeLine() {
  std::string line;
  if (!ReadLine(&line)) return Fail("the chunked body ends inside a chunk-size line");
  size_t i = 0;
  uint64_t size = 0;
  while (i < line.size() && HexValue(line[i]) >= 0) {
    if (i == kHexDigitsAllowed) return Fail("a chunk size is too large");
    size = size * 16 + static_cast<uint64_t>(HexValue(line[i]));
    ++i;
  }
  if (i == 0) return Fail("a chunk size is not a hexadecimal number");
  // Only chunk extensions (";name=value", ignored) may follow, after optional whitespace.
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  if (i < line.size() && line[i] != ';') return Fail("a chunk-size line has trailing garbage");
  if (size == 0) return ReadTrailers();
  left_in_chunk_ = size;
  state_ = State::kData;
  return true;
}

bool ChunkedBodyBuf::ReadTrailers() {
  std::string line;
  for (int n = 0; n <= kMaxTrailerLines; ++n) {
    if (!ReadLine(&line)) return Fail("the chunked body ends inside its trailer section");
    if (line.empty()) {
      state_ = State::kDone;
      return true;
    }
  }
  return Fail("the chunked body has too many trailer lines");
}

ChunkedBodyBuf::int_type ChunkedBodyBuf::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  try {
    return Next();
  } catch (const Poco::Exception& e) {  // a receive timeout, a reset connection
    Fail("reading the chunked body failed: " + e.displayText());
  }
  throw std::runtime_error(error_);
}

ChunkedBodyBuf::int_type ChunkedBodyBuf::Next() {
  for (;;) {
    switch (state_) {
      case State::kDone:
        return traits_type::eof();
      case State::kFailed:
        // istream turns this into badbit; the message stays in Error().
        throw std::runtime_error(error_);
      case State::kDataEnd: {
        std::string line;
        if (!ReadLine(&line) || !line.empty()) {
          Fail("a chunk is longer than its size or not followed by CRLF");
          continue;
        }
        state_ = State::kSize;
        continue;
      }
      case State::kSize:
        ReadSizeLine();
        continue;
      case State::kData: {
        std::streamsize want = static_cast<std::streamsize>(
            std::min<uint64_t>(left_in_chunk_, buffer_.size()));
        int n = SessionAccess::Read(session_, buffer_.data(), want);
        if (n <= 0) {
          Fail("the chunked body was cut off inside a chunk");
          continue;
        }
        left_in_chunk_ -= static_cast<uint64_t>(n);
        if (left_in_chunk_ == 0) state_ = State::kDataEnd;
        setg(buffer_.data(), buffer_.data(), buffer_.data() + n);
        return traits_type::to_int_type(buffer_[0]);
      }
    }
  }
}

}  // namespace regfs::httpd
