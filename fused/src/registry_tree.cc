#include "registry_tree.h"

#include <algorithm>

#include "regfs/core/names.h"

namespace regfs::fused {

namespace {

constexpr const char* kTagsDir = "_tags";
constexpr const char* kManifestsDir = "_manifests";
constexpr const char* kBlobsDir = "_blobs";
constexpr const char* kUploadsDir = "_uploads";
constexpr const char* kTagTargetPrefix = "../_manifests/";

std::string JoinPath(const std::string& folder, const std::string& name) {
  return folder.empty() ? name : folder + "/" + name;
}

Status NotADirectory() { return Status::InvalidArgument("not a directory"); }
Status NotPermitted(const std::string& what) {
  return Status::FailedPrecondition(what, Status::Reason::kUnsupported);
}

// The digest a tag symlink's target names: "../_manifests/<digest>" or "<digest>".
Result<Digest> DigestOfTarget(const std::string& target) {
  std::string text = target;
  if (text.starts_with(kTagTargetPrefix)) text = text.substr(std::string(kTagTargetPrefix).size());
  auto digest = Digest::Parse(text);
  if (!digest.ok()) {
    return Status::InvalidArgument("a tag must point at ../_manifests/<digest>");
  }
  return digest;
}

}  // namespace

RegistryTree::RegistryTree(Registry& registry, bool writable)
    : registry_(registry), writable_(writable) {
  nodes_[kRootIno] = Node{Kind::kFolder, "", "", 1};
}

Ino RegistryTree::InoFor(Kind kind, const std::string& path, const std::string& name) {
  if (kind == Kind::kFolder && path.empty()) return kRootIno;
  // Content-addressed files are one inode per digest, whatever the repository.
  std::string key = std::to_string(static_cast<int>(kind)) + '\0';
  if (kind != Kind::kManifest && kind != Kind::kBlob) key += path;
  key += '\0' + name;
  // FNV-1a: stable across processes and versions (std::hash is not promised to be).
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h <= kRootIno ? h + 2 : h;
}

Ino RegistryTree::Remember(const Node& node) {
  Ino ino = InoFor(node.kind, node.path, node.name);
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = nodes_.try_emplace(ino, node);
  if (!inserted && (it->second.kind != node.kind || it->second.name != node.name)) {
    it->second = node;  // a hash collision or a recycled identity: the newest wins
  } else if (!inserted && it->second.kind != Kind::kManifest && it->second.kind != Kind::kBlob) {
    it->second.path = node.path;
  }
  it->second.lookups++;
  return ino;
}

void RegistryTree::Forget(Ino ino, uint64_t count) {
  if (ino == kRootIno) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  if (it->second.lookups <= count) {
    nodes_.erase(it);
  } else {
    it->second.lookups -= count;
  }
}

bool RegistryTree::Known(Ino ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  return nodes_.contains(ino);
}

std::vector<RegistryTree::KnownNode> RegistryTree::KnownNodes() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<KnownNode> out;
  out.reserve(nodes_.size());
  for (const auto& [ino, node] : nodes_) out.push_back({ino, node.kind, node.path});
  return out;
}

size_t RegistryTree::live_nodes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return nodes_.size() - 1;  // the root is always there
}

Result<RegistryTree::Node> RegistryTree::NodeOf(Ino ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) return Status::NotFound("stale inode");
  return it->second;
}

mode_t RegistryTree::FileMode(bool deletable) const {
  return S_IFREG | (writable_ && deletable ? 0644 : 0444);
}

