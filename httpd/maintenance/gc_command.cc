#include "maintenance/gc_command.h"

#include <unistd.h>

#include <iostream>

#include "maintenance/gc_text.h"
#include "proxy/upstream_routes.h"
#include "regfs/config/config.h"
#include "regfs/core/change_recorder.h"
#include "regfs/core/registry.h"
#include "regfs/core/uuid.h"

extern char** environ;

namespace regfs::httpd {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

void Usage(std::ostream& err) {
  err << "usage: regfs-httpd garbage-collect [--dry-run|-d] [--delete-untagged|-m] "
         "[--quiet|-q] [--grace DURATION] CONFIG\n\n"
         "Deletes blobs no manifest refers to (and, with --delete-untagged, manifests no tag\n"
         "reaches) while the registry keeps serving. Anything written within the grace window\n"
         "(default 1h, or storage.maintenance.gc.grace) is kept; --grace 0s deletes what\n"
         "registry:2's garbage-collect would.\n";
}

// Progress on stderr: a bar redrawn in place on a terminal, else a line every 10 seconds.
class ProgressPrinter {
 public:
  ProgressPrinter(std::ostream& err, bool terminal) : err_(err), terminal_(terminal) {}
  ~ProgressPrinter() { Finish(); }
  void Show(const GcProgress& p) {
    auto now = std::chrono::steady_clock::now();
    if (terminal_) {
      err_ << "\r" << FormatProgressBar(p, 30) << "\033[K" << std::flush;
      drawn_ = true;
      if (p.total > 0 && p.done == p.total) Finish();
      return;
    }
    if (now - last_ < std::chrono::seconds(10)) return;
    last_ = now;
    err_ << "garbage-collect: " << FormatProgress(p) << "\n" << std::flush;
  }
  void Finish() {
    if (drawn_) err_ << "\n" << std::flush;
    drawn_ = false;
  }

 private:
  std::ostream& err_;
  bool terminal_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace

int GarbageCollectCommand(const std::vector<std::string>& args, std::ostream& out,
                          std::ostream& err) {
  GcOptions options;
  bool quiet = false;
  std::optional<std::chrono::seconds> grace;
  std::string config_path;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--dry-run" || a == "-d") {
      options.dry_run = true;
    } else if (a == "--delete-untagged" || a == "-m") {
      options.delete_untagged = true;
    } else if (a == "--quiet" || a == "-q") {
      quiet = true;
    } else if (a == "--grace" || a.starts_with("--grace=")) {
      std::string value = a == "--grace" ? (i + 1 < args.size() ? args[++i] : "") : a.substr(8);
      auto d = ParseGoDuration(value == "0" ? "0s" : value);
      if (!d.ok() || d->count() < 0) {
        err << "regfs-httpd garbage-collect: --grace: " << (d.ok() ? "negative" : d.status().message())
            << "\n";
        return kExitUsage;
      }
      grace = std::chrono::duration_cast<std::chrono::seconds>(*d);
    } else if (a == "--help" || a == "-h") {
      Usage(out);
      return kExitOk;
    } else if (a.starts_with("-") || !config_path.empty()) {
      Usage(err);
      return kExitUsage;
    } else {
      config_path = a;
    }
  }
  if (config_path.empty()) {
    Usage(err);
    return kExitUsage;
  }

  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) environment.emplace_back(*e);
  auto config = LoadConfig(config_path, environment);
  if (!config.ok()) {
    err << "regfs-httpd garbage-collect: " << config.status().message() << "\n";
    return kExitUsage;
  }
  if (config->read_only && !options.dry_run) {
    err << "regfs-httpd garbage-collect: the configuration is read-only "
           "(storage.maintenance.readonly.enabled); nothing can be deleted (use --dry-run)\n";
    return kExitUsage;
  }
  options.grace = grace.value_or(config->gc.grace);
  if (config->upload_purging.enabled) options.purge_uploads_older_than = config->upload_purging.age;
  // A pull-through cache's content unused for its ttl goes too.
  if (config->proxy.enabled()) options.expire_unused_before = proxy::CacheExpiry(config->proxy);

  StorageOptions storage = StorageOptionsOf(*config);
  storage.read_only = options.dry_run;
  auto backend = OpenBackend(storage);
  if (!backend.ok()) {
    err << "regfs-httpd garbage-collect: " << backend.status().message() << "\n";
    return kExitFailed;
  }
  RegistryOptions registry_options;
  registry_options.driver = backend->driver;
  registry_options.read_only = options.dry_run;
  std::shared_ptr<ChangeRecorder> recorder;
  if (!options.dry_run) {
    // What the collection deletes reaches mounts (the feed) and webhooks (the log) as
    // deletes by "garbage-collect".
    if (backend->feed) registry_options.listeners.push_back(backend->feed->Publisher());
    recorder = ChangeRecorder::Create(
        {.log = backend->log, .instance = NewUuid(), .default_actor = "garbage-collect"});
    registry_options.listeners.push_back(recorder);
  }
  auto registry = Registry::Open(registry_options);
  if (!registry.ok()) {
    err << "regfs-httpd garbage-collect: " << registry.status().message() << "\n";
    return kExitFailed;
  }

  ProgressPrinter progress(err, &err == &std::cerr && ::isatty(STDERR_FILENO) == 1);
  if (!quiet) {
    options.on_line = [&out, &progress](const std::string& line) {
      progress.Finish();
      out << line << "\n";
    };
  }
  options.on_progress = [&progress](const GcProgress& p) { progress.Show(p); };
  auto report = (*registry)->CollectGarbage(options);
  progress.Finish();
  if (recorder && recorder->pending() > 0 && !recorder->DrainPending().ok()) {
    err << "regfs-httpd garbage-collect: " << recorder->pending()
        << " change log entries could not be written (webhooks will not hear of those "
           "deletes)\n";
  }
  if (!report.ok()) {
    err << "regfs-httpd garbage-collect: failed: " << report.status().message()
        << " (nothing referenced was deleted; run it again)\n";
    return kExitFailed;
  }
  out << FormatSummary(*report, options.dry_run) << "\n";
  return kExitOk;
}

}  // namespace regfs::httpd
