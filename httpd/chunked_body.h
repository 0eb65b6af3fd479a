// A strict reader of a chunked request body (RFC 9112 §7.1), straight from the server
// session. Poco's own chunked stream ends the body quietly at a chunk size it cannot read,
// so a malformed or cut-off body looked complete and the rest of it was parsed as the next
// request. This one fails instead: the istream goes bad() and Error() says why.
#pragma once

#include <Poco/Net/HTTPSession.h>

#include <array>
#include <istream>
#include <streambuf>
#include <string>

namespace regfs::httpd {

class ChunkedBodyBuf : public std::streambuf {
 public:
  explicit ChunkedBodyBuf(Poco::Net::HTTPSession& session) : session_(session) {}

  // Why the body could not be read; empty while it is well-formed so far.
  const std::string& Error() const { return error_; }
  // The terminating zero-size chunk and the trailer section have been read.
  bool Complete() const { return state_ == State::kDone; }

 protected:
  int_type underflow() override;

 private:
  enum class State { kSize, kData, kDataEnd, kDone, kFailed };
  // The next bytes of the body into the get area; throws once the body is found malformed.
  int_type Next();
  int Get();
  // Reads the rest of a line into *line (without CR LF); false on EOF or an overlong line.
  bool ReadLine(std::string* line);
  bool Fail(std::string why);
  bool ReadSizeLine();
  bool ReadTrailers();

  Poco::Net::HTTPSession& session_;
  State state_ = State::kSize;
  uint64_t left_in_chunk_ = 0;
  std::string error_;
  std::array<char, 64 * 1024> buffer_;
};

class ChunkedBodyStream : public std::istream {
 public:
  explicit ChunkedBodyStream(Poco::Net::HTTPSession& session)
      : std::istream(nullptr), buf_(session) {
    rdbuf(&buf_);
  }
  const ChunkedBodyBuf& buf() const { return buf_; }

 private:
  ChunkedBodyBuf buf_;
};

}  // namespace regfs::httpd