Result<NodeAttr> RegistryTree::AttrOf(const Node& node, Ino ino) {
  NodeAttr a;
  a.ino = ino;
  switch (node.kind) {
    case Kind::kFolder: {
      auto folder = registry_.StatFolder(node.path);
      if (!folder.ok()) return folder.status();
      a.mode = S_IFDIR | 0755;
      a.nlink = 1;  // "unknown", as on btrfs: counting sub-folders would cost a listing
      a.size = 4096;
      a.mtime = folder->modified;
      return a;
    }
    case Kind::kTags:
    case Kind::kManifests:
    case Kind::kBlobs:
    case Kind::kUploads: {
      auto folder = registry_.StatFolder(node.path);
      if (!folder.ok()) return folder.status();
      if (!folder->is_repository) return Status::NotFound(node.path + " is not a repository");
      a.mode = S_IFDIR | 0755;
      a.nlink = 1;
      a.size = 4096;
      a.mtime = folder->modified;  // stable: changes only when the repository does
      return a;
    }
    case Kind::kTag: {
      auto tag = registry_.StatTag(node.path, node.name);
      if (!tag.ok()) return tag.status();
      a.mode = S_IFLNK | 0777;
      a.size = std::string(kTagTargetPrefix).size() + tag->digest.ToString().size();
      a.mtime = tag->modified;
      return a;
    }
    case Kind::kManifest:
    case Kind::kBlob: {
      auto digest = Digest::Parse(node.name);
      if (!digest.ok()) return digest.status();
      auto content = registry_.StatContent(*digest);
      if (!content.ok()) return content.status();
      a.mode = FileMode(registry_.delete_enabled());
      a.size = content->size;
      a.mtime = content->stored_at;
      a.immutable = true;
      return a;
    }
    case Kind::kUpload: {
      auto upload = registry_.StatUpload(node.path, node.name);
      if (!upload.ok()) return upload.status();
      a.mode = FileMode(true);
      a.size = upload->size;
      a.mtime = upload->last_activity;
      a.transient = true;
      return a;
    }
  }
  return Status::NotFound("unknown node");
}

Result<RegistryTree::Node> RegistryTree::Child(const Node& parent, const std::string& name,
                                               bool verify) {
  switch (parent.kind) {
    case Kind::kFolder: {
      if (name == kTagsDir || name == kManifestsDir || name == kBlobsDir || name == kUploadsDir) {
        if (parent.path.empty()) return Status::NotFound(name);
        Kind kind = name == kTagsDir        ? Kind::kTags
                    : name == kManifestsDir ? Kind::kManifests
                    : name == kBlobsDir     ? Kind::kBlobs
                                            : Kind::kUploads;
        return Node{kind, parent.path, ""};
      }
      std::string path = JoinPath(parent.path, name);
      if (!ValidateRepositoryName(path).ok()) return Status::NotFound(name);
      return Node{Kind::kFolder, path, ""};
    }
    case Kind::kTags:
      if (!ValidateTag(name).ok()) return Status::NotFound(name);
      return Node{Kind::kTag, parent.path, name};
    case Kind::kManifests: {
      auto digest = Digest::Parse(name);
      if (!digest.ok()) return Status::NotFound(name);
      if (verify) {
        auto info = registry_.StatManifest(parent.path, name);
        if (!info.ok()) return info.status();
      }
      return Node{Kind::kManifest, parent.path, name};
    }
    case Kind::kBlobs: {
      auto digest = Digest::Parse(name);
      if (!digest.ok()) return Status::NotFound(name);
      if (verify) {
        auto info = registry_.StatBlob(parent.path, *digest);
        if (!info.ok()) return info.status();
      }
      return Node{Kind::kBlob, parent.path, name};
    }
    case Kind::kUploads:
      return Node{Kind::kUpload, parent.path, name};
    default:
      return NotADirectory();
  }
}

Result<NodeAttr> RegistryTree::Lookup(Ino parent, const std::string& name) {
  auto dir = NodeOf(parent);
  if (!dir.ok()) return dir.status();
  auto child = Child(*dir, name);
  if (!child.ok()) return child.status();
  auto attr = AttrOf(*child, InoFor(child->kind, child->path, child->name));
  if (!attr.ok()) return attr.status();
  Remember(*child);
  return attr;
}

Result<NodeAttr> RegistryTree::LookupListed(Ino parent, const DirEntry& entry) {
  auto dir = NodeOf(parent);
  if (!dir.ok()) return dir.status();
  auto child = Child(*dir, entry.name, /*verify=*/false);
  if (!child.ok()) return child.status();
  auto attr = AttrOf(*child, entry.ino);
  if (!attr.ok()) return attr.status();
  Remember(*child);
  return attr;
}

Result<NodeAttr> RegistryTree::GetAttr(Ino ino) {
  auto node = NodeOf(ino);
  if (!node.ok()) return node.status();
  return AttrOf(*node, ino);
}

