// Fuzzes the configuration loader: a config.yml plus REGISTRY_* environment overrides.
//
// Input: YAML text, optionally followed by a line "#!env" (a YAML comment) and then one
// environment entry per line; "REGISTRY_" is prepended to entries that lack it. An input that
// starts with "#!env" loads no file at all (LoadConfig's empty path). The YAML is written to a
// memfd that LoadConfig reads through /proc/self/fd, so runs touch no real file.
//
// Invariants: LoadConfig reports every problem as a Status (no exception escapes); an accepted
// configuration satisfies the checks LoadConfig promises (known log level and formatter, a
// valid port, both or neither of TLS certificate and key, positive purge intervals and catalog
// size, a realm, no trailing "/" on http.host); its listen address re-parses to itself.
// ParseListenAddress is also fed the raw input.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "regfs/config/config.h"

namespace {

constexpr std::string_view kEnvMarker = "#!env";

void CheckListenAddress(const regfs::ListenAddress& a) {
  FUZZ_CHECK(a.port >= 0 && a.port <= 65535);
  // ToString spells "all interfaces" as 0.0.0.0; brackets inside a host (from "[[h]]:1") are
  // garbage the later bind rejects, not worth a round trip.
  if (a.host.empty() || a.host.find_first_of("[]") != std::string::npos) return;
  auto again = regfs::ParseListenAddress(a.ToString());
  FUZZ_CHECK(again.ok() && again->host == a.host && again->port == a.port);
}

void CheckConfig(const regfs::Config& c) {
  FUZZ_CHECK(c.log_level == "error" || c.log_level == "warn" || c.log_level == "warning" ||
             c.log_level == "info" || c.log_level == "debug");
  FUZZ_CHECK(c.log_formatter == "text" || c.log_formatter == "json");
  FUZZ_CHECK(c.storage_driver == "filesystem" || c.storage_driver == "inmemory" ||
             c.storage_driver == "s3");
  if (c.storage_driver == "s3") {
    // What the S3 driver relies on having been checked by the parser.
    FUZZ_CHECK(!c.s3.bucket.empty() && !c.s3.region.empty());
    FUZZ_CHECK(c.s3.chunk_size > 0 && c.s3.multipart_copy_chunk_size > 0 &&
               c.s3.multipart_copy_threshold > 0 && c.s3.multipart_copy_max_concurrency > 0);
  }
  CheckListenAddress(c.addr);
  FUZZ_CHECK(c.host.empty() || c.host.back() != '/');
  FUZZ_CHECK(c.tls.certificate.empty() == c.tls.key.empty());
  FUZZ_CHECK(c.tls.minimum == "tls1.0" || c.tls.minimum == "tls1.1" || c.tls.minimum == "tls1.2" ||
             c.tls.minimum == "tls1.3");
  FUZZ_CHECK(c.upload_purging.age.count() > 0 && c.upload_purging.interval.count() > 0);
  FUZZ_CHECK(c.catalog_max_entries > 0);
  FUZZ_CHECK(!c.htpasswd.realm.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("regfs-fuzz-config", MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0);
  static const std::string fd_path = "/proc/self/fd/" + std::to_string(fd);

  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view yaml = input, env;
  bool no_file = input.starts_with(kEnvMarker);
  if (size_t marker = input.find(kEnvMarker); marker != std::string_view::npos) {
    yaml = input.substr(0, marker);
    env = input.substr(marker + kEnvMarker.size());
  }
  std::vector<std::string> environment;
  while (!env.empty()) {
    size_t nl = env.find('\n');
    std::string_view line = env.substr(0, nl);
    env = nl == std::string_view::npos ? std::string_view() : env.substr(nl + 1);
    if (line.empty()) continue;
    environment.push_back(line.starts_with("REGISTRY_") ? std::string(line)
                                                        : "REGISTRY_" + std::string(line));
  }

  FUZZ_CHECK(ftruncate(fd, 0) == 0);
  FUZZ_CHECK(pwrite(fd, yaml.data(), yaml.size(), 0) == static_cast<ssize_t>(yaml.size()));

  auto config = regfs::LoadConfig(no_file ? "" : fd_path, environment);
  if (config.ok()) CheckConfig(*config);

  auto addr = regfs::ParseListenAddress(std::string(input));
  if (addr.ok()) CheckListenAddress(*addr);
  return 0;
}
