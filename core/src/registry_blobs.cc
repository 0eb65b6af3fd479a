// Blobs of a repository: stat, read, unlink and cross-repository mount.
#include "layout.h"
#include "regfs/core/names.h"
#include "registry_impl.h"
#include "sweep_fence.h"

namespace regfs {

namespace {
Status BlobUnknown(const Digest& digest) {
  return Status::NotFound("blob " + digest.ToString() + " is not known to this repository",
                          Status::Reason::kBlobUnknown);
}
}  // namespace

Result<BlobInfo> RegistryImpl::StatBlob(const std::string& repo, const Digest& digest) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  if (!cache_) return StatBlobInStorage(repo, digest);
  auto cached = cache_->Lookup(repo, DescriptorCache::Kind::kBlob, digest);
  if (cached.hit) return BlobInfo{digest, cached.hit->size};
  auto info = StatBlobInStorage(repo, digest);
  if (info.ok()) {
    cache_->Store(repo, DescriptorCache::Kind::kBlob, digest, {.size = info->size},
                  cached.token);
  }
  return info;
}

Result<BlobInfo> RegistryImpl::StatBlobInStorage(const std::string& repo, const Digest& digest) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  auto linked = ReadLink(layout::LayerLink(repo, digest));
  if (!linked.ok() && !IsAbsent(linked.status())) return linked.status();
  if (!linked.ok() || !(*linked == digest)) return BlobUnknown(digest);
  // A link is written after its bytes and removed before them (garbage collection's
  // order): the bytes are there, and their size is the digest's.
  if (auto size = content_.BlobSize(digest)) return BlobInfo{digest, *size};
  auto info = driver_.Stat(layout::BlobData(digest));
  if (!info.ok()) {
    if (info.status().IsNotFound()) return BlobUnknown(digest);
    return info.status();
  }
  content_.PutBlobSize(digest, info->size);
  return BlobInfo{digest, info->size};
}

Result<BlobStream> RegistryImpl::OpenBlob(const std::string& repo, const Digest& digest,
                                          uint64_t offset) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  // The link's check may come from the cache; the bytes always come from the storage.
  if (cache_) {
    auto linked = StatBlob(repo, digest);
    if (!linked.ok()) return linked.status();
  } else {
    auto linked = ReadLink(layout::LayerLink(repo, digest));
    if (!linked.ok() && !IsAbsent(linked.status())) return linked.status();
    if (!linked.ok() || !(*linked == digest)) return BlobUnknown(digest);
  }
  auto reader = driver_.OpenReader(layout::BlobData(digest), offset);
  if (!reader.ok()) {
    if (reader.status().IsNotFound()) return BlobUnknown(digest);
    return reader.status();
  }
  uint64_t size = (*reader)->size();
  return BlobStream{BlobInfo{digest, size}, std::move(*reader)};
}

Result<std::string> RegistryImpl::BlobRedirect(const std::string& repo, const Digest& digest) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  if (!options_.redirect_reads || !driver_.capabilities().presigned_urls) {
    return Status::FailedPrecondition("blob reads are not redirected");
  }
  // The link and the object must exist: a presigned URL to nothing would turn "unknown
  // blob" into the store's own error page.
  auto info = StatBlob(repo, digest);
  if (!info.ok()) return info.status();
  // registry:2 signs for 20 minutes: enough for a slow client to start, short for a leak.
  return driver_.SignedURL(layout::BlobData(digest), std::chrono::minutes(20));
}

Status RegistryImpl::DeleteBlob(const std::string& repo, const Digest& digest) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  REGFS_RETURN_IF_ERROR(CheckDeletable());
  auto lock = LockRepository(repo);
  if (!lock.ok()) return lock.status();
  std::string link = layout::LayerLink(repo, digest);
  REGFS_RETURN_IF_ERROR(Require(link, BlobUnknown(digest)));
  // Remove the link's folder (<alg>/<hex>), as registry:2 does. Bytes stay for the GC.
  Status s = Remove(link.substr(0, link.rfind('/')));
  if (!s.ok() && !s.IsNotFound()) return s;
  Notify({.kind = ChangeEvent::Kind::kBlobUnlinked, .repository = repo, .digest = digest});
  return Status::Ok();
}

Result<BlobInfo> RegistryImpl::MountBlob(const std::string& repo, const std::string& from,
                                         const Digest& digest) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(from));
  REGFS_RETURN_IF_ERROR(CheckWritable());
  auto source = StatBlobInStorage(from, digest);
  if (!source.ok()) return source.status();
  return LinkStoredBlob(repo, *source, from);
}

Result<BlobInfo> RegistryImpl::LinkMirroredBlob(const std::string& repo, const Digest& digest) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  REGFS_RETURN_IF_ERROR(CheckWritable());
  auto stored = driver_.Stat(layout::BlobData(digest));
  if (!stored.ok()) return stored.status().IsNotFound() ? BlobUnknown(digest) : stored.status();
  return LinkStoredBlob(repo, BlobInfo{digest, stored->size}, "");
}

Result<BlobInfo> RegistryImpl::LinkStoredBlob(const std::string& repo, const BlobInfo& blob,
                                              const std::string& from) {
  {
    auto lock = LockRepository(repo);
    if (!lock.ok()) return lock.status();
    REGFS_RETURN_IF_ERROR(WriteLink(layout::LayerLink(repo, blob.digest), blob.digest));
  }
  // A collector may be deleting these bytes (unreferenced until now): the client then
  // uploads (or the cache fetches) them instead. The link left behind is collected.
  Status claimed = SweepFence(driver_).Claim({blob.digest});
  if (claimed.code() == Status::Code::kUnavailable) return BlobUnknown(blob.digest);
  REGFS_RETURN_IF_ERROR(claimed);
  Notify({.kind = ChangeEvent::Kind::kBlobLinked,
          .repository = repo,
          .digest = blob.digest,
          .size = blob.size,
          .from_repository = from});
  return blob;
}

}  // namespace regfs
