#include "change_notifier.h"

#include <iostream>

namespace regfs::fused {

namespace {

using Kind = RegistryTree::Kind;

std::string ParentOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Ino FolderIno(const std::string& path) { return RegistryTree::InoFor(Kind::kFolder, path, ""); }

// Collects invalidations, dropping those about nodes the kernel does not hold: it has
// nothing cached for them (and no names below them).
class Collector {
 public:
  explicit Collector(const RegistryTree& tree) : tree_(tree) {}
  void Inode(Ino ino) {
    if (tree_.Known(ino)) out_.push_back({Invalidation::Type::kInode, ino, ""});
  }
  void Entry(Ino dir, const std::string& name) {
    if (tree_.Known(dir)) out_.push_back({Invalidation::Type::kEntry, dir, name});
  }
  // A name in a special folder of `repo` appeared, went or changes what it points to.
  void Child(Kind dir_kind, const std::string& repo, Kind child_kind, const std::string& name) {
    Ino dir = RegistryTree::InoFor(dir_kind, repo, "");
    Entry(dir, name);
    Inode(dir);  // its listing
    if (child_kind == Kind::kTag) Inode(RegistryTree::InoFor(child_kind, repo, name));
  }
  // Something was added to `repo`, which may be new: listings the kernel holds may lack it
  // (the first folder on its path the kernel does not know, or the special folders of a
  // folder that was only a namespace so far).
  void MaybeNewRepository(const std::string& repo) {
    std::string prefix;
    for (size_t pos = 0; pos != std::string::npos;) {
      size_t slash = repo.find('/', pos);
      prefix = repo.substr(0, slash);
      pos = slash == std::string::npos ? slash : slash + 1;
      if (!tree_.Known(FolderIno(prefix))) {
        Inode(FolderIno(ParentOf(prefix)));
        return;
      }
    }
    if (!tree_.Known(RegistryTree::InoFor(Kind::kTags, repo, ""))) Inode(FolderIno(repo));
  }
  std::vector<Invalidation> Take() { return std::move(out_); }

 private:
  const RegistryTree& tree_;
  std::vector<Invalidation> out_;
};

}  // namespace

std::vector<Invalidation> InvalidationsFor(const ChangeEvent& e, const RegistryTree& tree) {
  Collector c(tree);
  const std::string& repo = e.repository;
  const std::string digest = e.digest ? e.digest->ToString() : "";
  switch (e.kind) {
    case ChangeEvent::Kind::kTagSet:
      c.MaybeNewRepository(repo);
      c.Child(Kind::kTags, repo, Kind::kTag, e.tag);
      break;
    case ChangeEvent::Kind::kTagDeleted:
      c.Child(Kind::kTags, repo, Kind::kTag, e.tag);
      break;
    case ChangeEvent::Kind::kManifestPut:
      c.MaybeNewRepository(repo);
      c.Child(Kind::kManifests, repo, Kind::kManifest, digest);
      break;
    case ChangeEvent::Kind::kManifestDeleted:
      c.Child(Kind::kManifests, repo, Kind::kManifest, digest);
      break;
    case ChangeEvent::Kind::kBlobLinked:
      c.MaybeNewRepository(repo);
      c.Child(Kind::kBlobs, repo, Kind::kBlob, digest);
      break;
    case ChangeEvent::Kind::kBlobUnlinked:
      c.Child(Kind::kBlobs, repo, Kind::kBlob, digest);
      break;
    case ChangeEvent::Kind::kUploadStarted:
      c.MaybeNewRepository(repo);
      c.Child(Kind::kUploads, repo, Kind::kUpload, e.upload_id);
      break;
    case ChangeEvent::Kind::kUploadEnded:
      c.Child(Kind::kUploads, repo, Kind::kUpload, e.upload_id);
      break;
    case ChangeEvent::Kind::kManifestPulled:
    case ChangeEvent::Kind::kBlobPulled:
      break;  // reads change nothing the kernel caches
    case ChangeEvent::Kind::kRepositoryDeleted: {
      // The folder may stay (repositories nested below it) without its special folders;
      // dropping a directory's name drops everything the kernel cached below it.
      const Ino folder = FolderIno(repo);
      for (const char* special : {"_tags", "_manifests", "_blobs", "_uploads"}) {
        c.Entry(folder, special);
      }
      c.Inode(folder);
      c.Entry(FolderIno(ParentOf(repo)), BaseName(repo));
      c.Inode(FolderIno(ParentOf(repo)));
      break;
    }
  }
  return c.Take();
}

std::vector<Invalidation> InvalidateUntimedCaches(const RegistryTree& tree) {
  std::vector<Invalidation> out;
  for (const auto& node : tree.KnownNodes()) {
    if (node.kind == Kind::kManifest || node.kind == Kind::kBlob) continue;  // never change
    out.push_back({Invalidation::Type::kInode, node.ino, ""});
  }
  return out;
}

std::vector<Invalidation> InvalidateEverything(const RegistryTree& tree) {
  std::vector<Invalidation> out = InvalidateUntimedCaches(tree);
  // Dropping the top folders' names drops every name the kernel cached below them.
  for (const auto& node : tree.KnownNodes()) {
    if (node.kind == Kind::kFolder && !node.path.empty() &&
        node.path.find('/') == std::string::npos) {
      out.push_back({Invalidation::Type::kEntry, kRootIno, node.path});
    }
  }
  return out;
}

ChangeNotifier::ChangeNotifier(std::shared_ptr<ChangeFeed> feed, NotifierOptions options)
    : feed_(std::move(feed)), options_(options) {}

ChangeNotifier::~ChangeNotifier() { Stop(); }

void ChangeNotifier::OnChange(const ChangeEvent& event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= options_.max_queued) {
      overflow_ = true;
      queue_.clear();
    } else if (!overflow_) {
      queue_.push_back(event);
    }
  }
  wake_.notify_one();
}

