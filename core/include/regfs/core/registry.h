// Registry: repositories, tags, manifests, blobs and uploads over a StorageDriver.
//
// This is the only API the front ends (regfs-httpd, regfs-fused) use. It stores data in
// exactly the on-disk layout of CNCF Distribution (registry:2), so a data directory can be
// shared with it in both directions.
//
// Consistency: every change others can see lands atomically (PutContent / Move), in an order
// that keeps the repository valid at every instant: blob bytes before the links to them,
// a manifest before the tags that point at it. A crash at any point leaves, at worst,
// unreferenced bytes and an upload that can be resumed or restarted.
//
// Upload state lives in storage, not in this process: any process sharing the storage can
// continue an upload another one started. An in-memory cache of hash states only saves
// rehashing the bytes received so far.
//
// Thread safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "regfs/core/digest.h"
#include "regfs/core/garbage_collection.h"
#include "regfs/core/manifest.h"
#include "regfs/core/status.h"
#include "regfs/core/storage_driver.h"

namespace regfs {

// One committed change, as delivered to ChangeListeners (the seam for notifications, the
// FUSE mount's cache invalidation, and metrics).
struct ChangeEvent {
  enum class Kind {
    kBlobLinked,
    kBlobUnlinked,
    kManifestPut,
    kManifestDeleted,
    kTagSet,
    kTagDeleted,
    kRepositoryDeleted,  // also an emptied namespace folder removed
    kUploadStarted,
    kUploadEnded,  // committed, cancelled, rejected or purged
    // Reads, not changes: a front end records them in the change log for notifications
    // when asked to; the Registry itself never emits them.
    kManifestPulled,
    kBlobPulled
  };
  Kind kind;
  std::string repository;
  std::optional<Digest> digest;
  std::string tag;
  std::string media_type;
  uint64_t size = 0;
  std::string from_repository;  // for a blob linked by cross-repository mount
  std::string upload_id;        // for kUploadStarted / kUploadEnded
};

class ChangeListener {
 public:
  virtual ~ChangeListener() = default;
  // Called after the change is durable, on the thread that made it. Must not block long and
  // must not call back into the Registry while holding its own locks.
  virtual void OnChange(const ChangeEvent& event) = 0;
  // Several changes committed together (a garbage collection's in one repository): the
  // same as OnChange for each, which is what this does unless a listener can do better.
  virtual void OnChanges(const std::vector<ChangeEvent>& events) {
    for (const ChangeEvent& event : events) OnChange(event);
  }
};

struct RegistryOptions {
  std::shared_ptr<StorageDriver> driver;  // REQUIRED
  bool delete_enabled = false;            // storage.delete.enabled
  bool read_only = false;                 // storage.maintenance.readonly.enabled
  // fsync blob and manifest bytes before any link makes them reachable.
  bool durable_writes = true;
  // Blob reads may send clients straight to the store (BlobRedirect), when the driver can
  // sign URLs: registry:2's storage.redirect, on unless disabled.
  bool redirect_reads = false;
  std::vector<std::shared_ptr<ChangeListener>> listeners;
  // Answers existence checks of reads (HEAD, GET) without the storage when set; the
  // Registry invalidates it on every deletion before the deleting call returns.
  std::shared_ptr<class DescriptorCache> descriptor_cache;
};

struct BlobInfo {
  Digest digest;
  uint64_t size;
};

struct UploadInfo {
  std::string id;
  uint64_t size = 0;  // bytes received so far
  std::chrono::system_clock::time_point started_at;
  std::chrono::system_clock::time_point last_activity;  // when bytes last arrived
};

struct TagInfo {
  std::string name;
  Digest digest;
  std::chrono::system_clock::time_point modified;  // when the tag was last set
};

// Stored bytes addressed by digest (a blob or a manifest).
struct ContentInfo {
  Digest digest;
  uint64_t size = 0;
  std::chrono::system_clock::time_point stored_at;
};

// A folder of the repository namespace: "team" may be a namespace, a repository, or both
// ("team" and "team/app" can both be repositories).
struct RepositoryFolder {
  bool is_repository = false;
  std::vector<std::string> children;  // names of sub-folders that may hold repositories
  std::chrono::system_clock::time_point modified;
};

struct ManifestInfo {
  Digest digest;
  std::string media_type;
  uint64_t size = 0;
};

struct Manifest {
  ManifestInfo info;
  std::string bytes;
};

struct PutManifestResult {
  Digest digest;
  std::optional<Digest> subject;
};

struct Page {
  std::vector<std::string> entries;
  bool more = false;  // entries were cut at the requested count
};

// An open blob ready to be streamed. Holds the storage reader.
struct BlobStream {
  BlobInfo info;
  std::unique_ptr<FileReader> reader;
};

class Registry {
 public:
  // Checks that the storage is usable (writable unless read-only).
  static Result<std::unique_ptr<Registry>> Open(RegistryOptions options);
  virtual ~Registry() = default;

