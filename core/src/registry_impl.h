// The Registry implementation. Split by concern across registry_*.cc files; this header is
// private to core.
#pragma once

#include <array>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "hash_state_cache.h"
#include "content_cache.h"
#include "manifest_metadata_cache.h"
#include "regfs/core/descriptor_cache.h"
#include "regfs/core/registry.h"

namespace regfs {

// A failed link read that means "no such thing here": missing, or not holding a digest (a
// link emptied by a crash of registry:2, or edited by hand). Anything else is the storage's
// failure, to report as such.
inline bool IsAbsent(const Status& s) {
  return s.IsNotFound() || s.code() == Status::Code::kCorruption;
}

class RegistryImpl final : public Registry {
 public:
  explicit RegistryImpl(RegistryOptions options);

  bool delete_enabled() const override { return options_.delete_enabled; }
  bool read_only() const override { return options_.read_only; }

  Result<BlobInfo> StatBlob(const std::string& repo, const Digest& digest) override;
  Result<std::string> BlobRedirect(const std::string& repo, const Digest& digest) override;
  Result<BlobStream> OpenBlob(const std::string& repo, const Digest& digest,
                              uint64_t offset) override;
  Status DeleteBlob(const std::string& repo, const Digest& digest) override;
  Result<BlobInfo> MountBlob(const std::string& repo, const std::string& from,
                             const Digest& digest) override;

  Result<UploadInfo> StartUpload(const std::string& repo) override;
  Result<UploadInfo> StatUpload(const std::string& repo, const std::string& id) override;
  Result<UploadInfo> AppendUpload(const std::string& repo, const std::string& id,
                                  std::istream& body,
                                  std::optional<uint64_t> expected_offset) override;
  Result<BlobInfo> CommitUpload(const std::string& repo, const std::string& id,
                                const Digest& digest) override;
  Status CancelUpload(const std::string& repo, const std::string& id) override;

  Result<ManifestInfo> StatManifest(const std::string& repo, const std::string& reference) override;
  Result<Manifest> GetManifest(const std::string& repo, const std::string& reference) override;
  Result<PutManifestResult> PutManifest(const std::string& repo, const std::string& reference,
                                        const std::string& content_type,
                                        const std::string& bytes) override;
  Status DeleteManifest(const std::string& repo, const std::string& reference) override;
  Result<PutManifestResult> PutMirroredManifest(const std::string& repo,
                                                const std::string& reference,
                                                const std::string& content_type,
                                                const std::string& bytes) override;
  Result<BlobInfo> LinkMirroredBlob(const std::string& repo, const Digest& digest) override;
  Status NoteManifestUse(const std::string& repo, const Digest& digest,
                         std::chrono::seconds resolution) override;

  Result<Page> ListTags(const std::string& repo, const std::string& last, size_t limit) override;
  Result<Page> ListRepositories(const std::string& last, size_t limit) override;
  Result<std::vector<Descriptor>> ListReferrers(const std::string& repo, const Digest& subject,
                                                const std::string& artifact_type) override;

  Result<RepositoryFolder> ListFolder(const std::string& path) override;
  Result<RepositoryFolder> StatFolder(const std::string& path) override;
  Result<TagInfo> StatTag(const std::string& repo, const std::string& tag) override;
  Result<std::vector<Digest>> ListManifestDigests(const std::string& repo) override;
  Result<std::vector<Digest>> ListBlobDigests(const std::string& repo) override;
  Result<std::vector<UploadInfo>> ListUploads(const std::string& repo) override;
  Result<ContentInfo> StatContent(const Digest& digest) override;
  Result<std::unique_ptr<FileReader>> OpenContent(const Digest& digest, uint64_t offset) override;
  Result<std::unique_ptr<FileReader>> OpenUpload(const std::string& repo, const std::string& id,
                                                 uint64_t offset) override;
  Status SetTag(const std::string& repo, const std::string& tag, const Digest& digest) override;
  Status RenameTag(const std::string& repo, const std::string& from,
                   const std::string& to) override;
  Status DeleteRepository(const std::string& repo) override;

  Result<size_t> PurgeUploads(std::chrono::system_clock::time_point cutoff, bool dry_run) override;
  Result<GcReport> CollectGarbage(const GcOptions& options) override;

