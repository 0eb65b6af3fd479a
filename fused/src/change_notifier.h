// ChangeNotifier: tells the kernel which of its cached names, attributes and listings a
// registry change made stale, so the mount can let the kernel cache them for long.
//
// Changes reach it two ways: this process's own (it is a ChangeListener on the mount's
// Registry; applied at once) and every process's, through the ChangeFeed (polled). One
// thread makes all the fuse_lowlevel_notify_* calls: never a FUSE handler, never under a
// lock a handler takes, because the kernel may wait for a handler while processing a
// notification (libfuse #341). When the feed says events were lost, everything the kernel
// knows is invalidated.
//
// Thread safety: OnChange may be called from any thread, concurrently; Start and Stop from
// one thread.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "regfs/core/change_feed.h"
#include "registry_tree.h"

namespace regfs::fused {

// One thing for the kernel to forget.
struct Invalidation {
  enum class Type {
    kEntry,  // the name `name` in directory `ino` (and, for a directory, what is below it)
    kInode,  // the attributes and cached contents (listing, symlink target) of `ino`
  };
  Type type;
  Ino ino;
  std::string name;
  bool operator==(const Invalidation&) const = default;
};

// What the kernel must forget after `event`, limited to nodes it holds (RegistryTree::Known).
std::vector<Invalidation> InvalidationsFor(const ChangeEvent& event, const RegistryTree& tree);
// Everything the kernel holds: for when changes may have been missed.
std::vector<Invalidation> InvalidateEverything(const RegistryTree& tree);
// The listings and tag targets the kernel holds without a timeout (names and attributes
// expire by themselves): dropped periodically, so that changes by writers that do not
// publish to the feed (registry:2, an rsync restore, a hand edit) show in bounded time.
std::vector<Invalidation> InvalidateUntimedCaches(const RegistryTree& tree);

struct NotifierOptions {
  std::chrono::milliseconds poll_interval{50};  // how often the feed is read
  size_t max_queued = 10000;  // own changes waiting beyond this: invalidate everything instead
  // How often InvalidateUntimedCaches is applied; zero: never (without a feed the kernel
  // caches nothing without a timeout).
  std::chrono::milliseconds sweep_interval{0};
};

class ChangeNotifier final : public ChangeListener {
 public:
  // `feed` may be null (no feed: only this process's own changes are seen).
  ChangeNotifier(std::shared_ptr<ChangeFeed> feed, NotifierOptions options = {});
  ~ChangeNotifier() override;

  // Queues the change for the notifier thread; never blocks on it.
  void OnChange(const ChangeEvent& event) override;

  // Starts the thread. REQUIRED: `se` mounted, and no fork after this (fuse_daemonize done).
  void Start(fuse_session* se, RegistryTree& tree);
  // Stops and joins the thread; call before the session is unmounted.
  void Stop();

 private:
  void Run();
  void PollFeed();
  void Apply(const std::vector<Invalidation>& invalidations);

  const std::shared_ptr<ChangeFeed> feed_;
  const NotifierOptions options_;
  fuse_session* se_ = nullptr;
  RegistryTree* tree_ = nullptr;
  ChangeCursor cursor_;        // used by the notifier thread only
  bool feed_failing_ = false;  // used by the notifier thread only
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<ChangeEvent> queue_;  // GUARDED_BY(mu_)
  bool overflow_ = false;          // GUARDED_BY(mu_)
  bool stop_ = false;              // GUARDED_BY(mu_)
};

}  // namespace regfs::fused
