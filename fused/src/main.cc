// regfs-fused: mounts the registry as a file tree.
//
//   regfs-fused [-f] [-o ro,allow_other,...] CONFIG MOUNTPOINT
//
// CONFIG is the same config.yml as regfs-httpd's (with its REGISTRY_* overrides), so both
// processes work on the same storage. The FUSE loop runs in its own thread; main waits for
// a signal (or for the loop to end when someone unmounts) and tears down.
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "change_notifier.h"
#include "fuse_bridge.h"
#include "regfs/config/config.h"
#include "regfs/core/change_feed.h"
#include "regfs/core/change_recorder.h"
#include "regfs/core/registry.h"
#include "regfs/core/uuid.h"
#include "registry_tree.h"

extern char** environ;

namespace regfs::fused {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

void PrintUsage(std::ostream& out) {
  out << "usage: regfs-fused [-f] [-o OPTIONS] CONFIG MOUNTPOINT\n"
         "       regfs-fused --version | --help\n\n"
         "Mounts the registry configured in CONFIG (regfs-httpd's config.yml, with the same\n"
         "REGISTRY_* overrides) at MOUNTPOINT as a tree:\n"
         "  <repository>/_tags/<tag>          symlink to ../_manifests/<digest>\n"
         "  <repository>/_manifests/<digest>  manifest bytes\n"
         "  <repository>/_blobs/<digest>      blob bytes\n"
         "  <repository>/_uploads/<id>        upload in progress\n"
         "rm untags or deletes, ln -s tags, mv renames tags; everything else is read-only.\n\n"
         "  -f                 stay in the foreground\n"
         "  -o ro              read-only mount\n"
         "  -o allow_other     let other users see the mount (see /etc/fuse.conf)\n"
         "  -o OPT[,OPT...]    other FUSE mount options\n"
         "Unmount with: fusermount3 -u MOUNTPOINT\n";
}

struct CommandLine {
  std::string config;
  std::string mountpoint;              // the second non-option argument, as libfuse will read it
  std::vector<std::string> fuse_args;  // argv for libfuse, without CONFIG
  bool read_only = false;
};

// Takes CONFIG (the first non-option argument) out of argv; notes "-o ro".
Result<CommandLine> SplitCommandLine(int argc, char** argv) {
  CommandLine c;
  c.fuse_args.push_back(argv[0]);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-o" && i + 1 < argc) {
      std::string opts = argv[++i];
      std::stringstream ss(opts);
      for (std::string o; std::getline(ss, o, ',');) c.read_only |= (o == "ro");
      c.fuse_args.push_back(a);
      c.fuse_args.push_back(opts);
    } else if (a.starts_with("-o") && a.size() > 2) {
      std::stringstream ss(a.substr(2));
      for (std::string o; std::getline(ss, o, ',');) c.read_only |= (o == "ro");
      c.fuse_args.push_back(a);
    } else if (!a.starts_with("-") && c.config.empty()) {
      c.config = a;
    } else {
      if (!a.starts_with("-") && c.mountpoint.empty()) c.mountpoint = a;
      c.fuse_args.push_back(a);
    }
  }
  return c;
}

bool IsMountPoint(const std::string& path) {
  char real[PATH_MAX];
  if (realpath(path.c_str(), real) == nullptr) return false;
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    if (mount_point == real) return true;
  }
  return false;
}

void NoOp(int) {}

// A directory to mount on, or a message saying what is wrong with it.
bool MountpointUsable(const std::string& mountpoint) {
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return true;
    errno = ENOTDIR;
  }
  if (errno == ENOTCONN) {
    // The FUSE daemon of a mount there died (kill -9): the kernel still holds the mount.
    std::cerr << "regfs-fused: " << mountpoint << " is busy: a mount whose daemon is gone"
              << " (clear it with: fusermount3 -uz " << mountpoint << ")\n";
  } else {
    std::cerr << "regfs-fused: mountpoint " << mountpoint
              << " does not exist or is not a directory\n";
  }
  return false;
}

