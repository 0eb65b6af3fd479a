// regfs-httpd: the registry's HTTP front end.
//
//   regfs-httpd serve [CONFIG]    serve the Distribution API (config.yml format)
//   regfs-httpd garbage-collect [--dry-run] [--delete-untagged] [--quiet] [--grace D] CONFIG
//   regfs-httpd --version | --help
//
// Signals are handled by one sigwait() loop in main instead of Poco's ServerApplication,
// so shutdown (stop accepting, let in-flight requests finish, exit) is explicit and
// nothing daemonizes: under systemd the server runs in the foreground.
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/ThreadPool.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "auth/htpasswd_authenticator.h"
#include "auth/token_authenticator.h"
#include "connection_guard.h"
#include "logger.h"
#include "maintenance/gc_command.h"
#include "maintenance/gc_scheduler.h"
#include "notifications/notifier.h"
#include "observability/debug_server.h"
#include "observability/health.h"
#include "observability/metered_driver.h"
#include "observability/metrics.h"
#include "observability/server_metrics.h"
#include "observability/service_metrics.h"
#include "proxy/pull_through_cache.h"
#include "proxy/upstream_routes.h"
#include "regfs/config/config.h"
#include "regfs/core/change_feed.h"
#include "regfs/core/change_recorder.h"
#include "regfs/core/manifest.h"
#include "regfs/core/registry.h"
#include "regfs/core/uuid.h"
#include "request_router.h"
#include "server_context.h"
#include "tls.h"
#include "version.h"

extern char** environ;

namespace regfs::httpd {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;  // could not serve: port taken, storage unusable
constexpr int kExitUsage = 2;    // bad command line or configuration

void PrintUsage(std::ostream& out) {
  out << "usage: regfs-httpd serve [CONFIG]\n"
         "       regfs-httpd garbage-collect [--dry-run] [--delete-untagged] [--quiet]\n"
         "                                   [--grace DURATION] CONFIG\n"
         "       regfs-httpd --version | --help\n\n"
         "Serves a container image registry (OCI Distribution Spec v1.1, Docker Registry HTTP\n"
         "API v2). CONFIG is a config.yml in the format of CNCF Distribution (registry:2);\n"
         "without it the registry listens on :5000 and stores data in /var/lib/registry.\n"
         "Every key can be overridden by an environment variable REGISTRY_<SECTION>_<KEY>,\n"
         "e.g. REGISTRY_HTTP_ADDR=127.0.0.1:5000 or\n"
         "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/srv/registry.\n";
}

// What a manifest refers to, for events with includereferences: its config and layers, or
// an index's manifests. Nothing when it is gone or unreadable.
std::vector<Descriptor> ManifestReferences(Registry& registry, const std::string& repo,
                                           const Digest& digest) {
  auto manifest = registry.GetManifest(repo, digest.ToString());
  if (!manifest.ok()) return {};
  auto parsed = ParseManifest(manifest->bytes, manifest->info.media_type);
  if (!parsed.ok()) return {};
  return parsed->is_index ? parsed->children : parsed->blobs;
}

// This process as registry:2's events name their source: host:port.
std::string SourceAddress(const ListenAddress& addr) {
  std::string host = addr.host;
  if (host.empty() || host == "0.0.0.0" || host == "::") {
    char name[256] = {};
    host = ::gethostname(name, sizeof name - 1) == 0 ? name : "localhost";
  }
  return host + ":" + std::to_string(addr.port);
}

int Serve(const std::string& config_path) {
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) environment.emplace_back(*e);
  auto config = LoadConfig(config_path, environment);
  if (!config.ok()) {
    std::cerr << "regfs-httpd: " << config.status().message() << "\n";
    return kExitUsage;
  }
  Logger logger(config->log_level, config->log_formatter == "json", config->log_fields);
  for (const auto& w : config->warnings) logger.Warn(w);

  Metrics metrics;
  ServerMetrics server_metrics(metrics);
  RegisterProcessMetrics(metrics);

