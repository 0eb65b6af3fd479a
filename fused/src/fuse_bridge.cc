#include "fuse_bridge.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "errno_map.h"

namespace regfs::fused {

namespace {

Bridge& BridgeOf(fuse_req_t req) { return *static_cast<Bridge*>(fuse_req_userdata(req)); }

// An open file: the reader stays open for the file's lifetime (its fd feeds splice reads).
struct OpenFile : OpenHandles::Handle {
  OpenFile(std::unique_ptr<FileReader> r, Ino i) : reader(std::move(r)), ino(i) {}
  std::unique_ptr<FileReader> reader;
  Ino ino;
};

timespec ToTimespec(std::chrono::system_clock::time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

struct stat ToStat(const NodeAttr& a) {
  struct stat st {};
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blksize = 4096;
  st.st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st.st_mtim = st.st_ctim = st.st_atim = ToTimespec(a.mtime);
  return st;
}

double Timeout(fuse_req_t req, const NodeAttr& a) {
  const BridgeOptions& o = BridgeOf(req).options;
  if (a.transient) return o.transient_timeout_seconds;
  return a.immutable ? o.immutable_timeout_seconds : o.mutable_timeout_seconds;
}

// How long the kernel may resolve a name without asking. Names that another process removes
// (tags, uploads, repository folders and their special folders) are not cached at all: a
// listing the kernel reads afresh (its cache was dropped by an earlier change, or it was
// never listed) reflects storage at once, while a cached name would still resolve until the
// change feed told this mount, and `ls` and `stat` would disagree. Asking costs one lookup;
// attributes and listings stay cached. A content file's name can vanish too (a manifest
// DELETE), but its bytes never change: it keeps the longer timeout.
double EntryTimeout(fuse_req_t req, const NodeAttr& a) {
  const BridgeOptions& o = BridgeOf(req).options;
  return a.immutable ? o.mutable_timeout_seconds : 0;
}

void ReplyEntry(fuse_req_t req, const NodeAttr& a) {
  fuse_entry_param e{};
  e.ino = a.ino;
  e.attr = ToStat(a);
  e.entry_timeout = EntryTimeout(req, a);
  e.attr_timeout = Timeout(req, a);
  if (fuse_reply_entry(req, &e) != 0) {
    // The kernel did not take the reference (the request was interrupted): undo it.
    BridgeOf(req).tree.Forget(a.ino, 1);
  }
}

void ReplyStatus(fuse_req_t req, const Status& s) { fuse_reply_err(req, ErrnoFor(s)); }

void OnInit(void* userdata, fuse_conn_info* conn) {
  // Tag targets change only with an event that invalidates the tag's inode.
  if (static_cast<Bridge*>(userdata)->options.cache_listings &&
      (conn->capable & FUSE_CAP_CACHE_SYMLINKS)) {
    conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  }
  // Reads of blobs splice straight from the blob file's page cache into the kernel.
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_MOVE) conn->want |= FUSE_CAP_SPLICE_MOVE;
  // Large requests: libfuse derives the kernel's max_pages from max_write, which lets reads
  // of big blobs travel in 1 MiB pieces instead of 128 KiB ones.
  conn->max_write = 1 << 20;
  conn->max_readahead = 1 << 20;
  // Listings carry attributes (readdirplus), so `ls -l` and `find` need no lookup per entry.
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  // With a change feed the kernel may open directories without asking (saving two round
  // trips per directory of an `ls -lR`) and caches their listings until invalidated.
  auto* bridge = static_cast<Bridge*>(userdata);
  if (bridge->options.cache_listings && (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT)) {
    conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
    bridge->kernel_opens_directories = true;
  }
}

void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto attr = BridgeOf(req).tree.Lookup(parent, name);
  if (!attr.ok()) return ReplyStatus(req, attr.status());
  ReplyEntry(req, *attr);
}

void OnForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  BridgeOf(req).tree.Forget(ino, nlookup);
  fuse_reply_none(req);
}

void OnForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) BridgeOf(req).tree.Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void OnGetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  auto attr = BridgeOf(req).tree.GetAttr(ino);
  if (!attr.ok()) return ReplyStatus(req, attr.status());
  struct stat st = ToStat(*attr);
  fuse_reply_attr(req, &st, Timeout(req, *attr));
}

void OnSetAttr(fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) {
  fuse_reply_err(req, EPERM);  // chmod, chown, truncate, utimes: the registry decides these
}

void OnReadLink(fuse_req_t req, fuse_ino_t ino) {
  auto target = BridgeOf(req).tree.ReadLink(ino);
  if (!target.ok()) return ReplyStatus(req, target.status());
  fuse_reply_readlink(req, target->c_str());
}

