// Registry::Open and the helpers every part of the registry shares.
#include <algorithm>
#include "layout.h"
#include "registry_impl.h"

namespace regfs {

namespace {
// Link files hold one digest; anything much larger is not a link.
constexpr size_t kMaxLinkBytes = 1024;
}  // namespace

Result<std::unique_ptr<Registry>> Registry::Open(RegistryOptions options) {
  if (!options.driver) return Status::InvalidArgument("RegistryOptions.driver is required");
  if (!options.read_only) {
    // Fail at start, with the storage's own words, rather than on the first push.
    const std::string probe = std::string(layout::kRoot) + "/.regfs-write-probe";
    Status s = options.driver->PutContent(probe, "probe", false);
    if (!s.ok()) {
      return Status::PermissionDenied("storage " + options.driver->Describe() +
                                      " is not writable: " + s.message());
    }
    (void)options.driver->Delete(probe);
  }
  return std::unique_ptr<Registry>(new RegistryImpl(std::move(options)));
}

RegistryImpl::RegistryImpl(RegistryOptions options)
    : options_(std::move(options)), driver_(*options_.driver), cache_(options_.descriptor_cache) {
  // First of the listeners: what a deletion removed is out of the cache before anything
  // else hears of it (and before the deleting request answers).
  if (cache_) options_.listeners.insert(options_.listeners.begin(), cache_);
}

Status RegistryImpl::CheckWritable() const {
  if (options_.read_only) {
    return Status::FailedPrecondition("the registry is in read-only mode",
                                      Status::Reason::kUnsupported);
  }
  return Status::Ok();
}

Status RegistryImpl::CheckDeletable() const {
  REGFS_RETURN_IF_ERROR(CheckWritable());
  if (!options_.delete_enabled) {
    return Status::FailedPrecondition("deletes are disabled (storage.delete.enabled is false)",
                                      Status::Reason::kUnsupported);
  }
  return Status::Ok();
}

Result<Digest> RegistryImpl::ReadLink(const std::string& path) {
  auto content = driver_.GetContent(path, kMaxLinkBytes);
  if (!content.ok()) return content.status();
  std::string_view text = *content;
  // registry:2 writes no newline; tolerate one written by hand.
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  if (text.empty()) return Status::NotFound(path + " is empty");
  auto digest = Digest::Parse(text);
  if (!digest.ok()) return Status::Corruption(path + " does not hold a digest");
  return digest;
}

namespace {

// The locks and leases the calling thread holds through Track, innermost last.
thread_local std::vector<const StorageLock*> held_locks;

class TrackedLock final : public StorageLock {
 public:
  explicit TrackedLock(std::unique_ptr<StorageLock> inner) : inner_(std::move(inner)) {
    held_locks.push_back(inner_.get());
  }
  ~TrackedLock() override {
    // Released in any order (a lock handed back early with reset()).
    auto it = std::find(held_locks.rbegin(), held_locks.rend(), inner_.get());
    if (it != held_locks.rend()) held_locks.erase(std::next(it).base());
  }
  bool held() const override { return inner_->held(); }

 private:
  std::unique_ptr<StorageLock> inner_;
};

}  // namespace

std::unique_ptr<StorageLock> RegistryImpl::Track(std::unique_ptr<StorageLock> lock) {
  return std::make_unique<TrackedLock>(std::move(lock));
}

Status RegistryImpl::CheckLocksHeld() {
  for (const StorageLock* lock : held_locks) {
    if (!lock->held()) {
      return Status::Unavailable(
          "the storage lease this change was made under could not be renewed in time and may "
          "be another process's now; nothing more was written: retry");
    }
  }
  return Status::Ok();
}

Status RegistryImpl::WriteLink(const std::string& path, const Digest& digest) {
  REGFS_RETURN_IF_ERROR(CheckLocksHeld());
  // Links are atomic but not synced: what they point to was synced before they were
  // written, so a power cut can lose a recent link, never leave one pointing at garbage.
  return driver_.PutContent(path, digest.ToString(), false);
}

Status RegistryImpl::Remove(std::string_view path) {
  REGFS_RETURN_IF_ERROR(CheckLocksHeld());
  return driver_.Delete(path);
}

bool RegistryImpl::Exists(const std::string& path) { return driver_.Stat(path).ok(); }

Status RegistryImpl::Require(const std::string& path, Status unknown) {
  auto info = driver_.Stat(path);
  if (info.ok()) return Status::Ok();
  return info.status().IsNotFound() ? unknown : info.status();
}

Result<bool> RegistryImpl::RepositoryExists(const std::string& repo) {
  for (const std::string& dir :
       {layout::ManifestsDir(repo), layout::LayersDir(repo), layout::UploadsDir(repo)}) {
    Status s = Require(dir, Status::NotFound(""));
    if (s.ok()) return true;
    if (!s.IsNotFound()) return s;
  }
  return false;
}

void RegistryImpl::Notify(const ChangeEvent& event) {
  for (const auto& listener : options_.listeners) listener->OnChange(event);
}

}  // namespace regfs