  virtual bool delete_enabled() const = 0;
  virtual bool read_only() const = 0;

  // ---- blobs (all require a valid repository name; NotFound/kBlobUnknown when the blob is
  // not linked to that repository)
  virtual Result<BlobInfo> StatBlob(const std::string& repo, const Digest& digest) = 0;
  virtual Result<BlobStream> OpenBlob(const std::string& repo, const Digest& digest,
                                      uint64_t offset) = 0;
  // A URL, valid for a few minutes, from which a client can GET the blob's bytes straight
  // from the object store. FailedPrecondition when reads are not redirected (option off, or
  // a driver that cannot sign URLs): the caller then streams OpenBlob instead.
  virtual Result<std::string> BlobRedirect(const std::string& repo, const Digest& digest) = 0;
  // Unlinks the blob from the repository (bytes stay until garbage collection).
  virtual Status DeleteBlob(const std::string& repo, const Digest& digest) = 0;
  // Links a blob of repository `from` into `repo` without copying. NotFound when `from`
  // does not have it (the caller then falls back to an upload).
  virtual Result<BlobInfo> MountBlob(const std::string& repo, const std::string& from,
                                     const Digest& digest) = 0;

  // ---- uploads
  virtual Result<UploadInfo> StartUpload(const std::string& repo) = 0;
  virtual Result<UploadInfo> StatUpload(const std::string& repo, const std::string& id) = 0;
  // Appends the stream's bytes (until EOF) to the upload. With `expected_offset`, fails with
  // OutOfRange / kRangeInvalid unless it equals the upload's current size. Returns the new
  // state. On a read error midway (the stream goes bad) the bytes received so far stay
  // appended and the result is InvalidArgument / kBlobUploadInvalid.
  virtual Result<UploadInfo> AppendUpload(const std::string& repo, const std::string& id,
                                          std::istream& body,
                                          std::optional<uint64_t> expected_offset) = 0;
  // Verifies the upload's bytes hash to `digest` and makes them the blob, linked to `repo`.
  // A mismatch is InvalidArgument / kDigestInvalid and removes the upload (nothing of it
  // stays visible). NotFound / kBlobUploadUnknown for an unknown id.
  virtual Result<BlobInfo> CommitUpload(const std::string& repo, const std::string& id,
                                        const Digest& digest) = 0;
  virtual Status CancelUpload(const std::string& repo, const std::string& id) = 0;

  // ---- manifests. `reference` is a tag or a digest string (see reference.h). Lookups
  // (Stat, Get, Delete) answer NotFound / kManifestUnknown for a reference that does not
  // parse, since nothing can be stored under it; PutManifest refuses it as InvalidArgument.
  virtual Result<ManifestInfo> StatManifest(const std::string& repo,
                                            const std::string& reference) = 0;
  virtual Result<Manifest> GetManifest(const std::string& repo, const std::string& reference) = 0;
  // Validates and stores a manifest; with a tag reference also points the tag at it.
  virtual Result<PutManifestResult> PutManifest(const std::string& repo,
                                                const std::string& reference,
                                                const std::string& content_type,
                                                const std::string& bytes) = 0;
  // By digest: removes the manifest from the repository and every tag pointing at it.
  // By tag: removes only the tag.
  virtual Status DeleteManifest(const std::string& repo, const std::string& reference) = 0;

  // ---- listings, sorted lexically; `last` (exclusive) and `limit` paginate.
  virtual Result<Page> ListTags(const std::string& repo, const std::string& last, size_t limit) = 0;
  virtual Result<Page> ListRepositories(const std::string& last, size_t limit) = 0;
  // Descriptors of the repository's manifests whose subject is `subject`, optionally only
  // those of one artifact type.
  virtual Result<std::vector<Descriptor>> ListReferrers(const std::string& repo,
                                                        const Digest& subject,
                                                        const std::string& artifact_type) = 0;

