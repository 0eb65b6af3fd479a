#include "maintenance/gc_scheduler.h"

#include "maintenance/gc_text.h"

namespace regfs::httpd {

namespace {
constexpr const char* kLastRun = "regfs/gc/last-run";

std::optional<std::chrono::system_clock::time_point> ReadLastRun(StorageDriver& driver) {
  auto text = driver.GetContent(kLastRun, 64);
  if (!text.ok()) return std::nullopt;
  try {
    return std::chrono::system_clock::time_point(std::chrono::seconds(std::stoll(*text)));
  } catch (...) {
    return std::nullopt;
  }
}
}  // namespace

GcScheduler::GcScheduler(Config::GarbageCollection settings,
                         std::optional<std::chrono::seconds> purge_age, Registry& registry,
                         StorageDriver& driver, const Logger& logger,
                         decltype(GcOptions::expire_unused_before) cache_expiry)
    : settings_(settings),
      purge_age_(purge_age),
      cache_expiry_(std::move(cache_expiry)),
      registry_(registry),
      driver_(driver),
      logger_(logger) {}

GcScheduler::~GcScheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void GcScheduler::Start() { thread_ = std::thread([this] { Loop(); }); }

std::optional<GcScheduler::LastRun> GcScheduler::last_run() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_run_;
}

void GcScheduler::Loop() {
  // Look often enough to run close to the interval, rarely enough to cost nothing.
  auto period = std::clamp(settings_.interval / 10, std::chrono::seconds(1),
                           std::chrono::seconds(60));
  auto next = std::chrono::steady_clock::now() + std::min(period, std::chrono::seconds(5));
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (wake_.wait_until(lock, next, [this] { return stopping_; })) return;
    }
    next = std::chrono::steady_clock::now() + period;
    MaybeRun();
  }
}

void GcScheduler::MaybeRun() {
  // Held from reading the last run's time until the new one is recorded: without it, a
  // replica could read the time just after another finished collecting (and released the
  // "gc" lease) but before it recorded that, and collect again.
  auto turn = driver_.TryLease("gc-schedule");
  if (!turn.ok()) return;  // another replica is deciding, or collecting
  auto last = ReadLastRun(driver_);
  auto now = std::chrono::system_clock::now();
  if (last && now - *last < settings_.interval) return;

  GcOptions options{.grace = settings_.grace,
                    .delete_untagged = settings_.delete_untagged,
                    .expire_unused_before = cache_expiry_,
                    .dry_run = settings_.dry_run,
                    .purge_uploads_older_than = purge_age_};
  auto last_log = std::chrono::steady_clock::now();
  options.on_progress = [this, &last_log](const GcProgress& p) {
    auto t = std::chrono::steady_clock::now();
    if (t - last_log < std::chrono::seconds(30)) return;
    last_log = t;
    logger_.Info("garbage collection: " + FormatProgress(p));
  };
  if (settings_.dry_run) {
    options.on_line = [this](const std::string& line) {
      if (line.starts_with("blob eligible") || line.starts_with("manifest eligible")) {
        logger_.Info("garbage collection (dry run): " + line);
      }
    };
  }
  auto report = registry_.CollectGarbage(options);
  LastRun run{.finished = std::chrono::system_clock::now()};
  if (!report.ok()) {
    if (report.status().code() == Status::Code::kFailedPrecondition) {
      logger_.Debug("garbage collection: " + report.status().message());
      return;  // another replica is collecting: it records the run
    }
    run.error = report.status().message();
    logger_.Error("garbage collection failed: " + run.error +
                  " (nothing referenced was deleted; it runs again in " +
                  FormatDuration(settings_.interval) + ")");
  } else {
    run.ok = true;
    run.report = *report;
    logger_.Info("garbage collection: " + FormatSummary(*report, settings_.dry_run));
  }
  // A failed run waits for the next interval too, rather than retry in a loop.
  Status s = driver_.PutContent(
      kLastRun,
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                         run.finished.time_since_epoch())
                         .count()),
      false);
  if (!s.ok()) logger_.Warn("garbage collection: cannot record the run: " + s.message());
  std::lock_guard<std::mutex> lock(mu_);
  last_run_ = std::move(run);
}

}  // namespace regfs::httpd