  StorageOptions storage = StorageOptionsOf(*config);
  storage.on_feed_error = [&logger](const Status& s) { logger.Warn(s.message()); };
  storage.on_cache_change = [&logger](const Status& s) {
    if (s.ok()) {
      logger.Info("blob descriptor cache: Redis answers; using the shared cache");
    } else {
      logger.Warn("blob descriptor cache: " + s.message() +
                  "; serving from storage (slower) until Redis answers again");
    }
  };
  auto backend = OpenBackend(storage);
  if (!backend.ok()) {
    logger.Error(backend.status().message());
    std::cerr << "regfs-httpd: " << backend.status().message() << "\n";
    return kExitRuntime;
  }
  // Every storage call the registry makes is timed and its failures counted.
  std::shared_ptr<StorageDriver> driver =
      NewMeteredDriver(backend->driver, config->storage_driver, server_metrics);
  RegistryOptions options;
  options.driver = driver;
  options.descriptor_cache = backend->descriptor_cache;
  if (backend->descriptor_cache) {
    logger.Info("blob descriptor cache: " + backend->descriptor_cache->Describe());
  }
  options.delete_enabled = config->delete_enabled;
  options.read_only = config->read_only;
  options.redirect_reads = !config->redirect_disabled;
  if (backend->feed && !config->read_only) {
    // Every change goes to the storage's change feed, for regfs-fused mounts (and others).
    options.listeners.push_back(backend->feed->Publisher());
  } else if (!backend->feed && config->storage_driver != "inmemory" && !config->read_only) {
    logger.Warn("no change feed, mounts see changes late: " + backend->no_feed);
  }
  // Every committed change (from this process) goes to the durable change log too, for
  // notifications and garbage collection in whichever process consumes them.
  std::shared_ptr<ChangeRecorder> recorder;
  // Set once the notifier runs: an entry appended here wakes its delivery threads.
  std::atomic<Notifier*> deliver_now{nullptr};
  if (!config->read_only) {
    recorder = ChangeRecorder::Start(
        {.log = backend->log,
         .instance = NewUuid(),
         .source_addr = SourceAddress(config->addr),
         .on_appended =
             [&deliver_now] {
               if (Notifier* n = deliver_now.load()) n->Wake();
             },
         .on_error = [&logger](const Status& s) {
           if (s.ok()) {
             logger.Info("change log: the storage accepts entries again");
           } else {
             logger.Warn("change log: " + s.message());
           }
         }});
    options.listeners.push_back(recorder);
  }
  auto registry = Registry::Open(options);
  if (!registry.ok()) {
    logger.Error(registry.status().message());
    std::cerr << "regfs-httpd: " << registry.status().message() << "\n";
    return kExitRuntime;
  }

  // Block the shutdown signals before any thread starts, so only sigwait() sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the server

  auto socket = Listen(*config);
  if (!socket.ok()) {
    logger.Error(socket.status().message());
    std::cerr << "regfs-httpd: " << socket.status().message() << "\n";
    return socket.status().code() == Status::Code::kInvalidArgument ? kExitUsage : kExitRuntime;
  }
  const std::string addr = config->addr.ToString();
  std::unique_ptr<Authenticator> authenticator;
  if (config->htpasswd.enabled()) {
    authenticator = std::make_unique<HtpasswdAuthenticator>(config->htpasswd.realm,
                                                            config->htpasswd.path, logger);
  } else if (config->token.enabled()) {
    auto token = TokenAuthenticator::Create(config->token);
    if (!token.ok()) {
      logger.Error(token.status().message());
      std::cerr << "regfs-httpd: " << token.status().message() << "\n";
      return kExitUsage;
    }
    logger.Info("token authentication: issuer " + config->token.issuer + ", service " +
                config->token.service + ", " + std::to_string((*token)->trusted_key_count()) +
                " trusted keys");
    authenticator = std::move(*token);
  }
  std::optional<AccessPolicy> policy;
  if (config->access.enabled) {
    auto compiled = AccessPolicy::Compile(config->access);
    if (!compiled.ok()) {
      std::cerr << "regfs-httpd: " << compiled.status().message() << "\n";
      return kExitUsage;
    }
    policy = std::move(*compiled);
    logger.Info("access rules: " + std::to_string(config->access.rules.size()) + " rules");
  } else if (authenticator == nullptr && !config->addr.host.starts_with("127.") &&
             config->addr.host != "localhost" && config->addr.host != "::1") {
    logger.Warn("no auth section: anyone who can reach " + addr +
                " may push and delete; configure auth.htpasswd or auth.token");
  }
  Authorizer authorizer(authenticator.get(), std::move(policy));

  // Webhooks, fed from the change log (this process's entries and every other's).
  std::unique_ptr<Notifier> notifier;
  if (!config->notifications.endpoints.empty()) {
    EventOptions events{.configured_host = config->host,
                        .tls = config->tls.enabled(),
                        .include_references = config->notifications.include_references,
                        .references = [&registry](const std::string& repo, const Digest& digest) {
                          return ManifestReferences(**registry, repo, digest);
                        }};
    if (config->proxy.enabled()) {
      events.mirrored = [proxy = config->proxy](const std::string& repo) {
        return proxy::RouteToUpstream(proxy, repo).has_value();
      };
    }
    notifier = std::make_unique<Notifier>(config->notifications, backend->log, backend->driver,
                                          std::move(events), logger);
    deliver_now = notifier.get();
  }