// A directory handle holds one listing for all of its readdir calls, so their offsets stay
// stable. (The kernel serialises readdir calls on one handle.)
struct DirHandle : OpenHandles::Handle {
  ListingSnapshots::Listing entries;  // null until the first readdir
};

void OnOpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Bridge& bridge = BridgeOf(req);
  if (bridge.kernel_opens_directories) {
    // ENOSYS here means "open it yourself from now on" (FUSE_CAP_NO_OPENDIR_SUPPORT).
    fuse_reply_err(req, ENOSYS);
    return;
  }
  auto handle = std::make_unique<DirHandle>();
  if (bridge.options.cache_listings) {
    // The kernel keeps the listing until told it changed, and then asks with readdir: list
    // only then, so an opendir served from the cache costs nothing.
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
  } else {
    auto entries = bridge.tree.ReadDir(ino);
    if (!entries.ok()) {
      ReplyStatus(req, entries.status());
      return;
    }
    handle->entries = std::make_shared<const std::vector<DirEntry>>(std::move(*entries));
  }
  fi->fh = bridge.handles.Add(std::move(handle));
  if (fuse_reply_open(req, fi) != 0) bridge.handles.Release(fi->fh);
}

// The listing a readdir at `offset` continues: the handle's (taken now if opendir left it
// for later), or without a handle the directory's snapshot. Replies the error itself.
ListingSnapshots::Listing ListingFor(fuse_req_t req, fuse_ino_t ino, off_t offset,
                                     fuse_file_info* fi) {
  RegistryTree& tree = BridgeOf(req).tree;
  auto list = [&] { return tree.ReadDir(ino); };
  if (fi->fh == 0) {
    auto listing = BridgeOf(req).snapshots.For(ino, offset, list);
    if (!listing.ok()) {
      ReplyStatus(req, listing.status());
      return nullptr;
    }
    return *listing;
  }
  auto* handle = reinterpret_cast<DirHandle*>(fi->fh);
  if (!handle->entries) {
    auto entries = list();
    if (!entries.ok()) {
      ReplyStatus(req, entries.status());
      return nullptr;
    }
    handle->entries = std::make_shared<const std::vector<DirEntry>>(std::move(*entries));
  }
  return handle->entries;
}

// A readdir at or past the end (the reader's last call, answered with nothing): a
// handle-less listing is no longer needed.
void FinishListing(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, off_t offset,
                   size_t total) {
  if (fi->fh == 0 && static_cast<size_t>(offset) >= total) BridgeOf(req).snapshots.Done(ino);
}

void OnReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  auto listing = ListingFor(req, ino, offset, fi);
  if (listing == nullptr) return;
  const std::vector<DirEntry>& entries = *listing;
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(offset); i < entries.size(); ++i) {
    const DirEntry& e = entries[i];
    struct stat st {};
    st.st_ino = e.ino;
    st.st_mode = e.type;
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &st,
                                    static_cast<off_t>(i + 1));
    if (need > size - used) break;
    used += need;
  }
  FinishListing(req, ino, fi, offset, entries.size());
  fuse_reply_buf(req, buf.data(), used);
}

void OnReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info* fi) {
  auto listing = ListingFor(req, ino, offset, fi);
  if (listing == nullptr) return;
  const std::vector<DirEntry>& entries = *listing;
  RegistryTree& tree = BridgeOf(req).tree;
  std::vector<char> buf(size);
  size_t used = 0;
  for (size_t i = static_cast<size_t>(offset); i < entries.size(); ++i) {
    const DirEntry& e = entries[i];
    fuse_entry_param param{};
    bool counted = false;
    if (e.name == "." || e.name == "..") {
      // The kernel takes no reference for these: no lookup to count.
      param.attr.st_ino = e.ino;
      param.attr.st_mode = e.type;
    } else {
      auto attr = tree.LookupListed(ino, e);
      if (!attr.ok()) continue;  // gone since opendir
      counted = true;
      param.ino = attr->ino;
      param.attr = ToStat(*attr);
      param.entry_timeout = EntryTimeout(req, *attr);
      param.attr_timeout = Timeout(req, *attr);
    }
    size_t need = fuse_add_direntry_plus(req, buf.data() + used, size - used, e.name.c_str(),
                                         &param, static_cast<off_t>(i + 1));
    if (need > size - used) {
      if (counted) tree.Forget(param.ino, 1);  // did not fit: the kernel never saw it
      break;
    }
    used += need;
  }
  FinishListing(req, ino, fi, offset, entries.size());
  fuse_reply_buf(req, buf.data(), used);
}

void OnReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  BridgeOf(req).handles.Release(fi->fh);
  fuse_reply_err(req, 0);
}

void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY) {
    fuse_reply_err(req, EPERM);
    return;
  }
  auto attr = BridgeOf(req).tree.GetAttr(ino);
  if (!attr.ok()) return ReplyStatus(req, attr.status());
  auto reader = BridgeOf(req).tree.Open(ino, 0);
  if (!reader.ok()) return ReplyStatus(req, reader.status());
  Bridge& bridge = BridgeOf(req);
  fi->fh = bridge.handles.Add(std::make_unique<OpenFile>(std::move(*reader), ino));
  // Content never changes: keep what the page cache holds across opens.
  fi->keep_cache = attr->immutable ? 1 : 0;
  if (fuse_reply_open(req, fi) != 0) bridge.handles.Release(fi->fh);
}

void OnRead(fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
  auto* file = reinterpret_cast<OpenFile*>(fi->fh);
  int fd = file->reader->fd();
  if (fd >= 0) {
    fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    buf.buf[0].fd = fd;
    buf.buf[0].pos = offset;
    fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
    return;
  }
  // A driver without file descriptors: a positioned read of just what the kernel asked for
  // (one ranged GET on an object store, never the whole object).
  std::vector<char> data(size);
  auto got = file->reader->ReadAt(static_cast<uint64_t>(offset), data.data(), size);
  if (!got.ok()) return ReplyStatus(req, got.status());
  fuse_reply_buf(req, data.data(), *got);
}

void OnRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  BridgeOf(req).handles.Release(fi->fh);
  fuse_reply_err(req, 0);
}

void OnUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, BridgeOf(req).tree.Unlink(parent, name));
}

void OnRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Status s = BridgeOf(req).tree.Rmdir(parent, name);
  if (s.code() == Status::Code::kAlreadyExists) {
    fuse_reply_err(req, ENOTEMPTY);
    return;
  }
  ReplyStatus(req, s);
}

void OnSymlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  auto attr = BridgeOf(req).tree.Symlink(target, parent, name);
  if (!attr.ok()) return ReplyStatus(req, attr.status());
  ReplyEntry(req, *attr);
}

void OnRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
              const char* new_name, unsigned int flags) {
  // A tag rename replaces or refuses to; swapping two tags or leaving a whiteout is not a
  // registry operation.
  if (flags & ~static_cast<unsigned int>(RENAME_NOREPLACE)) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  ReplyStatus(req, BridgeOf(req).tree.Rename(parent, name, new_parent, new_name,
                                             (flags & RENAME_NOREPLACE) != 0));
}

void OnRefuse(fuse_req_t req) { fuse_reply_err(req, EPERM); }
void OnMkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { OnRefuse(req); }
void OnMknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { OnRefuse(req); }
void OnCreate(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) { OnRefuse(req); }
void OnLink(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { OnRefuse(req); }
void OnWrite(fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, fuse_file_info*) {
  OnRefuse(req);
}
void OnSetXattr(fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
  OnRefuse(req);
}

void OnStatFs(fuse_req_t req, fuse_ino_t) {
  struct statvfs st {};
  st.f_bsize = 4096;
  st.f_frsize = 4096;
  st.f_namemax = 255;
  fuse_reply_statfs(req, &st);
}

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops{};
  ops.init = OnInit;
  ops.lookup = OnLookup;
  ops.forget = OnForget;
  ops.forget_multi = OnForgetMulti;
  ops.getattr = OnGetAttr;
  ops.setattr = OnSetAttr;
  ops.readlink = OnReadLink;
  ops.opendir = OnOpenDir;
  ops.readdir = OnReadDir;
  ops.readdirplus = OnReadDirPlus;
  ops.releasedir = OnReleaseDir;
  ops.open = OnOpen;
  ops.read = OnRead;
  ops.release = OnRelease;
  ops.unlink = OnUnlink;
  ops.rmdir = OnRmdir;
  ops.symlink = OnSymlink;
  ops.rename = OnRename;
  ops.mkdir = OnMkdir;
  ops.mknod = OnMknod;
  ops.create = OnCreate;
  ops.link = OnLink;
  ops.write = OnWrite;
  ops.setxattr = OnSetXattr;
  ops.statfs = OnStatFs;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& BridgeOperations() {
  static const fuse_lowlevel_ops ops = MakeOperations();
  return ops;
}

}  // namespace regfs::fused