void ChangeNotifier::Start(fuse_session* se, RegistryTree& tree) {
  se_ = se;
  tree_ = &tree;
  if (feed_) {
    auto end = feed_->End();
    if (end.ok()) {
      cursor_ = *end;
    } else {
      std::cerr << "regfs-fused: change feed: " << end.status().message() << "\n";
      feed_failing_ = true;  // cursor 0: read from the oldest event kept once readable
    }
  }
  thread_ = std::thread([this] { Run(); });
}

void ChangeNotifier::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void ChangeNotifier::Run() {
  auto next_sweep = std::chrono::steady_clock::now() + options_.sweep_interval;
  while (true) {
    std::deque<ChangeEvent> local;
    bool overflow = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, options_.poll_interval,
                     [this] { return stop_ || overflow_ || !queue_.empty(); });
      if (stop_) return;
      local.swap(queue_);
      std::swap(overflow, overflow_);
    }
    if (overflow) {
      Apply(InvalidateEverything(*tree_));
    } else {
      for (const ChangeEvent& e : local) Apply(InvalidationsFor(e, *tree_));
    }
    if (feed_) PollFeed();
    if (options_.sweep_interval.count() > 0 && std::chrono::steady_clock::now() >= next_sweep) {
      Apply(InvalidateUntimedCaches(*tree_));
      next_sweep = std::chrono::steady_clock::now() + options_.sweep_interval;
    }
  }
}

void ChangeNotifier::PollFeed() {
  constexpr size_t kBatch = 1024;
  while (true) {
    auto batch = feed_->Read(cursor_, kBatch);
    if (!batch.ok()) {
      if (!feed_failing_) {
        // Changes may go unseen until the feed is back; the kernel's timeouts still apply.
        std::cerr << "regfs-fused: change feed unreadable: " << batch.status().message() << "\n";
        feed_failing_ = true;
      }
      return;
    }
    if (feed_failing_) {
      std::cerr << "regfs-fused: change feed readable again\n";
      feed_failing_ = false;
      batch->gap = true;  // whatever happened meanwhile was missed
    }
    for (const ChangeEvent& e : batch->events) Apply(InvalidationsFor(e, *tree_));
    // After the events: what the gap hid is older than anything read next.
    if (batch->gap) Apply(InvalidateEverything(*tree_));
    cursor_ = batch->next;
    if (batch->events.size() < kBatch) return;
  }
}

void ChangeNotifier::Apply(const std::vector<Invalidation>& invalidations) {
  for (const Invalidation& inv : invalidations) {
    // Errors are expected and harmless: ENOENT when the kernel has already forgotten the
    // node or name, ENOTCONN before INIT or after unmount.
    if (inv.type == Invalidation::Type::kInode) {
      (void)fuse_lowlevel_notify_inval_inode(se_, inv.ino, 0, 0);
    } else {
      (void)fuse_lowlevel_notify_inval_entry(se_, inv.ino, inv.name.c_str(), inv.name.size());
    }
  }
}

}  // namespace regfs::fused
