#include "logger.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "utf8.h"

namespace regfs::httpd {

namespace {

std::string Now() {
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

// The body of a JSON string literal for `s`, printable in a terminal: well-formed UTF-8 that
// shows as text passes, control characters become \uXXXX, and bytes that are not UTF-8 become
// \\xNN, an escaped backslash then xNN (a JSON string cannot hold raw bytes; this keeps
// their value and stays valid JSON).
std::string JsonEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    char buf[16];
    if (n == 0) {
      std::snprintf(buf, sizeof buf, "\\\\x%02x", static_cast<unsigned char>(s[i]));
      out += buf;
      ++i;
      continue;
    }
    uint32_t cp = Utf8CodePoint(s, i, n);
    if (cp == '"' || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (IsControlCodePoint(cp)) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
      out += buf;
    } else {
      out.append(s, i, n);
    }
    i += n;
  }
  return out;
}

// Text values are quoted when they contain spaces or quotes, so lines stay parseable.
std::string TextValue(const std::string& s) {
  // Quote and escape anything a client sent that could break the line or a terminal.
  bool plain = !s.empty() && std::none_of(s.begin(), s.end(), [](unsigned char c) {
    return c <= ' ' || c == '"' || c == '=' || c >= 0x7f;
  });
  return plain ? s : "\"" + JsonEscape(s) + "\"";
}

const char* LevelName(Logger::Level l) {
  switch (l) {
    case Logger::Level::kError:
      return "error";
    case Logger::Level::kWarn:
      return "warning";
    case Logger::Level::kInfo:
      return "info";
    case Logger::Level::kDebug:
      return "debug";
  }
  return "info";
}

}  // namespace

Logger::Logger(const std::string& level, bool json, std::map<std::string, std::string> fields)
    : json_(json), fields_(std::move(fields)) {
  if (level == "error")
    level_ = Level::kError;
  else if (level == "warn" || level == "warning")
    level_ = Level::kWarn;
  else if (level == "debug")
    level_ = Level::kDebug;
  else
    level_ = Level::kInfo;
}

void Logger::WriteLine(const std::string& line) const {
  // One write per line: atomic for lines below PIPE_BUF on pipes, and never interleaved.
  std::string with_newline = line + "\n";
  const char* p = with_newline.data();
  size_t left = with_newline.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void Logger::Log(Level level, const std::string& message,
                 const std::map<std::string, std::string>& extra) const {
  if (!Enabled(level)) return;
  std::string line;
  if (json_) {
    line = "{\"time\":\"" + Now() + "\",\"level\":\"" + LevelName(level) + "\",\"msg\":\"" +
           JsonEscape(message) + "\"";
    for (const std::map<std::string, std::string>* m : {&fields_, &extra}) {
      for (const auto& [k, v] : *m) line += ",\"" + JsonEscape(k) + "\":\"" + JsonEscape(v) + "\"";
    }
    line += "}";
  } else {
    line = "time=" + Now() + " level=" + LevelName(level) + " msg=" + TextValue(message);
    for (const std::map<std::string, std::string>* m : {&fields_, &extra}) {
      for (const auto& [k, v] : *m) line += " " + k + "=" + TextValue(v);
    }
  }
  WriteLine(line);
}

void Logger::LogAccess(const Access& a) const {
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.6f", a.seconds);
  const std::map<std::string, std::string> f = {
      {"remote", a.remote},
      {"user", a.user},
      {"method", a.method},
      {"uri", a.uri},
      {"status", std::to_string(a.status)},
      {"bytes", std::to_string(a.bytes)},
      {"duration_s", seconds},
      {"user_agent", a.user_agent},
  };
  const std::string& cache = a.cache;
  std::string line;
  if (json_) {
    line = "{\"time\":\"" + Now() + "\",\"level\":\"info\",\"msg\":\"access\"";
    for (const std::map<std::string, std::string>* m : {&fields_, &f}) {
      for (const auto& [k, v] : *m) line += ",\"" + JsonEscape(k) + "\":\"" + JsonEscape(v) + "\"";
    }
    if (!cache.empty()) line += ",\"cache\":\"" + JsonEscape(cache) + "\"";
    line += "}";
  } else {
    line = "time=" + Now() + " level=info msg=access";
    for (const char* k :
         {"remote", "user", "method", "uri", "status", "bytes", "duration_s", "user_agent"}) {
      line += std::string(" ") + k + "=" + TextValue(f.at(k));
    }
    if (!cache.empty()) line += " cache=" + TextValue(cache);
    for (const auto& [k, v] : fields_) line += " " + k + "=" + TextValue(v);
  }
  WriteLine(line);
}

}  // namespace regfs::httpd