  // The replica's health: the configured checks decide whether /v2/ answers; Redis only
  // degrades it (the registry serves from storage meanwhile).
  HealthMonitor health(logger);
  for (auto& check : ConfiguredChecks(*config, driver)) health.Add(std::move(check));
  if (auto cache = backend->descriptor_cache; cache && config->blob_descriptor_cache == "redis") {
    health.Add({.name = "redis",
                .interval = std::chrono::seconds(2),
                .critical = false,
                .probe = [cache] {
                  return cache->available()
                             ? Status::Ok()
                             : Status::Unavailable(cache->Describe() +
                                                   " does not answer: serving from storage");
                }});
  }
  health.Start();

  std::atomic<int> in_flight{0};
  std::atomic<int> uploads_in_flight{0};
  std::atomic<bool> shutting_down{false};
  ServerContext context{**registry,    *config,    logger,           in_flight,
                        shutting_down, authorizer, uploads_in_flight, recorder.get(),
                        notifier && notifier->wants_pulls(), &server_metrics, &health};

  // Repositories mirroring upstream registries (proxy), beside ordinary ones.
  std::unique_ptr<proxy::PullThroughCache> pull_through;
  if (config->proxy.enabled()) {
    pull_through = std::make_unique<proxy::PullThroughCache>(config->proxy, **registry, logger,
                                                             &metrics);
    if (Status s = pull_through->Prepare(); !s.ok()) {
      logger.Error(s.message());
      std::cerr << "regfs-httpd: " << s.message() << "\n";
      std::fflush(nullptr);
      _exit(kExitRuntime);  // threads (health, notifications) run already
    }
    context.proxy = pull_through.get();
    for (const Config::Upstream& u : config->proxy.upstreams) {
      logger.Info("pull-through cache: " + (u.prefix.empty() ? std::string("every repository")
                                                             : u.prefix + "/...") +
                  " mirrors " + u.remote_url + (u.username.empty() ? "" : " as " + u.username) +
                  ", tags checked every " +
                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                     u.tag_check_interval)
                                     .count()) +
                  "s, " +
                  (u.ttl.count() == 0
                       ? std::string("kept forever")
                       : "unused content expires after " +
                             std::to_string(
                                 std::chrono::duration_cast<std::chrono::seconds>(u.ttl).count()) +
                             "s"));
    }
  }

  Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
  params->setKeepAlive(true);
  params->setKeepAliveTimeout(Poco::Timespan(30, 0));
  params->setMaxKeepAliveRequests(0);
  // A client that sends nothing for this long loses its connection and its thread.
  params->setTimeout(Poco::Timespan(60, 0));
  params->setMaxThreads(512);
  params->setMaxQueued(1024);
  params->setServerName("regfs");
  params->setSoftwareVersion(std::string("regfs/") + kVersion);
  // Each keep-alive connection holds a thread; size the pool for many concurrent clients,
  // and let the guard take threads back from clients that hold them without sending.
  Poco::ThreadPool pool("http", 8, 512, 60);
  ConnectionGuard guard({.head_timeout = config->limits.head_timeout,
                         .per_client = config->limits.connections_per_client},
                        logger);
  Poco::SharedPtr<RequestRouter> router = new RequestRouter(context);
  Poco::Net::TCPServer server(guard.Factory(router, params), pool, *socket, params);
  server.start();
  logger.Info("regfs-httpd " + std::string(kVersion) + " listening on " +
              (config->tls.enabled() ? "https://" : "http://") + addr + ", storage " +
              backend->driver->Describe() + (config->read_only ? " (read-only)" : "") +
              (config->delete_enabled ? ", deletes enabled" : ""));

  if (config->upload_purging.enabled && !config->read_only) {
    // Abandoned uploads (clients that gave up, pushes cut off by a crash) are removed in
    // the background, as registry:2 does. The thread dies with the process.
    std::thread([&registry, &logger, purging = config->upload_purging] {
      // First pass a minute after start (crash debris goes early), then every interval.
      auto next = std::chrono::steady_clock::now() + std::chrono::minutes(1);
      while (true) {
        std::this_thread::sleep_until(next);
        next += purging.interval;
        auto purged = (*registry)->PurgeUploads(std::chrono::system_clock::now() - purging.age,
                                                purging.dry_run);
        if (!purged.ok()) {
          logger.Warn("upload purging failed: " + purged.status().message());
        } else if (*purged > 0) {
          logger.Info((purging.dry_run ? "would purge " : "purged ") + std::to_string(*purged) +
                      " abandoned uploads");
        }
      }
    }).detach();
  }

  // Garbage collection while serving, by one replica at a time (a regfs extension).
  std::unique_ptr<GcScheduler> gc;
  Config::GarbageCollection gc_settings = config->gc;
  decltype(GcOptions::expire_unused_before) cache_expiry;
  if (config->proxy.enabled()) {
    cache_expiry = proxy::CacheExpiry(config->proxy);
    // A cache's ttl needs collections to take effect: as registry:2's proxy mode expires
    // content by itself, so does regfs, hourly (or as configured) when nothing else asked.
    std::chrono::milliseconds shortest_ttl{0};
    for (const Config::Upstream& u : config->proxy.upstreams) {
      if (u.ttl.count() > 0 && (shortest_ttl.count() == 0 || u.ttl < shortest_ttl)) {
        shortest_ttl = u.ttl;
      }
    }
    if (!gc_settings.enabled && shortest_ttl.count() > 0) {
      gc_settings.enabled = true;
      gc_settings.interval = std::clamp<std::chrono::seconds>(
          std::chrono::duration_cast<std::chrono::seconds>(shortest_ttl / 2),
          std::chrono::seconds(60), std::chrono::hours(1));
    }
  }
  if (gc_settings.enabled && !config->read_only) {
    std::optional<std::chrono::seconds> purge_age;
    if (config->upload_purging.enabled) purge_age = config->upload_purging.age;
    gc = std::make_unique<GcScheduler>(gc_settings, purge_age, **registry, *driver, logger,
                                       cache_expiry);
    gc->Start();
    logger.Info("garbage collection every " + std::to_string(gc_settings.interval.count()) +
                "s, grace " + std::to_string(gc_settings.grace.count()) + "s" +
                (gc_settings.delete_untagged ? ", untagged manifests too" : "") +
                (cache_expiry ? ", expiring cached content unused for its ttl" : "") +
                (gc_settings.dry_run ? " (dry run)" : ""));
  }

  RegisterServiceMetrics(metrics, {.notifier = notifier.get(),
                                   .log = backend->log,
                                   .gc = gc.get(),
                                   .health = &health,
                                   .cache = backend->descriptor_cache,
                                   .cache_is_redis = config->blob_descriptor_cache == "redis",
                                   .uploads_in_flight = &uploads_in_flight});
  std::unique_ptr<DebugServer> debug;
  if (config->debug.enabled) {
    debug = std::make_unique<DebugServer>(config->debug, metrics, health);
    if (Status s = debug->Start(); !s.ok()) {
      logger.Error(s.message());
      std::cerr << "regfs-httpd: " << s.message() << "\n";
      std::fflush(nullptr);
      _exit(kExitRuntime);
    }
    logger.Info("debug listener on http://" + config->debug.addr.ToString() +
                " (/debug/health, /livez, /readyz" +
                (config->debug.prometheus ? ", " + config->debug.prometheus_path : "") + ")");
  }

  int sig = 0;
  sigwait(&signals, &sig);
  logger.Info(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
              ", finishing in-flight requests");
  // Unready first (/readyz 503 for load balancers and probes), then stop accepting.
  health.SetDraining();
  shutting_down = true;
  server.stop();
  router->NotifyServerStopped();
  auto deadline = std::chrono::steady_clock::now() + config->drain_timeout;
  while (in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (in_flight.load() > 0) {
    logger.Warn(std::to_string(in_flight.load()) + " requests still running after " +
                std::to_string(config->drain_timeout.count()) + "s; exiting anyway");
  }
  if (recorder && recorder->pending() > 0 && !recorder->DrainPending().ok()) {
    logger.Error("change log: " + std::to_string(recorder->pending()) +
                 " entries could not be written before exit and are lost");
  }
  logger.Info("stopped");
  // Idle keep-alive connections would hold the pool's threads until they time out; every
  // write is already durable, so leave without waiting for them.
  std::fflush(nullptr);
  _exit(kExitOk);
}

}  // namespace
}  // namespace regfs::httpd

int main(int argc, char** argv) {
  using namespace regfs::httpd;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && (args[0] == "--version" || args[0] == "version")) {
    std::cout << "regfs-httpd " << kVersion << "\n";
    return kExitOk;
  }
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h" || args[0] == "help")) {
    PrintUsage(std::cout);
    return kExitOk;
  }
  if (!args.empty() && args[0] == "garbage-collect") {
    return GarbageCollectCommand(std::vector<std::string>(args.begin() + 1, args.end()), std::cout,
                                 std::cerr);
  }
  if (!args.empty() && args[0] == "serve") args.erase(args.begin());
  if (args.size() > 1 || (!args.empty() && args[0].starts_with("-"))) {
    PrintUsage(std::cerr);
    return kExitUsage;
  }
  return Serve(args.empty() ? "" : args[0]);
}