Result<std::vector<DirEntry>> RegistryTree::ReadDir(Ino ino) {
  auto node = NodeOf(ino);
  if (!node.ok()) return node.status();
  return ListChildren(*node, ino);
}

Result<std::vector<DirEntry>> RegistryTree::ListChildren(const Node& dir, Ino ino) {
  std::vector<DirEntry> out;
  out.push_back({".", ino, S_IFDIR});
  out.push_back({"..", ino, S_IFDIR});  // the kernel fills in the real parent
  const std::string& repo = dir.path;
  switch (dir.kind) {
    case Kind::kFolder: {
      auto folder = registry_.ListFolder(dir.path);
      if (!folder.ok()) return folder.status();
      if (folder->is_repository && !dir.path.empty()) {
        for (auto [name, kind] : {std::pair{kTagsDir, Kind::kTags},
                                  {kManifestsDir, Kind::kManifests},
                                  {kBlobsDir, Kind::kBlobs},
                                  {kUploadsDir, Kind::kUploads}}) {
          out.push_back({name, InoFor(kind, repo, ""), S_IFDIR});
        }
      }
      for (const std::string& child : folder->children) {
        out.push_back({child, InoFor(Kind::kFolder, JoinPath(dir.path, child), ""), S_IFDIR});
      }
      return out;
    }
    case Kind::kTags: {
      auto tags = registry_.ListTags(repo, "", static_cast<size_t>(-1));
      if (!tags.ok()) return tags.status();
      for (const std::string& t : tags->entries)
        out.push_back({t, InoFor(Kind::kTag, repo, t), S_IFLNK});
      return out;
    }
    case Kind::kManifests:
    case Kind::kBlobs: {
      bool manifests = dir.kind == Kind::kManifests;
      auto digests =
          manifests ? registry_.ListManifestDigests(repo) : registry_.ListBlobDigests(repo);
      if (!digests.ok()) return digests.status();
      for (const Digest& d : *digests) {
        std::string name = d.ToString();
        out.push_back(
            {name, InoFor(manifests ? Kind::kManifest : Kind::kBlob, repo, name), S_IFREG});
      }
      return out;
    }
    case Kind::kUploads: {
      auto uploads = registry_.ListUploads(repo);
      if (!uploads.ok()) return uploads.status();
      for (const UploadInfo& u : *uploads)
        out.push_back({u.id, InoFor(Kind::kUpload, repo, u.id), S_IFREG});
      return out;
    }
    default:
      return NotADirectory();
  }
}

Result<std::string> RegistryTree::ReadLink(Ino ino) {
  auto node = NodeOf(ino);
  if (!node.ok()) return node.status();
  if (node->kind != Kind::kTag) return Status::InvalidArgument("not a symlink");
  auto tag = registry_.StatTag(node->path, node->name);
  if (!tag.ok()) return tag.status();
  return kTagTargetPrefix + tag->digest.ToString();
}

Result<std::unique_ptr<FileReader>> RegistryTree::Open(Ino ino, uint64_t offset) {
  auto node = NodeOf(ino);
  if (!node.ok()) return node.status();
  if (node->kind == Kind::kUpload) return registry_.OpenUpload(node->path, node->name, offset);
  if (node->kind != Kind::kManifest && node->kind != Kind::kBlob) {
    return Status::InvalidArgument("not a regular file");
  }
  auto digest = Digest::Parse(node->name);
  if (!digest.ok()) return digest.status();
  return registry_.OpenContent(*digest, offset);
}

Status RegistryTree::Unlink(Ino parent, const std::string& name) {
  if (!writable_) return NotPermitted("the mount is read-only");
  auto dir = NodeOf(parent);
  if (!dir.ok()) return dir.status();
  const std::string& repo = dir->path;
  switch (dir->kind) {
    case Kind::kTags:
      if (!ValidateTag(name).ok()) return Status::NotFound(name);
      return registry_.DeleteManifest(repo, name);  // a tag reference untags only
    case Kind::kManifests:
      if (!Digest::Parse(name).ok()) return Status::NotFound(name);
      return registry_.DeleteManifest(repo, name);
    case Kind::kBlobs: {
      auto digest = Digest::Parse(name);
      if (!digest.ok()) return Status::NotFound(name);
      return registry_.DeleteBlob(repo, *digest);
    }
    case Kind::kUploads:
      return registry_.CancelUpload(repo, name);
    case Kind::kFolder:
      return NotPermitted("only the registry's own files can be removed");
    default:
      return NotADirectory();
  }
}