// Who changes the registry through this mount: the user who mounted it.
std::string MountUser() {
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(::geteuid(), &pw, buf, sizeof buf, &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return "uid " + std::to_string(::geteuid());
}

int Run(int argc, char** argv) {
  auto cmd = SplitCommandLine(argc, argv);
  // libfuse refuses a missing mountpoint as a usage error; say what is wrong instead.
  if (!cmd->mountpoint.empty() && !MountpointUsable(cmd->mountpoint)) return kExitRuntime;
  std::vector<char*> fuse_argv;
  for (auto& a : cmd->fuse_args) fuse_argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(fuse_argv.size()), fuse_argv.data());
  fuse_cmdline_opts opts{};
  // libfuse allocates both; release them on every way out.
  struct Release {
    fuse_args& args;
    fuse_cmdline_opts& opts;
    ~Release() {
      fuse_opt_free_args(&args);
      free(opts.mountpoint);
    }
  } release{args, opts};
  if (fuse_parse_cmdline(&args, &opts) != 0) {
    PrintUsage(std::cerr);
    return kExitUsage;
  }
  if (opts.show_help) {
    PrintUsage(std::cout);
    return kExitOk;
  }
  if (opts.show_version) {
    std::cout << "regfs-fused " << REGFS_VERSION << " (libfuse " << fuse_pkgversion() << ")\n";
    return kExitOk;
  }
  if (cmd->config.empty() || opts.mountpoint == nullptr) {
    PrintUsage(std::cerr);
    return kExitUsage;
  }
  const std::string mountpoint = opts.mountpoint;

  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) environment.emplace_back(*e);
  auto config = LoadConfig(cmd->config, environment);
  if (!config.ok()) {
    std::cerr << "regfs-fused: " << config.status().message() << "\n";
    return kExitUsage;
  }
  for (const auto& w : config->warnings) std::cerr << "regfs-fused: warning: " << w << "\n";

  if (!MountpointUsable(mountpoint)) return kExitRuntime;
  if (IsMountPoint(mountpoint)) {
    std::cerr << "regfs-fused: " << mountpoint << " is busy: something is already mounted there"
              << " (a stale regfs mount is cleared with: fusermount3 -uz " << mountpoint << ")\n";
    return kExitRuntime;
  }
  if (::access("/dev/fuse", R_OK | W_OK) != 0) {
    std::cerr << "regfs-fused: FUSE is not available: /dev/fuse: " << std::strerror(errno)
              << " (load the fuse module, or install fuse3)\n";
    return kExitRuntime;
  }

  StorageOptions storage = StorageOptionsOf(*config);
  storage.on_feed_error = [](const Status& s) {
    std::cerr << "regfs-fused: change feed: " << s.message() << "\n";
  };
  storage.on_cache_change = [](const Status& s) {
    std::cerr << "regfs-fused: blob descriptor cache: "
              << (s.ok() ? "Redis answers again" : s.message() + "; reading from storage")
              << "\n";
  };
  auto backend = OpenBackend(storage);
  if (!backend.ok()) {
    std::cerr << "regfs-fused: " << backend.status().message() << "\n";
    return kExitRuntime;
  }
  RegistryOptions options;
  options.driver = backend->driver;
  // The registry:2 replicas' shared cache: the mount's deletions must reach it too.
  options.descriptor_cache = backend->descriptor_cache;
  options.delete_enabled = config->delete_enabled;
  options.read_only = config->read_only || cmd->read_only;
  // Changes made by any process on this storage (regfs-httpd, other mounts, this one) come
  // through the change feed, and the kernel is told to forget what they made stale. Without
  // a feed, only short kernel timeouts show changes made elsewhere.
  std::shared_ptr<ChangeFeed> feed = backend->feed;
  if (!feed && config->storage_driver != "inmemory") {
    std::cerr << "regfs-fused: warning: no change feed (" << backend->no_feed
              << "): changes made by other processes show only after short cache timeouts\n";
  }
  NotifierOptions notifier_options;
  if (feed) {
    // The kernel keeps listings and tag targets until told; a writer that does not publish
    // to the feed would never be seen without this sweep (names and attributes time out).
    notifier_options.sweep_interval =
        std::chrono::milliseconds(static_cast<int64_t>(kMutableTimeoutWithFeedSeconds * 1000));
  }
  auto notifier = std::make_shared<ChangeNotifier>(feed, notifier_options);
  if (feed && !options.read_only) options.listeners.push_back(feed->Publisher());
  options.listeners.push_back(notifier);  // this mount's own changes, at once
  // A file operation on the mount is a registry operation like a request: it goes to the
  // durable change log (notifications name the mount's user as the actor).
  std::shared_ptr<ChangeRecorder> recorder;
  if (!options.read_only) {
    recorder = ChangeRecorder::Create(
        {.log = backend->log,
         .instance = NewUuid(),
         .source_addr = "fuse:" + mountpoint,
         .default_actor = MountUser(),
         .on_error = [](const Status& s) {
           std::cerr << "regfs-fused: change log: "
                     << (s.ok() ? "the storage accepts entries again" : s.message()) << "\n";
         }});
    options.listeners.push_back(recorder);
  }
  auto registry = Registry::Open(options);
  if (!registry.ok()) {
    std::cerr << "regfs-fused: " << registry.status().message() << "\n";
    return kExitRuntime;
  }

  RegistryTree tree(**registry, !options.read_only);
  BridgeOptions bridge_options;
  if (feed) {
    bridge_options.mutable_timeout_seconds = kMutableTimeoutWithFeedSeconds;
    bridge_options.cache_listings = true;
  }
  Bridge bridge{tree, bridge_options};
  fuse_opt_add_arg(&args, "-odefault_permissions,fsname=regfs,subtype=regfs");
  // Read-only from the configuration too: the kernel then answers EROFS for every change,
  // as for -o ro.
  if (options.read_only && !cmd->read_only) fuse_opt_add_arg(&args, "-oro");
  fuse_session* se =
      fuse_session_new(&args, &BridgeOperations(), sizeof(fuse_lowlevel_ops), &bridge);
  if (se == nullptr) {
    std::cerr << "regfs-fused: invalid FUSE options\n";
    return kExitUsage;
  }
  if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
    std::cerr << "regfs-fused: cannot mount at " << mountpoint << "\n";
    fuse_session_destroy(se);
    return kExitRuntime;
  }
  std::cerr << "regfs-fused: mounted " << backend->driver->Describe() << " at " << mountpoint
            << (options.read_only ? " (read-only)" : "") << "\n";
  // Daemonize (unless -f) before any thread exists.
  fuse_daemonize(opts.foreground);

  // Only main's sigwait sees the shutdown signals; SIGUSR1 just interrupts blocking calls.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  struct sigaction nudge {};
  nudge.sa_handler = NoOp;
  sigaction(SIGUSR1, &nudge, nullptr);

  // After the fork and the signal mask: the thread inherits the blocked signals.
  notifier->Start(se, tree);
  if (recorder) recorder->StartBackground();

  std::atomic<bool> loop_done{false};
  std::thread loop([&] {
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, 16);
    fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
    loop_done = true;
    ::kill(::getpid(), SIGTERM);  // unmounted from outside: wake main up
  });

  int sig = 0;
  sigwait(&signals, &sig);
  notifier->Stop();
  fuse_session_exit(se);
  fuse_session_unmount(se);
  // libfuse < 3.18 can keep the loop blocked after unmount while a file is open: nudge its
  // thread until it notices the session has ended.
  while (!loop_done.load()) {
    pthread_kill(loop.native_handle(), SIGUSR1);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  loop.join();
  fuse_session_destroy(se);
  return kExitOk;
}

}  // namespace
}  // namespace regfs::fused

int main(int argc, char** argv) { return regfs::fused::Run(argc, argv); }
