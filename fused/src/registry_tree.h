// RegistryTree: the registry as a file tree, independent of the kernel interface.
//
//   <namespace>/.../<repository>/
//       _tags/<tag>              symlink -> ../_manifests/<digest>
//       _manifests/<digest>      the manifest's bytes
//       _blobs/<digest>          the bytes of a blob linked to the repository
//       _uploads/<id>            an upload in progress (its bytes so far)
//
// Every node has a stable inode number derived from what it is (so `ls -i`, `find` and
// rsync see consistent identities), and content-addressed files have one inode per digest
// across all repositories: a layer shared by 300 repositories is one inode with one copy in
// the page cache. Changes through the tree are the registry's own operations (untag, tag,
// delete), with the same validation and effects as their HTTP twins.
//
// Nothing mutable is cached here: every lookup reads the registry. The kernel caches names,
// attributes and listings; ChangeNotifier tells it what to forget when the registry changes
// (see change_notifier.h), with the kernel's timeouts as a safety net.
//
// Thread-safe: the node table is guarded by a mutex; registry calls run outside it.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "regfs/core/registry.h"

namespace regfs::fused {

using Ino = uint64_t;
inline constexpr Ino kRootIno = 1;

struct NodeAttr {
  Ino ino = 0;
  mode_t mode = 0;  // file type and permission bits
  uint64_t size = 0;
  uint32_t nlink = 1;
  std::chrono::system_clock::time_point mtime;
  // Content-addressed: the attributes can never change, so the kernel may cache them long.
  bool immutable = false;
  // An upload: its size changes with every chunk received, and no change event says so,
  // so the kernel may cache it only briefly. (Uploads starting and ending are events.)
  bool transient = false;
};

struct DirEntry {
  std::string name;
  Ino ino = 0;
  mode_t type = 0;  // S_IFDIR, S_IFREG or S_IFLNK
};

// Nodes have an identity (kind, repository or folder path, name) from which their inode
// number follows; see RegistryTree::InoFor.

class RegistryTree {
 public:
  // `writable` false makes every change EROFS-like (a read-only mount).
  RegistryTree(Registry& registry, bool writable);

  // Resolves `name` in directory `parent`. On success the node's lookup count goes up by one
  // (the kernel now holds a reference, released by Forget).
  Result<NodeAttr> Lookup(Ino parent, const std::string& name);
  // Releases `count` kernel references; the node is dropped at zero.
  void Forget(Ino ino, uint64_t count);
  Result<NodeAttr> GetAttr(Ino ino);
  // Entries of a directory, "." and ".." included. Counts no lookups.
  Result<std::vector<DirEntry>> ReadDir(Ino ino);
  // Lookup of a name that ReadDir of `parent` just listed (for readdirplus): the listing
  // already proved the entry belongs there, so only its attributes are read. Counts one
  // lookup on success, like Lookup.
  Result<NodeAttr> LookupListed(Ino parent, const DirEntry& entry);
  Result<std::string> ReadLink(Ino ino);
  // A reader positioned at `offset` for a regular file.
  Result<std::unique_ptr<FileReader>> Open(Ino ino, uint64_t offset);

  Status Unlink(Ino parent, const std::string& name);
  Status Rmdir(Ino parent, const std::string& name);
  // Creates or moves a tag; counts a lookup on success like Lookup.
  Result<NodeAttr> Symlink(const std::string& target, Ino parent, const std::string& name);
  // Renames a tag within one _tags folder. `no_replace`: fail with EEXIST-like status when
  // the new name exists.
  Status Rename(Ino parent, const std::string& name, Ino new_parent, const std::string& new_name,
                bool no_replace);

  // Number of nodes the kernel holds references to (for tests and leak checks).
  size_t live_nodes() const;

  enum class Kind { kFolder, kTags, kManifests, kBlobs, kUploads, kTag, kManifest, kBlob, kUpload };

  // ---- for cache invalidation (ChangeNotifier); each reads the node table only.
  // The kernel holds a reference to the node (it has looked it up and not forgotten it).
  bool Known(Ino ino) const;
  struct KnownNode {
    Ino ino;
    Kind kind;
    std::string path;
  };
  // Every node the kernel holds a reference to, the root included.
  std::vector<KnownNode> KnownNodes() const;

  // Exposed for tests: the inode number a node of this identity gets.
  static Ino InoFor(Kind kind, const std::string& path, const std::string& name);

 private:
  struct Node {
    Kind kind;
    std::string path;  // folder path, or the repository of a special folder / tag / upload
    std::string name;  // tag, digest or upload id
    uint64_t lookups = 0;
  };

  Result<Node> NodeOf(Ino ino) const;
  Result<NodeAttr> AttrOf(const Node& node, Ino ino);
  // The node `name` names in `parent`. With `verify`, checks that it exists in the registry
  // (AttrOf then reads only its attributes); without, trusts a listing.
  Result<Node> Child(const Node& parent, const std::string& name, bool verify = true);
  Result<std::vector<DirEntry>> ListChildren(const Node& dir, Ino ino);
  Ino Remember(const Node& node);  // adds one lookup
  mode_t FileMode(bool deletable) const;

  Registry& registry_;
  const bool writable_;
  mutable std::mutex mu_;
  std::unordered_map<Ino, Node> nodes_;  // GUARDED_BY(mu_)
};

}  // namespace regfs::fused