Status RegistryTree::Rmdir(Ino parent, const std::string& name) {
  if (!writable_) return NotPermitted("the mount is read-only");
  auto dir = NodeOf(parent);
  if (!dir.ok()) return dir.status();
  auto child = Child(*dir, name);
  if (!child.ok()) return child.status();
  auto entries = ListChildren(*child, InoFor(child->kind, child->path, child->name));
  if (!entries.ok()) return entries.status();
  if (child->kind != Kind::kFolder) {
    // _tags, _manifests, ... exist as long as the repository does; removing an empty one is
    // a step of `rm -r <repository>` and succeeds without doing anything.
    if (entries->size() > 2) return Status::AlreadyExists("directory not empty");
    return Status::Ok();
  }
  auto folder = registry_.ListFolder(child->path);
  if (!folder.ok()) return folder.status();
  if (!folder->children.empty()) return Status::AlreadyExists("directory not empty");
  if (folder->is_repository) {
    // Only an emptied repository goes: `rm -r` removes its contents first.
    auto tags = registry_.ListTags(child->path, "", 1);
    auto manifests = registry_.ListManifestDigests(child->path);
    auto blobs = registry_.ListBlobDigests(child->path);
    auto uploads = registry_.ListUploads(child->path);
    bool empty = (!tags.ok() || tags->entries.empty()) && (!manifests.ok() || manifests->empty()) &&
                 (!blobs.ok() || blobs->empty()) && (!uploads.ok() || uploads->empty());
    if (!empty) return Status::AlreadyExists("directory not empty");
  }
  return registry_.DeleteRepository(child->path);
}

Result<NodeAttr> RegistryTree::Symlink(const std::string& target, Ino parent,
                                       const std::string& name) {
  if (!writable_) return NotPermitted("the mount is read-only");
  auto dir = NodeOf(parent);
  if (!dir.ok()) return dir.status();
  if (dir->kind != Kind::kTags) return NotPermitted("symlinks can only be tags, in _tags");
  REGFS_RETURN_IF_ERROR(ValidateTag(name));
  auto digest = DigestOfTarget(target);
  if (!digest.ok()) return digest.status();
  REGFS_RETURN_IF_ERROR(registry_.SetTag(dir->path, name, *digest));
  Node node{Kind::kTag, dir->path, name};
  auto attr = AttrOf(node, InoFor(node.kind, node.path, node.name));
  if (!attr.ok()) return attr.status();
  Remember(node);
  return attr;
}

Status RegistryTree::Rename(Ino parent, const std::string& name, Ino new_parent,
                            const std::string& new_name, bool no_replace) {
  if (!writable_) return NotPermitted("the mount is read-only");
  auto from = NodeOf(parent);
  auto to = NodeOf(new_parent);
  if (!from.ok()) return from.status();
  if (!to.ok()) return to.status();
  if (from->kind != Kind::kTags || to->kind != Kind::kTags || from->path != to->path) {
    return NotPermitted("only tags can be renamed, within their repository");
  }
  if (!ValidateTag(name).ok()) return Status::NotFound(name);
  REGFS_RETURN_IF_ERROR(ValidateTag(new_name));
  if (no_replace && registry_.StatTag(to->path, new_name).ok()) {
    return Status::AlreadyExists(new_name + " exists");
  }
  REGFS_RETURN_IF_ERROR(registry_.RenameTag(from->path, name, new_name));
  // The kernel keeps the renamed inode under its new name: every node that stood for the
  // old name (several, after ln -sfn's temp-name dance) now stands for the new one.
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [ino, node] : nodes_) {
    if (node.kind == Kind::kTag && node.path == from->path && node.name == name)
      node.name = new_name;
  }
  return Status::Ok();
}

}  // namespace regfs::fused
