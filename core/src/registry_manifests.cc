// Manifests and tags. A manifest's bytes are stored as a blob; its presence in a repository
// is its revision link; a tag is a link to a manifest digest. Writes go bytes, revision,
// tag index, tag current: every state in between is a valid repository.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include "layout.h"
#include "regfs/core/names.h"
#include "regfs/core/reference.h"
#include "registry_impl.h"
#include "sweep_fence.h"

namespace regfs {

namespace {

// registry:2 set no size limit on what it stored; read up to this much of its manifests.
constexpr size_t kMaxStoredManifestBytes = 16 * 1024 * 1024;

Status ManifestUnknown(const std::string& reference) {
  return Status::NotFound("manifest " + reference + " is not known to this repository",
                          Status::Reason::kManifestUnknown);
}

// The media type of stored bytes that ParseManifest does not accept (e.g. a schema 1
// manifest pushed to registry:2): its mediaType member if any, else schema 1's type.
std::string FallbackMediaType(const std::string& bytes) {
  try {
    Poco::JSON::Parser parser;
    auto obj = parser.parse(bytes).extract<Poco::JSON::Object::Ptr>();
    if (obj && obj->has("mediaType")) return obj->getValue<std::string>("mediaType");
  } catch (...) {
  }
  return "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

ManifestMetadata MetadataOf(const std::string& bytes, const ParsedManifest* parsed) {
  ManifestMetadata m;
  m.size = bytes.size();
  if (parsed == nullptr) {
    m.media_type = FallbackMediaType(bytes);
    return m;
  }
  m.media_type = parsed->media_type;
  m.subject = parsed->subject;
  m.artifact_type = parsed->artifact_type;
  m.annotations = parsed->annotations;
  return m;
}

}  // namespace

Result<Digest> RegistryImpl::ResolveManifest(const std::string& repo,
                                             const std::string& reference,
                                             std::optional<CachedDescriptor>* cached) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  auto ref = Reference::Parse(reference);
  REGFS_RETURN_IF_ERROR(LookupStatusOf(ref, reference, ManifestUnknown(reference)));
  Digest digest = Digest::Sha256Of("");
  if (ref->is_digest()) {
    digest = ref->digest();
  } else {
    auto current = ReadLink(layout::TagCurrentLink(repo, ref->tag()));
    if (!current.ok()) {
      return current.status().IsNotFound() ? ManifestUnknown(reference) : current.status();
    }
    digest = *current;
  }
  if (cached != nullptr) cached->reset();
  if (cached != nullptr && cache_) {
    auto lookup = cache_->Lookup(repo, DescriptorCache::Kind::kManifest, digest);
    if (lookup.hit) {
      *cached = lookup.hit;
      return digest;
    }
    REGFS_RETURN_IF_ERROR(Require(layout::RevisionLink(repo, digest), ManifestUnknown(reference)));
    auto meta = LoadMetadata(digest);
    if (!meta.ok()) return meta.status();
    *cached = CachedDescriptor{meta->size, meta->media_type};
    cache_->Store(repo, DescriptorCache::Kind::kManifest, digest, **cached, lookup.token);
    return digest;
  }
  // A tag is written after its manifest's revision and removed before it (DeleteManifest,
  // garbage collection): a tag that points at a digest vouches for the revision.
  if (ref->is_digest()) {
    REGFS_RETURN_IF_ERROR(Require(layout::RevisionLink(repo, digest), ManifestUnknown(reference)));
  }
  return digest;
}

Result<ManifestMetadata> RegistryImpl::LoadMetadata(const Digest& digest) {
  if (auto cached = metadata_.Get(digest)) return *cached;
  auto bytes = driver_.GetContent(layout::BlobData(digest), kMaxStoredManifestBytes);
  if (!bytes.ok()) {
    return bytes.status().IsNotFound() ? ManifestUnknown(digest.ToString()) : bytes.status();
  }
  auto parsed = ParseManifest(*bytes, "");
  ManifestMetadata m = MetadataOf(*bytes, parsed.ok() ? &*parsed : nullptr);
  metadata_.Put(digest, m);
  return m;
}

Result<ManifestInfo> RegistryImpl::StatManifest(const std::string& repo,
                                                const std::string& reference) {
  std::optional<CachedDescriptor> cached;
  auto digest = ResolveManifest(repo, reference, &cached);
  if (!digest.ok()) return digest.status();
  if (cached) return ManifestInfo{*digest, cached->media_type, cached->size};
  auto meta = LoadMetadata(*digest);
  if (!meta.ok()) return meta.status();
  return ManifestInfo{*digest, meta->media_type, meta->size};
}

Result<Manifest> RegistryImpl::GetManifest(const std::string& repo, const std::string& reference) {
  std::optional<CachedDescriptor> cached;
  auto digest = ResolveManifest(repo, reference, &cached);
  if (!digest.ok()) return digest.status();
  Result<std::string> bytes = Status::NotFound("not read");
  if (auto cached_bytes = content_.ManifestBytes(*digest)) {
    bytes = std::move(*cached_bytes);
  } else {
    bytes = driver_.GetContent(layout::BlobData(*digest), kMaxStoredManifestBytes);
    if (!bytes.ok()) {
      return bytes.status().IsNotFound() ? ManifestUnknown(reference) : bytes.status();
    }
    // Stored bytes hash to their digest unless the storage was tampered with; only those
    // are kept.
    DigestHasher check(digest->algorithm());
    check.Update(bytes->data(), bytes->size());
    if (check.Current() == *digest) content_.PutManifestBytes(*digest, *bytes);
  }
  auto meta = metadata_.Get(*digest);
  if (!meta) {
    auto parsed = ParseManifest(*bytes, "");
    meta = MetadataOf(*bytes, parsed.ok() ? &*parsed : nullptr);
    metadata_.Put(*digest, *meta);
  }
  return Manifest{ManifestInfo{*digest, meta->media_type, bytes->size()}, std::move(*bytes)};
}

bool RegistryImpl::Relink(const std::string& repo, const Digest& digest) {
  // Garbage collection removed the link moments ago, perhaps after the client checked the
  // blob was there: the repository did have it, and its bytes are still stored.
  if (!driver_.Stat(layout::LayerTombstone(repo, digest)).ok()) return false;
  if (!driver_.Stat(layout::BlobData(digest)).ok()) return false;
  return WriteLink(layout::LayerLink(repo, digest), digest).ok();
}

Status RegistryImpl::CheckReferences(const std::string& repo, const ParsedManifest& manifest) {
  for (const Descriptor& blob : manifest.blobs) {
    if (blob.has_urls) continue;  // foreign layers live elsewhere by design
    auto info = StatBlobInStorage(repo, blob.digest);
    if (!info.ok() && info.status().IsNotFound() && Relink(repo, blob.digest)) continue;
    if (!info.ok()) {
      if (!info.status().IsNotFound()) return info.status();
      return Status::InvalidArgument(
          "blob " + blob.digest.ToString() + " is not in the repository; push it first",
          Status::Reason::kManifestBlobUnknown);
    }
  }
  for (const Descriptor& child : manifest.children) {
    REGFS_RETURN_IF_ERROR(Require(
        layout::RevisionLink(repo, child.digest),
        Status::InvalidArgument(
            "manifest " + child.digest.ToString() + " is not in the repository; push it first",
            Status::Reason::kManifestBlobUnknown)));
  }
  return Status::Ok();
}

Result<PutManifestResult> RegistryImpl::PutManifest(const std::string& repo,
                                                    const std::string& reference,
                                                    const std::string& content_type,
                                                    const std::string& bytes) {
  return StoreManifest(repo, reference, content_type, bytes, /*check_references=*/true);
}

Result<PutManifestResult> RegistryImpl::PutMirroredManifest(const std::string& repo,
                                                            const std::string& reference,
                                                            const std::string& content_type,
                                                            const std::string& bytes) {
  return StoreManifest(repo, reference, content_type, bytes, /*check_references=*/false);
}

Status RegistryImpl::NoteManifestUse(const std::string& repo, const Digest& digest,
                                     std::chrono::seconds resolution) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  if (options_.read_only) return Status::Ok();
  const std::string revision = layout::RevisionLink(repo, digest);
  auto info = driver_.Stat(revision);
  if (!info.ok()) return info.status().IsNotFound() ? ManifestUnknown(digest.ToString()) : info.status();
  if (info->modified + resolution > std::chrono::system_clock::now()) return Status::Ok();
  // Rewriting the same link changes nothing a reader sees but its time.
  return WriteLink(revision, digest);
}