  // ---- browsing, for front ends that present the registry as a tree (regfs-fused)
  // `path` is "" for the top, else a valid repository name. NotFound when absent.
  virtual Result<RepositoryFolder> ListFolder(const std::string& path) = 0;
  // The same without `children`: a few stats, whatever the folder holds.
  virtual Result<RepositoryFolder> StatFolder(const std::string& path) = 0;
  virtual Result<TagInfo> StatTag(const std::string& repo, const std::string& tag) = 0;
  // Digests of the manifests / blobs present in (linked to) a repository, sorted.
  virtual Result<std::vector<Digest>> ListManifestDigests(const std::string& repo) = 0;
  virtual Result<std::vector<Digest>> ListBlobDigests(const std::string& repo) = 0;
  virtual Result<std::vector<UploadInfo>> ListUploads(const std::string& repo) = 0;
  // Stored bytes by digest, whichever repository links them. The caller has already
  // resolved the digest through a repository (StatBlob, ListManifestDigests, ...).
  virtual Result<ContentInfo> StatContent(const Digest& digest) = 0;
  virtual Result<std::unique_ptr<FileReader>> OpenContent(const Digest& digest,
                                                          uint64_t offset) = 0;
  virtual Result<std::unique_ptr<FileReader>> OpenUpload(const std::string& repo,
                                                         const std::string& id,
                                                         uint64_t offset) = 0;
  // Points `tag` at a manifest already in the repository (what a PUT by tag does once the
  // manifest is stored). NotFound / kManifestUnknown when the digest is not a manifest of
  // the repository.
  virtual Status SetTag(const std::string& repo, const std::string& tag, const Digest& digest) = 0;
  // Renames a tag: `to` points where `from` did, then `from` is gone. `to` is replaced if it
  // exists. The old name disappears, so this needs deletes enabled, like untagging.
  virtual Status RenameTag(const std::string& repo, const std::string& from,
                           const std::string& to) = 0;
  // Removes a repository's tags, manifests, blob links and uploads (bytes stay for GC).
  // Repositories nested below it are kept. An empty namespace folder is removed too.
  // Requires deletes to be enabled.
  virtual Status DeleteRepository(const std::string& repo) = 0;

  // ---- pull-through caching (a front end mirroring another registry into `repo`)
  // Stores a manifest fetched from the registry `repo` mirrors, checked as PutManifest
  // checks it, except that the blobs and manifests it refers to need not be here yet: the
  // cache fetches them when they are first pulled. With a tag reference, also tags it.
  virtual Result<PutManifestResult> PutMirroredManifest(const std::string& repo,
                                                        const std::string& reference,
                                                        const std::string& content_type,
                                                        const std::string& bytes) = 0;
  // Links a blob whose bytes are already stored (for another repository) into `repo`,
  // for a cache whose upstream confirmed that `repo` has it: shared layers are fetched
  // once. NotFound / kBlobUnknown when the bytes are not stored.
  virtual Result<BlobInfo> LinkMirroredBlob(const std::string& repo, const Digest& digest) = 0;
  // Notes that a manifest of `repo` was just pulled, for the expiry of unused content
  // (GcOptions::expire_unused_before): touches the manifest's revision link when it is
  // older than `resolution`, so pulls cost at most one small write per resolution.
  virtual Status NoteManifestUse(const std::string& repo, const Digest& digest,
                                 std::chrono::seconds resolution) = 0;

  // ---- maintenance
  // Removes uploads started before `cutoff` (abandoned by clients or cut off by a crash) in
  // every repository. With `dry_run` only counts them. Returns how many were (or would be)
  // removed.
  virtual Result<size_t> PurgeUploads(std::chrono::system_clock::time_point cutoff,
                                      bool dry_run) = 0;
  // Removes what nothing needs any more (see garbage_collection.h and docs/gc.md) while
  // the registry serves, here and in any other process on the storage. FailedPrecondition
  // when another collection runs on this storage. A failure midway leaves a valid
  // registry; the next run goes on from there.
  virtual Result<GcReport> CollectGarbage(const GcOptions& options) = 0;
};

}  // namespace regfs
