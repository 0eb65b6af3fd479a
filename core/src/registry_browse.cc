// Browsing the registry as a tree (folders, tags, manifests, blobs by digest) and removing a
// whole repository: what regfs-fused needs beyond the Distribution API's operations.
#include <algorithm>

#include "layout.h"
#include "regfs/core/names.h"
#include "registry_impl.h"

namespace regfs {

Result<RepositoryFolder> RegistryImpl::StatFolder(const std::string& path) {
  if (!path.empty()) REGFS_RETURN_IF_ERROR(ValidateRepositoryName(path));
  const std::string dir = path.empty() ? layout::RepositoriesRoot() : layout::Repository(path);
  auto info = driver_.Stat(dir);
  if (!info.ok()) {
    // An empty registry still has a top folder.
    if (path.empty() && info.status().IsNotFound()) return RepositoryFolder{};
    return info.status();
  }
  if (!info->is_directory) return Status::NotFound(path + " is not a folder");
  RepositoryFolder folder;
  folder.modified = info->modified;
  // registry:2 lists a repository once it has _manifests; one whose manifests were all
  // deleted (or that has only blobs or uploads so far) is still one to browse.
  if (!path.empty()) {
    auto is_repository = RepositoryExists(path);
    if (!is_repository.ok()) return is_repository.status();
    folder.is_repository = *is_repository;
  }
  return folder;
}

Result<RepositoryFolder> RegistryImpl::ListFolder(const std::string& path) {
  auto folder = StatFolder(path);
  if (!folder.ok()) return folder;
  const std::string dir = path.empty() ? layout::RepositoriesRoot() : layout::Repository(path);
  auto names = driver_.List(dir);
  if (!names.ok())
    return names.status().IsNotFound() ? folder : Result<RepositoryFolder>(names.status());
  for (const std::string& name : *names) {
    if (name.empty() || name[0] == '_' || name[0] == '.') continue;
    // Only names that can be repository components; anything else is not ours to show.
    std::string child = path.empty() ? name : path + "/" + name;
    if (!ValidateRepositoryName(child).ok()) continue;
    auto child_info = driver_.Stat(dir + "/" + name);
    if (child_info.ok() && child_info->is_directory) folder->children.push_back(name);
  }
  std::sort(folder->children.begin(), folder->children.end());
  return folder;
}

Result<TagInfo> RegistryImpl::StatTag(const std::string& repo, const std::string& tag) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  REGFS_RETURN_IF_ERROR(ValidateTag(tag));
  const std::string link = layout::TagCurrentLink(repo, tag);
  auto digest = ReadLink(link);
  if (!digest.ok()) {
    if (!IsAbsent(digest.status())) return digest.status();
    return Status::NotFound("tag " + tag + " is not known", Status::Reason::kManifestUnknown);
  }
  auto info = driver_.Stat(link);
  if (!info.ok()) return info.status();
  return TagInfo{tag, *digest, info->modified};
}

Result<std::vector<Digest>> RegistryImpl::ListLinkedDigests(const std::string& dir) {
  std::vector<Digest> out;
  for (const char* algorithm : {"sha256", "sha512"}) {
    auto hexes = driver_.List(dir + "/" + algorithm);
    if (!hexes.ok()) {
      if (hexes.status().IsNotFound()) continue;
      return hexes.status();
    }
    for (const std::string& hex : *hexes) {
      auto digest = Digest::Parse(std::string(algorithm) + ":" + hex);
      // A folder without its link is a write cut off by a crash (or a delete in progress).
      if (digest.ok() && Exists(dir + "/" + algorithm + "/" + hex + "/link")) {
        out.push_back(*digest);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<Digest>> RegistryImpl::ListManifestDigests(const std::string& repo) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  return ListLinkedDigests(layout::ManifestsDir(repo) + "/revisions");
}

Result<std::vector<Digest>> RegistryImpl::ListBlobDigests(const std::string& repo) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  return ListLinkedDigests(layout::LayersDir(repo));
}

Result<ContentInfo> RegistryImpl::StatContent(const Digest& digest) {
  auto info = driver_.Stat(layout::BlobData(digest));
  if (!info.ok()) {
    if (info.status().IsNotFound()) {
      return Status::NotFound(digest.ToString() + " is not stored", Status::Reason::kBlobUnknown);
    }
    return info.status();
  }
  return ContentInfo{digest, info->size, info->modified};
}

Result<std::unique_ptr<FileReader>> RegistryImpl::OpenContent(const Digest& digest,
                                                              uint64_t offset) {
  auto reader = driver_.OpenReader(layout::BlobData(digest), offset);
  if (!reader.ok() && reader.status().IsNotFound()) {
    return Status::NotFound(digest.ToString() + " is not stored", Status::Reason::kBlobUnknown);
  }
  return reader;
}

Status RegistryImpl::RenameTag(const std::string& repo, const std::string& from,
                               const std::string& to) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  REGFS_RETURN_IF_ERROR(ValidateTag(from));
  REGFS_RETURN_IF_ERROR(ValidateTag(to));
  // A rename removes the old tag: as much a delete as DELETE /manifests/<tag> is.
  REGFS_RETURN_IF_ERROR(CheckDeletable());
  auto lock = LockRepository(repo);
  if (!lock.ok()) return lock.status();
  auto source = StatTag(repo, from);
  if (!source.ok()) return source.status();
  if (from == to) return Status::Ok();
  // The new name first: at every moment the manifest stays reachable by some tag.
  REGFS_RETURN_IF_ERROR(WriteTag(repo, to, source->digest));
  Status s = Remove(layout::TagDir(repo, from));
  if (!s.ok() && !s.IsNotFound()) return s;
  Notify({.kind = ChangeEvent::Kind::kTagDeleted,
          .repository = repo,
          .digest = source->digest,
          .tag = from});
  return Status::Ok();
}

Status RegistryImpl::DeleteRepository(const std::string& repo) {
  REGFS_RETURN_IF_ERROR(ValidateRepositoryName(repo));
  REGFS_RETURN_IF_ERROR(CheckDeletable());
  auto lock = LockRepository(repo);
  if (!lock.ok()) return lock.status();
  auto exists = RepositoryExists(repo);
  if (!exists.ok()) return exists.status();
  if (!*exists) {
    auto rest = driver_.List(layout::Repository(repo));
    if (rest.ok() && rest->empty()) {
      // An empty namespace folder: its removal changes the listing of its parent.
      REGFS_RETURN_IF_ERROR(Remove(layout::Repository(repo)));
      Notify({.kind = ChangeEvent::Kind::kRepositoryDeleted, .repository = repo});
      return Status::Ok();
    }
    return Status::NotFound("repository " + repo + " is not known", Status::Reason::kNameUnknown);
  }
  // Tags first, then manifests: at no moment does a tag point at a removed manifest.
  for (const std::string& part : {layout::TagsDir(repo), layout::ManifestsDir(repo),
                                  layout::LayersDir(repo), layout::UploadsDir(repo)}) {
    Status s = Remove(part);
    if (!s.ok() && !s.IsNotFound()) return s;
  }
  // Keep the folder when repositories are nested below it.
  auto rest = driver_.List(layout::Repository(repo));
  if (rest.ok() && rest->empty()) (void)Remove(layout::Repository(repo));
  Notify({.kind = ChangeEvent::Kind::kRepositoryDeleted, .repository = repo});
  return Status::Ok();
}

}  // namespace regfs
