#include "observability/service_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "version.h"

namespace regfs::httpd {

namespace {

double Seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

void RegisterServiceMetrics(Metrics& m, ServiceSources s) {
  if (s.notifier != nullptr) {
    const Notifier* notifier = s.notifier;
    auto log = s.log;
    m.AddComputed(
        "registry_notifications_pending",
        "Change log entries an endpoint has not been sent yet (its backlog), read from storage.",
        {"endpoint"}, [notifier, log] {
          std::vector<Sample> out;
          auto newest = log ? log->Newest() : Result<uint64_t>(Status::Unavailable("no log"));
          for (const auto& state : notifier->States()) {
            if (!newest.ok()) break;
            auto cursor = log->LoadCursor(Notifier::ConsumerName(state.name));
            if (!cursor.ok()) continue;
            uint64_t done = cursor->value_or(0);
            out.push_back({{state.name}, static_cast<double>(*newest > done ? *newest - done : 0)});
          }
          return out;
        });
    m.AddComputed(
        "registry_notifications_events_total",
        "Events this replica delivered (Successes), attempts that failed (Failures) and events "
        "given up on over the endpoint's limits (Dropped).",
        {"endpoint", "type"},
        [notifier] {
          std::vector<Sample> out;
          for (const auto& state : notifier->States()) {
            out.push_back({{state.name, "Successes"}, static_cast<double>(state.delivered)});
            out.push_back({{state.name, "Failures"}, static_cast<double>(state.failures)});
            out.push_back({{state.name, "Dropped"}, static_cast<double>(state.dropped)});
          }
          return out;
        },
        /*counter=*/true);
    m.AddComputed("regfs_notifications_delivering",
                  "1 when this replica holds the endpoint's delivery lease.", {"endpoint"},
                  [notifier] {
                    std::vector<Sample> out;
                    for (const auto& state : notifier->States()) {
                      out.push_back({{state.name}, state.delivering ? 1.0 : 0.0});
                    }
                    return out;
                  });
    m.AddComputed("regfs_notifications_last_success_timestamp_seconds",
                  "When this replica last delivered to the endpoint (Unix time; 0: never).",
                  {"endpoint"}, [notifier] {
                    std::vector<Sample> out;
                    for (const auto& state : notifier->States()) {
                      double t = state.last_success.time_since_epoch().count() == 0
                                     ? 0
                                     : Seconds(state.last_success);
                      out.push_back({{state.name}, t});
                    }
                    return out;
                  });
  }
  if (s.gc != nullptr) {
    const GcScheduler* gc = s.gc;
    auto last = [gc](std::function<double(const GcScheduler::LastRun&)> f) {
      return [gc, f] {
        auto run = gc->last_run();
        return run ? std::vector<Sample>{{{}, f(*run)}} : std::vector<Sample>{};
      };
    };
    m.AddComputed("regfs_gc_last_run_timestamp_seconds",
                  "When this replica's last garbage collection finished (Unix time).", {},
                  last([](const auto& r) { return Seconds(r.finished); }));
    m.AddComputed("regfs_gc_last_run_success", "1 when that collection completed.", {},
                  last([](const auto& r) { return r.ok ? 1.0 : 0.0; }));
    m.AddComputed("regfs_gc_last_run_duration_seconds", "How long that collection took.", {},
                  last([](const auto& r) {
                    return std::chrono::duration<double>(r.report.duration).count();
                  }));
    m.AddComputed("regfs_gc_last_run_blobs_deleted", "Blobs that collection removed.", {},
                  last([](const auto& r) { return static_cast<double>(r.report.blobs_deleted); }));
    m.AddComputed(
        "regfs_gc_last_run_manifests_deleted", "Manifest revisions that collection removed.", {},
        last([](const auto& r) { return static_cast<double>(r.report.manifests_deleted); }));
  }
  if (s.health != nullptr) {
    const HealthMonitor* health = s.health;
    m.AddComputed("regfs_health_check_up", "1 while a health check passes, 0 while it fails.",
                  {"check"}, [health] {
                    std::vector<Sample> out;
                    for (const auto& [name, up] : health->States()) out.push_back({{name}, up ? 1.0 : 0.0});
                    return out;
                  });
    m.AddComputed("regfs_ready", "1 while this replica takes requests (healthy, not draining).",
                  {}, [health] { return std::vector<Sample>{{{}, health->Ready() ? 1.0 : 0.0}}; });
  }
  if (s.cache) {
    auto cache = s.cache;
    m.AddComputed(
        "registry_storage_cache_total",
        "Blob descriptor cache lookups (Request), and how they ended: Hit, Miss, or Error "
        "(the cache could not be asked; the storage answered).",
        {"type"},
        [cache] {
          auto st = cache->stats();
          return std::vector<Sample>{{{"Request"}, static_cast<double>(st.requests)},
                                     {{"Hit"}, static_cast<double>(st.hits)},
                                     {{"Miss"}, static_cast<double>(st.misses)},
                                     {{"Error"}, static_cast<double>(st.errors)}};
        },
        /*counter=*/true);
    if (s.cache_is_redis) {
      m.AddComputed("regfs_redis_up", "1 while Redis answers, 0 while the cache is bypassed.",
                    {}, [cache] {
                      return std::vector<Sample>{{{}, cache->available() ? 1.0 : 0.0}};
                    });
    }
  }
  if (s.uploads_in_flight != nullptr) {
    const std::atomic<int>* n = s.uploads_in_flight;
    m.AddComputed("regfs_uploads_in_flight",
                  "Upload requests streaming a body into storage now.", {},
                  [n] { return std::vector<Sample>{{{}, static_cast<double>(n->load())}}; });
  }
}

void RegisterProcessMetrics(Metrics& m) {
  const double started = Seconds(std::chrono::system_clock::now());
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  m.AddGauge("regfs_build_info", "The running version (value 1).", {"version"})
      .With({kVersion})
      .Set(1);
  m.AddComputed("process_start_time_seconds", "When the process started (Unix time).", {},
                [started] { return std::vector<Sample>{{{}, started}}; });
  m.AddComputed(
      "process_cpu_seconds_total", "User and system CPU time the process used.", {},
      [ticks] {
        // Fields 14 and 15 of /proc/self/stat, after the parenthesised command name.
        std::ifstream in("/proc/self/stat");
        std::string line;
        std::getline(in, line);
        auto close = line.rfind(')');
        if (close == std::string::npos) return std::vector<Sample>{};
        std::istringstream fields(line.substr(close + 2));
        std::string f;
        double utime = 0, stime = 0;
        for (int i = 3; i <= 15 && fields >> f; ++i) {
          if (i == 14) utime = std::stod(f);
          if (i == 15) stime = std::stod(f);
        }
        return std::vector<Sample>{{{}, (utime + stime) / static_cast<double>(ticks)}};
      },
      /*counter=*/true);
  m.AddComputed("process_resident_memory_bytes", "Resident memory of the process.", {}, [page] {
    std::ifstream in("/proc/self/statm");
    double size = 0, resident = 0;
    in >> size >> resident;
    return std::vector<Sample>{{{}, resident * static_cast<double>(page)}};
  });
  m.AddComputed("process_open_fds", "File descriptors the process holds open.", {}, [] {
    double n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') ++n;
      }
      ::closedir(d);
      --n;  // the listing's own descriptor
    }
    return std::vector<Sample>{{{}, n}};
  });
}

}  // namespace regfs::httpd