 private:
  // ---- shared helpers (registry.cc)
  Status CheckWritable() const;
  Status CheckDeletable() const;
  // Reads a link file and parses the digest in it. NotFound when missing or empty (an empty
  // link is what registry:2 <= 3.0 can leave after a crash).
  Result<Digest> ReadLink(const std::string& path);
  Status WriteLink(const std::string& path, const Digest& digest);
  // Deletes under the locks this thread holds (driver_.Delete once CheckLocksHeld passes).
  Status Remove(std::string_view path);
  // Wraps a lock or lease so that the writes of this thread check it while it lives.
  static std::unique_ptr<StorageLock> Track(std::unique_ptr<StorageLock> lock);
  // Unavailable when a lock or lease this thread holds (Track) may have passed to another
  // process (an object store's lease not renewed in time): the write must not happen.
  static Status CheckLocksHeld();
  // Whether something is stored at path. Only for listings, where a failed check just
  // leaves an entry out; lookups use Require, which tells absence from failure.
  bool Exists(const std::string& path);
  // OK when `path` exists; `unknown` when it does not; the storage's error when it cannot
  // tell (an unreachable object store must answer 503, never "not found").
  Status Require(const std::string& path, Status unknown);
  Result<bool> RepositoryExists(const std::string& repo);
  // Calls visit(name, child folder names) for every folder below repositories/ that could
  // be a repository, in no particular order (registry_listings.cc).
  Status WalkRepositoryFolders(
      const std::function<void(const std::string&, const std::vector<std::string>&)>& visit);
  void Notify(const ChangeEvent& event);
  // Serialises the writes that change what a repository links (manifests, tags, layer
  // links, the repository itself) among all threads and processes on the storage: a delete
  // lists and removes folders that a concurrent put may be filling; unserialised, the put
  // fails or a tag outlives its manifest. Readers take no lock: every link lands by rename.
  // Never hold two at once.
  Result<std::unique_ptr<StorageLock>> LockRepository(const std::string& repo);

  // ---- blobs (registry_blobs.cc)
  // StatBlob from the storage alone: for writers, which must not trust a cache.
  Result<BlobInfo> StatBlobInStorage(const std::string& repo, const Digest& digest);

  // ---- uploads (registry_uploads.cc)
  // One writer per upload among all processes on this storage (StorageDriver::Lock).
  Result<std::unique_ptr<StorageLock>> LockUpload(const std::string& repo, const std::string& id);
  // The hash of an upload's first `size` bytes, from the cache or by rereading them.
  Result<DigestHasher> HasherAt(const std::string& repo, const std::string& id,
                                const std::string& algorithm, uint64_t size);
  // Makes verified bytes at `upload_data` the blob `digest` and links it into `repo`.
  // REQUIRES: *upload_lock held; released once the bytes are the blob's.
  Result<BlobInfo> LinkVerifiedUpload(const std::string& repo, const std::string& id,
                                      const Digest& digest, uint64_t size,
                                      std::unique_ptr<StorageLock>* upload_lock);

  // ---- manifests (registry_manifests.cc)
  // Resolves a tag or digest to the digest of a manifest present in the repository. With
  // `cached`, the descriptor cache may vouch for the manifest's presence: then *cached
  // holds its size and media type (else it is reset) and the storage is not asked.
  Result<Digest> ResolveManifest(const std::string& repo, const std::string& reference,
                                 std::optional<CachedDescriptor>* cached = nullptr);
  // Metadata of a stored manifest (parsed once, then cached: manifests are immutable).
  Result<ManifestMetadata> LoadMetadata(const Digest& digest);
  Status CheckReferences(const std::string& repo, const ParsedManifest& manifest);
  // Links stored bytes into `repo` (MountBlob from `from`, LinkMirroredBlob with "").
  Result<BlobInfo> LinkStoredBlob(const std::string& repo, const BlobInfo& blob,
                                  const std::string& from);
  // PutManifest, and PutMirroredManifest without `check_references`.
  Result<PutManifestResult> StoreManifest(const std::string& repo, const std::string& reference,
                                          const std::string& content_type,
                                          const std::string& bytes, bool check_references);
  // Links back a blob whose link garbage collection replaced by a tombstone, if its bytes
  // are still there. REQUIRES: the repository's lock held.
  bool Relink(const std::string& repo, const Digest& digest);
  // Writes the tag's index and current links (manifest already present).
  Status WriteTag(const std::string& repo, const std::string& tag, const Digest& digest);
  // Digests named by the <alg>/<hex>/link folders below `dir` (revisions, _layers).
  Result<std::vector<Digest>> ListLinkedDigests(const std::string& dir);

  // ---- garbage collection (registry_gc.cc)
  struct GcRun;
  // Marks what `repo` keeps and, unless a dry run, removes what it no longer needs.
  Status CollectRepository(const std::string& repo, GcRun& run);
  // Layer links that garbage collection removed, with when (layout::LayerTombstone).
  Result<std::vector<std::pair<Digest, std::chrono::system_clock::time_point>>> ListTombstones(
      const std::string& repo);
  // Deletes the blobs nothing marked, through the SweepFence.
  Status SweepBlobs(GcRun& run);
  // Deletes `dir` and the folders below it that hold no file (only empty folders).
  Status PruneEmptyFolders(const std::string& dir);

  RegistryOptions options_;
  StorageDriver& driver_;
  const std::shared_ptr<DescriptorCache> cache_;  // null: none
  HashStateCache hash_states_;
  ManifestMetadataCache metadata_;
  ContentCache content_;
};

}  // namespace regfs
