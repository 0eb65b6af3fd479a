#include "sweep_fence.h"

#include <chrono>
#include <thread>

#include "layout.h"

namespace regfs {

namespace {
constexpr const char* kSweeping = "regfs/gc/sweeping";
constexpr const char* kCondemned = "regfs/gc/condemned";
constexpr const char* kVerdicts = "regfs/gc/verdicts";
constexpr size_t kMaxVerdictBytes = 64;

std::string CondemnedPath(const std::string& key) { return std::string(kCondemned) + "/" + key; }
std::string VerdictPath(const std::string& key) { return std::string(kVerdicts) + "/" + key; }

Status Going(const Digest& digest) {
  return Status::Unavailable("blob " + digest.ToString() +
                             " is being removed by garbage collection; push it again");
}

// The verdict at `path` once `mine` was offered: true when it is `mine`.
Result<bool> Settle(StorageDriver& driver, const std::string& path, const std::string& mine) {
  Status created = driver.CreateContent(path, mine, false);
  if (created.ok()) return true;
  if (created.code() != Status::Code::kAlreadyExists) return created;
  auto verdict = driver.GetContent(path, kMaxVerdictBytes);
  if (!verdict.ok()) {
    // Released by the other side in between: it has finished with this blob either way.
    if (verdict.status().IsNotFound()) return mine == "keep";
    return verdict.status();
  }
  return *verdict == mine;
}
}  // namespace

std::string SweepFence::Key(const Digest& digest) {
  return digest.algorithm() + "-" + digest.hex();
}

Status SweepFence::Claim(const std::vector<Digest>& digests) {
  auto sweeping = driver_.Stat(kSweeping);
  if (!sweeping.ok()) return sweeping.status().IsNotFound() ? Status::Ok() : sweeping.status();
  for (const Digest& digest : digests) {
    const std::string key = Key(digest);
    auto condemned = driver_.Stat(CondemnedPath(key));
    if (!condemned.ok()) {
      if (condemned.status().IsNotFound()) continue;
      return condemned.status();
    }
    auto kept = Settle(driver_, VerdictPath(key), "keep");
    if (!kept.ok()) return kept.status();
    if (!*kept) {
      // "delete" won: the collector deletes the bytes, then releases the blob. Once it has,
      // bytes that are there were written after the delete (an upload committed meanwhile).
      REGFS_RETURN_IF_ERROR(AwaitRelease(key));
    }
    // Even when "keep" won, the collector may have finished with this blob before we
    // offered it (deleted, then released): only the bytes tell.
    auto data = driver_.Stat(layout::BlobData(digest));
    if (!data.ok()) return data.status().IsNotFound() ? Going(digest) : data.status();
  }
  return Status::Ok();
}

Status SweepFence::AwaitRelease(const std::string& key) {
  while (true) {
    auto condemned = driver_.Stat(CondemnedPath(key));
    if (!condemned.ok()) return condemned.status().IsNotFound() ? Status::Ok() : condemned.status();
    // A collector that died after its verdict will never release: its lease tells.
    if (auto lease = driver_.TryLease("gc"); lease.ok()) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Status SweepFence::BeginSweep() {
  for (const char* dir : {kCondemned, kVerdicts}) {
    Status s = driver_.Delete(dir);
    if (!s.ok() && !s.IsNotFound()) return s;
  }
  return driver_.PutContent(kSweeping, "", false);
}

Status SweepFence::Condemn(const Digest& digest) {
  return driver_.PutContent(CondemnedPath(Key(digest)), digest.ToString(), false);
}

Result<bool> SweepFence::Decide(const Digest& digest) {
  return Settle(driver_, VerdictPath(Key(digest)), "delete");
}

void SweepFence::Release(const Digest& digest) {
  const std::string key = Key(digest);
  // The condemnation goes first: a writer that still sees it finds the verdict.
  (void)driver_.Delete(CondemnedPath(key));
  (void)driver_.Delete(VerdictPath(key));
}

Status SweepFence::EndSweep() {
  Status s = driver_.Delete(kSweeping);
  if (!s.ok() && !s.IsNotFound()) return s;
  for (const char* dir : {kCondemned, kVerdicts}) {
    Status d = driver_.Delete(dir);
    if (!d.ok() && !d.IsNotFound()) return d;
  }
  return Status::Ok();
}

}  // namespace regfs