Result<PutManifestResult> RegistryImpl::StoreManifest(const std::string& repo,
                                                      const std::string& reference,
                                                      const std::string& content_type,
                                                      const std::string& bytes,
                                                      bool check_references) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  REGFS_RETURN_IF_ERROR(CheckWritable());
  // Creating something under a name that does not parse is the client's mistake (400).
  auto ref = Reference::Parse(reference);
  if (!ref.ok()) return ref.status();
  std::optional<Digest> by_digest;
  if (ref->is_digest()) by_digest = ref->digest();
  auto manifest = ParseManifest(bytes, content_type);
  if (!manifest.ok()) return manifest.status();

  // Stored and addressed by sha256, like registry:2; a PUT by another algorithm's digest
  // must still match its bytes.
  Digest digest = Digest::Sha256Of(bytes);
  if (by_digest) {
    DigestHasher check(by_digest->algorithm());
    check.Update(bytes.data(), bytes.size());
    if (!(check.Current() == *by_digest)) {
      return Status::InvalidArgument("the manifest's content does not match digest " + reference,
                                     Status::Reason::kDigestInvalid);
    }
    digest = *by_digest;
  }
  auto lock = LockRepository(repo);  // the references must still be there when it lands
  if (!lock.ok()) return lock.status();
  if (check_references) REGFS_RETURN_IF_ERROR(CheckReferences(repo, *manifest));

  const std::string blob = layout::BlobData(digest);
  auto existing = driver_.Stat(blob);
  if (!existing.ok() || existing->size != bytes.size()) {
    REGFS_RETURN_IF_ERROR(driver_.PutContent(blob, bytes, options_.durable_writes));
  }
  const std::string revision = layout::RevisionLink(repo, digest);
  const bool was_present = driver_.Stat(revision).ok();
  REGFS_RETURN_IF_ERROR(WriteLink(revision, digest));
  // The manifest's bytes (stored before, unreferenced) or what it refers to may be going to
  // a collector right now: then it must not be tagged. Checked before any tag is written.
  std::vector<Digest> claimed{digest};
  for (const Descriptor& d : manifest->blobs) {
    if (!d.has_urls) claimed.push_back(d.digest);
  }
  for (const Descriptor& d : manifest->children) claimed.push_back(d.digest);
  if (Status s = SweepFence(driver_).Claim(claimed); !s.ok()) {
    if (!was_present) {
      (void)Remove(revision.substr(0, revision.rfind('/')));
      // A reader may have seen (and cached) the revision in the moment it existed.
      if (cache_) {
        cache_->OnChange({.kind = ChangeEvent::Kind::kManifestDeleted,
                          .repository = repo,
                          .digest = digest});
      }
    }
    return s;
  }
  metadata_.Put(digest, MetadataOf(bytes, &*manifest));
  content_.PutManifestBytes(digest, bytes);
  Notify({.kind = ChangeEvent::Kind::kManifestPut,
          .repository = repo,
          .digest = digest,
          .media_type = manifest->media_type,
          .size = bytes.size()});
  if (!by_digest) REGFS_RETURN_IF_ERROR(WriteTag(repo, reference, digest));
  return PutManifestResult{digest, manifest->subject};
}

