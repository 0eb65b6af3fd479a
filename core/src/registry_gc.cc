// Garbage collection while serving (Registry::CollectGarbage). Three passes:
//
//   1. Each repository in turn, under its lock (the one every writer of its links takes, so
//      what it sees there is exact): the manifests it keeps (all, or with delete_untagged
//      those reachable from a tag, through indexes, plus referrers of kept ones, plus any
//      pushed within the grace window), and the blobs they refer to, which are marked. With
//      delete_untagged the other manifests go; so do its links to blobs no kept manifest
//      refers to, unless linked within the grace window (an upload not yet in a manifest).
//   2. The blob store: a blob not marked and older than the grace window is a candidate.
//      Candidates are deleted through the SweepFence (sweep_fence.h), which keeps any that a
//      writer links meanwhile, in whichever process.
//   3. Uploads older than the purge age, and temporary files interrupted writes left.
//
// A kill at any point leaves a valid registry: a manifest goes only once no tag reaches it,
// a blob only once nothing links to it; the next run finishes the job.
#include <algorithm>
#include <map>
#include <set>

#include "layout.h"
#include "regfs/core/manifest.h"
#include "registry_impl.h"
#include "sweep_fence.h"

namespace regfs {

const char* PhaseName(GcProgress::Phase phase) {
  switch (phase) {
    case GcProgress::Phase::kMark:
      return "mark";
    case GcProgress::Phase::kSweepBlobs:
      return "sweep";
    case GcProgress::Phase::kPurgeUploads:
      return "uploads";
  }
  return "?";
}

namespace {

constexpr size_t kMaxStoredManifestBytes = 16 * 1024 * 1024;

// What a stored manifest refers to.
struct ManifestNode {
  std::vector<Digest> blobs;     // config and layers (foreign layers left out)
  std::vector<Digest> children;  // an index's manifests
  std::optional<Digest> subject;
};

// Every "sha256:<64 hex>" in `bytes`: the references of a manifest ParseManifest does not
// take (schema 1, written by an old registry), so that its layers are never taken for
// garbage.
std::vector<Digest> DigestsMentioned(const std::string& bytes) {
  std::vector<Digest> out;
  for (size_t at = bytes.find("sha256:"); at != std::string::npos;
       at = bytes.find("sha256:", at + 1)) {
    if (at + 7 + 64 > bytes.size()) break;
    auto digest = Digest::Parse(std::string_view(bytes).substr(at, 7 + 64));
    if (digest.ok()) out.push_back(*digest);
  }
  return out;
}

std::string BlobDir(const Digest& d) {
  std::string data = layout::BlobData(d);
  return data.substr(0, data.rfind('/'));
}

std::string Parent(const std::string& path) { return path.substr(0, path.rfind('/')); }

class Progress {
 public:
  Progress(const GcOptions& options, GcProgress::Phase phase, uint64_t total)
      : options_(options), state_{phase, 0, total, {}}, start_(std::chrono::steady_clock::now()) {}
  void Advance() {
    ++state_.done;
    if (!options_.on_progress) return;
    auto now = std::chrono::steady_clock::now();
    if (state_.done != state_.total && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    state_.elapsed = now - start_;
    options_.on_progress(state_);
  }

 private:
  const GcOptions& options_;
  GcProgress state_;
  std::chrono::steady_clock::time_point start_, last_{};
};

}  // namespace

// The collection's state across passes; private to this file.
struct RegistryImpl::GcRun {
  const GcOptions& options;
  std::chrono::system_clock::time_point cutoff;  // written before this: outside the grace
  std::set<Digest> marked;
  GcReport report;
  void Line(const std::string& line) const {
    if (options.on_line) options.on_line(line);
  }
};

Status RegistryImpl::PruneEmptyFolders(const std::string& dir) {
  auto children = driver_.List(dir);
  if (!children.ok()) return children.status().IsNotFound() ? Status::Ok() : children.status();
  bool empty = true;
  for (const std::string& child : *children) {
    auto info = driver_.Stat(dir + "/" + child);
    if (info.ok() && info->is_directory) {
      REGFS_RETURN_IF_ERROR(PruneEmptyFolders(dir + "/" + child));
      auto left = driver_.List(dir + "/" + child);
      if (left.ok()) empty = false;
    } else {
      empty = false;
    }
  }
  if (empty) {
    Status s = Remove(dir);
    if (!s.ok() && !s.IsNotFound()) return s;
  }
  return Status::Ok();
}

Result<std::vector<std::pair<Digest, std::chrono::system_clock::time_point>>>
RegistryImpl::ListTombstones(const std::string& repo) {
  std::vector<std::pair<Digest, std::chrono::system_clock::time_point>> out;
  const std::string dir = layout::LayersDir(repo);
  auto algorithms = driver_.List(dir);
  if (!algorithms.ok()) {
    if (algorithms.status().IsNotFound()) return out;
    return algorithms.status();
  }
  for (const std::string& algorithm : *algorithms) {
    auto hexes = driver_.List(dir + "/" + algorithm);
    if (!hexes.ok()) continue;
    for (const std::string& hex : *hexes) {
      auto digest = Digest::Parse(algorithm + ":" + hex);
      if (!digest.ok() || Exists(layout::LayerLink(repo, *digest))) continue;
      auto tombstone = driver_.Stat(layout::LayerTombstone(repo, *digest));
      if (tombstone.ok()) out.emplace_back(*digest, tombstone->modified);
    }
  }
  return out;
}

Status RegistryImpl::CollectRepository(const std::string& repo, GcRun& run) {
  const GcOptions& options = run.options;
  std::unique_ptr<StorageLock> lock;
  if (!options.dry_run) {
    auto locked = LockRepository(repo);
    if (!locked.ok()) return locked.status();
    lock = std::move(*locked);
  }
  run.Line(repo);

  std::map<std::string, Digest> tags;
  auto tag_names = driver_.List(layout::TagsDir(repo));
  if (!tag_names.ok() && !tag_names.status().IsNotFound()) return tag_names.status();
  if (tag_names.ok()) {
    for (const std::string& tag : *tag_names) {
      auto current = ReadLink(layout::TagCurrentLink(repo, tag));
      if (current.ok()) {
        tags.emplace(tag, *current);
      } else if (!IsAbsent(current.status())) {
        return current.status();
      }
    }
  }

  auto revisions = ListLinkedDigests(layout::ManifestsDir(repo) + "/revisions");
  if (!revisions.ok()) return revisions.status();
  std::map<Digest, ManifestNode> manifests;
  std::set<Digest> unreadable;  // revisions whose bytes are missing or unreadable
  for (const Digest& digest : *revisions) {
    auto bytes = driver_.GetContent(layout::BlobData(digest), kMaxStoredManifestBytes);
    ManifestNode node;
    if (!bytes.ok()) {
      if (!IsAbsent(bytes.status()) &&
          bytes.status().code() != Status::Code::kResourceExhausted) {
        return bytes.status();
      }
      unreadable.insert(digest);
    } else if (auto parsed = ParseManifest(*bytes, ""); parsed.ok()) {
      for (const Descriptor& d : parsed->blobs) {
        if (!d.has_urls) node.blobs.push_back(d.digest);
      }
      for (const Descriptor& d : parsed->children) node.children.push_back(d.digest);
      node.subject = parsed->subject;
    } else {
      node.blobs = DigestsMentioned(*bytes);
    }
    manifests.emplace(digest, std::move(node));
  }

  // Which manifests stay.
  std::set<Digest> kept;
  std::function<void(const Digest&)> keep = [&](const Digest& digest) {
    auto it = manifests.find(digest);
    if (it == manifests.end() || !kept.insert(digest).second) return;
    for (const Digest& child : it->second.children) keep(child);
  };
  std::optional<std::chrono::system_clock::time_point> unused_before;
  if (options.expire_unused_before) unused_before = options.expire_unused_before(repo);
  if (unused_before) {
    // A cache: what was pulled (or fetched) lately stays, tagged or not; tags do not keep.
    for (const auto& [digest, node] : manifests) {
      auto link = driver_.Stat(layout::RevisionLink(repo, digest));
      if (!link.ok() && !link.status().IsNotFound()) return link.status();
      if (unreadable.count(digest) > 0 ||
          (link.ok() && (link->modified > *unused_before || link->modified > run.cutoff))) {
        keep(digest);
      }
    }
  } else if (!options.delete_untagged) {
    for (const auto& [digest, node] : manifests) keep(digest);
  } else {
    for (const auto& [tag, digest] : tags) keep(digest);
    for (const auto& [digest, node] : manifests) {
      if (kept.count(digest) > 0) continue;
      // Pushed within the grace window (an index's children come before the index, a
      // manifest by digest before its tag), or not readable enough to judge: stays.
      auto link = driver_.Stat(layout::RevisionLink(repo, digest));
      if (!link.ok() && !link.status().IsNotFound()) return link.status();
      if (unreadable.count(digest) > 0 || (link.ok() && link->modified > run.cutoff)) {
        keep(digest);
      }
    }
  }
  if (unused_before || options.delete_untagged) {
    // Referrers (signatures, SBOMs) stay with their subject, and theirs with them.
    for (bool grew = true; grew;) {
      grew = false;
      for (const auto& [digest, node] : manifests) {
        if (kept.count(digest) == 0 && node.subject && kept.count(*node.subject) > 0) {
          keep(digest);
          grew = true;
        }
      }
    }
  }

  std::set<Digest> used;  // what this repository's kept manifests refer to
  for (const Digest& digest : kept) {
    run.Line(repo + ": marking manifest " + digest.ToString());
    run.marked.insert(digest);
    used.insert(digest);
    const ManifestNode& node = manifests.at(digest);
    for (const Digest& ref : node.children) {
      run.Line(repo + ": marking blob " + ref.ToString());
      run.marked.insert(ref);
      used.insert(ref);
    }
    for (const Digest& ref : node.blobs) {
      run.Line(repo + ": marking blob " + ref.ToString());
      run.marked.insert(ref);
      used.insert(ref);
    }
  }
  run.report.manifests_marked += kept.size();

  // What this repository loses, announced together once it is gone (one log entry, not
  // one per link), also when a failure stops the sweep midway.
  std::vector<ChangeEvent> changes;
  struct Announce {
    RegistryImpl* registry;
    std::vector<ChangeEvent>& changes;
    ~Announce() {
      if (changes.empty()) return;
      for (const auto& listener : registry->options_.listeners) listener->OnChanges(changes);
    }
  } announce{this, changes};
  // An expired manifest's tags go first: a tag never points at a missing manifest.
  for (auto it = tags.begin(); unused_before && it != tags.end();) {
    if (kept.count(it->second) > 0 || manifests.count(it->second) == 0) {
      ++it;
      continue;
    }
    run.Line(repo + ": tag " + it->first + " expired: " + it->second.ToString() +
             " was not pulled within the cache's ttl");
    ++run.report.tags_expired;
    if (!options.dry_run) {
      Status s = Remove(layout::TagDir(repo, it->first));
      if (!s.ok() && !s.IsNotFound()) return s;
      changes.push_back({.kind = ChangeEvent::Kind::kTagDeleted,
                         .repository = repo,
                         .digest = it->second,
                         .tag = it->first});
    }
    it = tags.erase(it);
  }
  for (const auto& [digest, node] : manifests) {
    if (kept.count(digest) > 0) continue;
    run.Line("manifest eligible for deletion: " + digest.ToString());
    ++run.report.manifests_deleted;
    if (options.dry_run) continue;
    // No tag points here (it would be kept), but a tag's history may name it.
    for (const auto& [tag, current] : tags) {
      Status s = Remove(Parent(layout::TagIndexLink(repo, tag, digest)));
      if (!s.ok() && !s.IsNotFound()) return s;
    }
    Status s = Remove(Parent(layout::RevisionLink(repo, digest)));
    if (!s.ok() && !s.IsNotFound()) return s;
    changes.push_back(
        {.kind = ChangeEvent::Kind::kManifestDeleted, .repository = repo, .digest = digest});
  }

  auto layers = ListLinkedDigests(layout::LayersDir(repo));
  if (!layers.ok()) return layers.status();
  size_t layers_left = 0;
  for (const Digest& digest : *layers) {
    if (used.count(digest) > 0) {
      ++layers_left;
      continue;
    }
    const std::string link = layout::LayerLink(repo, digest);
    auto info = driver_.Stat(link);
    if (!info.ok()) {
      if (info.status().IsNotFound()) continue;
      return info.status();
    }
    if (info->modified > run.cutoff) {
      // Uploaded or mounted within the grace window: a push whose manifest is yet to come.
      run.marked.insert(digest);
      ++layers_left;
      continue;
    }
    run.Line(repo + ": layer link eligible for deletion: " + digest.ToString());
    ++run.report.layer_links_deleted;
    if (options.dry_run) continue;
    if (options.grace.count() > 0) {
      // A client may have checked this blob a moment ago (HEAD) and be about to put a
      // manifest that refers to it: for the grace window a tombstone lets that manifest
      // PUT link it back, and keeps the bytes (sweeping registry:2's way: without grace).
      REGFS_RETURN_IF_ERROR(driver_.PutContent(layout::LayerTombstone(repo, digest),
                                               digest.ToString(), false));
      run.marked.insert(digest);
      ++layers_left;
      Status s = Remove(link);
      if (!s.ok() && !s.IsNotFound()) return s;
    } else {
      Status s = Remove(Parent(link));
      if (!s.ok() && !s.IsNotFound()) return s;
    }
    changes.push_back(
        {.kind = ChangeEvent::Kind::kBlobUnlinked, .repository = repo, .digest = digest});
  }
  // Tombstones of earlier runs: one older than the grace window goes (and the blob with it
  // in this run's sweep, unless linked elsewhere); a newer one keeps its blob.
  auto unlinked = ListTombstones(repo);
  if (!unlinked.ok()) return unlinked.status();
  for (const auto& [digest, modified] : *unlinked) {
    if (modified > run.cutoff || options.dry_run) {
      if (modified > run.cutoff) run.marked.insert(digest);
      ++layers_left;
      continue;
    }
    Status s = Remove(Parent(layout::LayerTombstone(repo, digest)));
    if (!s.ok() && !s.IsNotFound()) return s;
  }

  if (options.dry_run) return Status::Ok();
  if (!tags.empty() || !kept.empty() || layers_left > 0) return Status::Ok();
  // Nothing is left but empty folders (and maybe uploads): remove them, and the repository
  // with them once no upload remains, so it leaves the catalog and the mount.
  REGFS_RETURN_IF_ERROR(PruneEmptyFolders(layout::ManifestsDir(repo)));
  REGFS_RETURN_IF_ERROR(PruneEmptyFolders(layout::LayersDir(repo)));
  REGFS_RETURN_IF_ERROR(PruneEmptyFolders(layout::UploadsDir(repo)));
  auto left = driver_.List(layout::Repository(repo));
  if (left.ok() && left->empty()) {
    Status s = Remove(layout::Repository(repo));
    if (!s.ok() && !s.IsNotFound()) return s;
  }
  auto exists = RepositoryExists(repo);
  if (exists.ok() && !*exists) {
    ++run.report.repositories_removed;
    changes.push_back({.kind = ChangeEvent::Kind::kRepositoryDeleted, .repository = repo});
  }
  return Status::Ok();
}

Status RegistryImpl::SweepBlobs(GcRun& run) {
  const GcOptions& options = run.options;
  struct Candidate {
    Digest digest;
    uint64_t size;
  };
  std::vector<Candidate> candidates;
  std::vector<std::string> blob_dirs;
  const std::string root = std::string(layout::kRoot) + "/blobs";
  auto algorithms = driver_.List(root);
  if (!algorithms.ok() && !algorithms.status().IsNotFound()) return algorithms.status();
  for (const std::string& algorithm : algorithms.ok() ? *algorithms : std::vector<std::string>{}) {
    auto prefixes = driver_.List(root + "/" + algorithm);
    if (!prefixes.ok()) continue;
    for (const std::string& prefix : *prefixes) {
      auto hexes = driver_.List(root + "/" + algorithm + "/" + prefix);
      if (!hexes.ok()) continue;
      for (const std::string& hex : *hexes) {
        blob_dirs.push_back(root + "/" + algorithm + "/" + prefix + "/" + hex);
      }
    }
  }
  // A temporary file is written and renamed within a request; one older than a minute was
  // abandoned by a killed writer, whatever the grace window (even 0s).
  const auto leftover_cutoff =
      std::min(run.cutoff, std::chrono::system_clock::now() - std::chrono::minutes(1));
  Progress progress(options, GcProgress::Phase::kSweepBlobs, blob_dirs.size());
  for (const std::string& dir : blob_dirs) {
    progress.Advance();
    auto leftovers = driver_.RemoveLeftovers(dir, leftover_cutoff, options.dry_run);
    if (leftovers.ok()) run.report.leftovers_removed += *leftovers;
    std::string name = dir.substr(root.size() + 1);  // <alg>/<xx>/<hex>
    auto digest = Digest::Parse(name.substr(0, name.find('/')) + ":" +
                                name.substr(name.rfind('/') + 1));
    if (!digest.ok()) continue;  // not registry:2's (hand-made); left alone
    auto data = driver_.Stat(dir + "/data");
    if (!data.ok()) {
      if (!data.status().IsNotFound()) return data.status();
      // A folder that never received its bytes (a write cut off): empty now, or soon.
      if (!options.dry_run) (void)PruneEmptyFolders(dir);
      continue;
    }
    if (run.marked.count(*digest) > 0 || data->modified > run.cutoff) continue;
    candidates.push_back({*digest, data->size});
  }
  run.report.blobs_marked = run.marked.size();
  run.Line(std::to_string(run.marked.size()) + " blobs marked, " +
           std::to_string(candidates.size()) + " blobs and " +
           std::to_string(run.report.manifests_deleted) + " manifests eligible for deletion");
  for (const Candidate& c : candidates) run.Line("blob eligible for deletion: " + c.digest.ToString());
  if (options.dry_run) {
    run.report.blobs_deleted = candidates.size();
    for (const Candidate& c : candidates) run.report.bytes_freed += c.size;
    return Status::Ok();
  }
  if (candidates.empty()) return Status::Ok();

  SweepFence fence(driver_);
  REGFS_RETURN_IF_ERROR(fence.BeginSweep());
  std::vector<Digest> condemned_digests;
  for (const Candidate& c : candidates) condemned_digests.push_back(c.digest);
  if (Status condemned = fence.Condemn(condemned_digests); !condemned.ok()) {
    (void)fence.EndSweep();
    return condemned;
  }
  if (options.after_condemn) options.after_condemn();

  // Links made since the repositories were marked: a writer that linked a candidate before
  // it could see the condemnation is found here (sweep_fence.h).
  std::set<Digest> linked;
  Status walked = WalkRepositoryFolders([&](const std::string& repo, const std::vector<std::string>&) {
    for (const std::string& dir :
         {layout::LayersDir(repo), layout::ManifestsDir(repo) + "/revisions"}) {
      auto algorithms = driver_.List(dir);
      if (!algorithms.ok()) continue;
      for (const std::string& algorithm : *algorithms) {
        auto hexes = driver_.List(dir + "/" + algorithm);
        if (!hexes.ok()) continue;
        for (const std::string& hex : *hexes) {
          if (auto d = Digest::Parse(algorithm + ":" + hex); d.ok()) linked.insert(*d);
        }
      }
    }
  });
  if (!walked.ok()) {
    (void)fence.EndSweep();
    return walked;
  }
  if (options.before_verdicts) options.before_verdicts();

  std::map<std::string, std::vector<const Candidate*>> buckets;
  for (const Candidate& c : candidates) buckets[SweepFence::BucketOf(c.digest)].push_back(&c);
  for (const auto& [bucket, members] : buckets) {
    auto claimed = fence.Decide(bucket);
    if (!claimed.ok()) {
      fence.Release(bucket);
      (void)fence.EndSweep();
      return claimed.status();
    }
    for (const Candidate* c : members) {
      if (linked.count(c->digest) > 0 || claimed->count(c->digest) > 0) {
        run.Line("blob linked while collecting, kept: " + c->digest.ToString());
        ++run.report.blobs_rescued;
        continue;
      }
      run.Line("Deleting blob: /" + BlobDir(c->digest));
      Status s = Remove(BlobDir(c->digest));
      if (!s.ok() && !s.IsNotFound()) {
        fence.Release(bucket);
        (void)fence.EndSweep();
        return s;
      }
      ++run.report.blobs_deleted;
      run.report.bytes_freed += c->size;
    }
    fence.Release(bucket);
  }
  return fence.EndSweep();
}

Result<GcReport> RegistryImpl::CollectGarbage(const GcOptions& options) {
  if (!options.dry_run) REGFS_RETURN_IF_ERROR(CheckWritable());
  auto started = std::chrono::steady_clock::now();
  // One collector at a time on this storage, whatever process runs it.
  auto lease = driver_.TryLease("gc");
  if (lease.ok()) *lease = Track(std::move(*lease));
  if (!lease.ok()) {
    if (lease.status().code() != Status::Code::kFailedPrecondition) return lease.status();
    return Status::FailedPrecondition("another garbage collection is running on " +
                                      driver_.Describe());
  }
  GcRun run{options, std::chrono::system_clock::now() - options.grace, {}, {}};

  // Abandoned uploads first, so that a repository left with nothing goes in the same run.
  if (options.purge_uploads_older_than) {
    auto purged = PurgeUploads(std::chrono::system_clock::now() - *options.purge_uploads_older_than,
                               options.dry_run);
    if (!purged.ok()) return purged.status();
    run.report.uploads_purged = *purged;
  }

  std::vector<std::string> repos;
  REGFS_RETURN_IF_ERROR(
      WalkRepositoryFolders([&](const std::string& name, const std::vector<std::string>& children) {
        for (const char* own : {"_manifests", "_layers", "_uploads"}) {
          if (std::find(children.begin(), children.end(), own) != children.end()) {
            repos.push_back(name);
            return;
          }
        }
      }));
  std::sort(repos.begin(), repos.end());
  run.report.repositories = repos.size();
  Progress progress(options, GcProgress::Phase::kMark, repos.size());
  for (const std::string& repo : repos) {
    Status s = CollectRepository(repo, run);
    if (!s.ok()) return s.WithContext(repo);
    progress.Advance();
  }
  REGFS_RETURN_IF_ERROR(SweepBlobs(run));

  run.report.duration = std::chrono::steady_clock::now() - started;
  return run.report;
}

}  // namespace regfs
