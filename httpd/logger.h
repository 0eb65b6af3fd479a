// The server's log: leveled messages and access lines, as text or JSON, one line each on
// stderr (journald picks them up under systemd). Thread-safe; a line is written with one
// write() so lines from concurrent requests never interleave.
#pragma once

#include <map>
#include <string>

namespace regfs::httpd {

class Logger {
 public:
  enum class Level { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

  Logger(const std::string& level, bool json, std::map<std::string, std::string> fields);

  bool Enabled(Level level) const { return level <= level_; }
  void Log(Level level, const std::string& message,
           const std::map<std::string, std::string>& extra = {}) const;
  void Error(const std::string& m) const { Log(Level::kError, m); }
  void Warn(const std::string& m) const { Log(Level::kWarn, m); }
  void Info(const std::string& m) const { Log(Level::kInfo, m); }
  void Debug(const std::string& m) const { Log(Level::kDebug, m); }

  struct Access {
    std::string remote;
    std::string user;  // the authenticated name; never credentials
    std::string method;
    std::string uri;
    int status = 0;
    uint64_t bytes = 0;
    double seconds = 0;
    std::string user_agent;
    std::string cache;  // a mirrored repository's pull: hit, miss, stale or error
  };
  // Access lines are written whatever the level (as registry:2 does) unless disabled.
  void LogAccess(const Access& a) const;

 private:
  void WriteLine(const std::string& line) const;
  Level level_;
  bool json_;
  std::map<std::string, std::string> fields_;
};

}  // namespace regfs::httpd