Status RegistryImpl::WriteTag(const std::string& repo, const std::string& tag,
                              const Digest& digest) {
  REGFS_RETURN_IF_ERROR(WriteLink(layout::TagIndexLink(repo, tag, digest), digest));
  REGFS_RETURN_IF_ERROR(WriteLink(layout::TagCurrentLink(repo, tag), digest));
  ChangeEvent event{
      .kind = ChangeEvent::Kind::kTagSet, .repository = repo, .digest = digest, .tag = tag};
  if (auto meta = metadata_.Get(digest)) {
    event.media_type = meta->media_type;
    event.size = meta->size;
  }
  Notify(event);
  return Status::Ok();
}

Status RegistryImpl::SetTag(const std::string& repo, const std::string& tag, const Digest& digest) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  REGFS_RETURN_IF_ERROR(ValidateTag(tag));
  REGFS_RETURN_IF_ERROR(CheckWritable());
  auto lock = LockRepository(repo);
  if (!lock.ok()) return lock.status();
  REGFS_RETURN_IF_ERROR(
      Require(layout::RevisionLink(repo, digest), ManifestUnknown(digest.ToString())));
  return WriteTag(repo, tag, digest);
}

Status RegistryImpl::DeleteManifest(const std::string& repo, const std::string& reference) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  auto ref = Reference::Parse(reference);
  REGFS_RETURN_IF_ERROR(LookupStatusOf(ref, reference, ManifestUnknown(reference)));
  REGFS_RETURN_IF_ERROR(CheckDeletable());
  auto lock = LockRepository(repo);
  if (!lock.ok()) return lock.status();
  if (!ref->is_digest()) {
    auto current = ReadLink(layout::TagCurrentLink(repo, ref->tag()));
    if (!current.ok()) {
      return IsAbsent(current.status()) ? ManifestUnknown(reference) : current.status();
    }
    Status s = Remove(layout::TagDir(repo, ref->tag()));
    if (!s.ok() && !s.IsNotFound()) return s;
    Notify({.kind = ChangeEvent::Kind::kTagDeleted,
            .repository = repo,
            .digest = *current,
            .tag = ref->tag()});
    return Status::Ok();
  }
  const Digest& digest = ref->digest();
  const std::string revision = layout::RevisionLink(repo, digest);
  REGFS_RETURN_IF_ERROR(Require(revision, ManifestUnknown(reference)));
  // Tags first: no tag may ever point at a manifest that is gone.
  auto tags = driver_.List(layout::TagsDir(repo));
  if (tags.ok()) {
    for (const std::string& tag : *tags) {
      auto current = ReadLink(layout::TagCurrentLink(repo, tag));
      if (current.ok() && *current == digest) {
        Status s = Remove(layout::TagDir(repo, tag));
        if (!s.ok() && !s.IsNotFound()) return s;
        Notify({.kind = ChangeEvent::Kind::kTagDeleted,
                .repository = repo,
                .digest = digest,
                .tag = tag});
      }
    }
  }
  Status s = Remove(revision.substr(0, revision.rfind('/')));
  if (!s.ok() && !s.IsNotFound()) return s;
  Notify({.kind = ChangeEvent::Kind::kManifestDeleted, .repository = repo, .digest = digest});
  return Status::Ok();
}

}  // namespace regfs
