// The log echoes what clients send (request lines, user agents): whatever the bytes, a line
// must stay one line, parse in its format, and carry nothing a terminal would act on.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "logger.h"

namespace regfs::httpd {
namespace {

// Runs `write_log` with stderr sent to a temporary file; returns what was written.
template <typename F>
std::string CaptureStderr(F write_log) {
  std::FILE* tmp = std::tmpfile();
  EXPECT_NE(tmp, nullptr);
  int saved = ::dup(2);
  ::dup2(::fileno(tmp), 2);
  write_log();
  ::dup2(saved, 2);
  ::close(saved);
  std::rewind(tmp);
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, tmp)) out.append(buf, n);
  std::fclose(tmp);
  return out;
}

Logger::Access HostileAccess() {
  Logger::Access a;
  a.remote = "127.0.0.1:1234";
  a.method = "GET";
  // An invalid UTF-8 byte, an 8-bit CSI (0x9b) with an SGR sequence, a C1 control written as
  // valid UTF-8 (U+009B), a bidi override (U+202E), ESC, DEL, and text that must survive.
  a.uri = "/v2/\xff\x9b" "31m/\xc2\x9b" "2J/\xe2\x80\xae" "gpj/\x1b[0m\x7f/caf\xc3\xa9/\xe2\x9c\x93";
  a.status = 404;
  a.user_agent = "agent\r\ninjected=1";
  return a;
}

// True when every byte >= 0x80 belongs to a printable, well-formed UTF-8 character, and no
// byte is a control character other than the line's final newline.
void ExpectPrintable(const std::string& line) {
  ASSERT_FALSE(line.empty());
  ASSERT_EQ(line.back(), '\n');
  const std::string body = line.substr(0, line.size() - 1);
  EXPECT_EQ(body.find('\n'), std::string::npos) << body;
  for (unsigned char c : body) EXPECT_FALSE(c < 0x20 || c == 0x7f) << int(c) << " in " << body;
  EXPECT_EQ(body.find("\xff"), std::string::npos);
  EXPECT_EQ(body.find("\x9b"), std::string::npos) << "an 8-bit CSI, raw or as U+009B";
  EXPECT_EQ(body.find("\xe2\x80\xae"), std::string::npos) << "a bidi override";
  EXPECT_NE(body.find("caf\xc3\xa9"), std::string::npos) << "printable UTF-8 must pass";
  EXPECT_NE(body.find("\xe2\x9c\x93"), std::string::npos) << "printable UTF-8 must pass";
}

TEST(LoggerTest, TextAccessLineEscapesEverythingNotPrintable) {
  Logger logger("info", /*json=*/false, {});
  std::string line = CaptureStderr([&] { logger.LogAccess(HostileAccess()); });
  ExpectPrintable(line);
  EXPECT_NE(line.find("\\\\xff"), std::string::npos) << line;
  EXPECT_NE(line.find("\\u009b"), std::string::npos) << line;
  EXPECT_NE(line.find("\\u202e"), std::string::npos) << line;
}

TEST(LoggerTest, JsonAccessLineEscapesAndParses) {
  Logger logger("info", /*json=*/true, {});
  std::string line = CaptureStderr([&] { logger.LogAccess(HostileAccess()); });
  ExpectPrintable(line);
  Poco::JSON::Parser parser;
  Poco::JSON::Object::Ptr obj;
  ASSERT_NO_THROW(obj = parser.parse(line).extract<Poco::JSON::Object::Ptr>()) << line;
  ASSERT_TRUE(obj);
  bool found_uri = false;
  for (const auto& [key, value] : *obj) {
    std::string text = value.toString();
    if (text.find("caf") != std::string::npos && text.find("/v2/") == 0) {
      found_uri = true;
      // The invalid byte keeps its value as readable text.
      EXPECT_NE(text.find("\\xff"), std::string::npos) << text;
    }
  }
  EXPECT_TRUE(found_uri) << line;
}

TEST(LoggerTest, MessagesAreEscapedLikeAccessLines) {
  Logger logger("info", /*json=*/false, {});
  std::string line =
      CaptureStderr([&] { logger.Info("upload of /v2/\xff\x9b" "31m/caf\xc3\xa9/\xe2\x9c\x93 failed"); });
  ExpectPrintable(line);
}

}  // namespace
}  // namespace regfs::httpd
