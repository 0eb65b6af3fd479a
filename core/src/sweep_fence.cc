#include "sweep_fence.h"

#include <chrono>
#include <map>
#include <thread>

#include "layout.h"

namespace regfs {

namespace {
constexpr const char* kSweeping = "regfs/gc/sweeping";
constexpr const char* kCondemned = "regfs/gc/condemned";
constexpr const char* kVerdicts = "regfs/gc/verdicts";
// A bucket holds 1/256 of the candidates, 72 bytes each: room for tens of millions.
constexpr size_t kMaxCondemnationBytes = 256 * 1024 * 1024;

std::string CondemnedPath(const std::string& bucket) {
  return std::string(kCondemned) + "/" + bucket;
}
std::string VerdictsDir(const std::string& bucket) { return std::string(kVerdicts) + "/" + bucket; }
std::string DeleteVerdict(const std::string& bucket) { return VerdictsDir(bucket) + "/delete"; }
std::string Claimed(const std::string& bucket, const Digest& digest) {
  return VerdictsDir(bucket) + "/keep-" + digest.hex();
}

Status Going(const Digest& digest) {
  return Status::Unavailable("blob " + digest.ToString() +
                             " is being removed by garbage collection; push it again");
}

// Whether `digest` is in the condemnation text (one digest per line).
bool Lists(const std::string& text, const Digest& digest) {
  const std::string line = digest.ToString();
  for (size_t at = text.find(line); at != std::string::npos; at = text.find(line, at + 1)) {
    bool starts = at == 0 || text[at - 1] == '\n';
    bool ends = at + line.size() == text.size() || text[at + line.size()] == '\n';
    if (starts && ends) return true;
  }
  return false;
}
}  // namespace

std::string SweepFence::BucketOf(const Digest& digest) {
  return digest.algorithm() + "-" + digest.hex().substr(0, 2);
}

Status SweepFence::Claim(const std::vector<Digest>& digests) {
  auto sweeping = driver_.Stat(kSweeping);
  if (!sweeping.ok()) return sweeping.status().IsNotFound() ? Status::Ok() : sweeping.status();
  std::map<std::string, std::string> condemnations;  // bucket -> its text ("" when none)
  for (const Digest& digest : digests) {
    const std::string bucket = BucketOf(digest);
    auto known = condemnations.find(bucket);
    if (known == condemnations.end()) {
      auto text = driver_.GetContent(CondemnedPath(bucket), kMaxCondemnationBytes);
      if (!text.ok() && !text.status().IsNotFound()) return text.status();
      known = condemnations.emplace(bucket, text.ok() ? *text : "").first;
    }
    if (!Lists(known->second, digest)) continue;
    Status claimed = driver_.CreateContent(Claimed(bucket, digest), "", false);
    if (!claimed.ok() && claimed.code() != Status::Code::kAlreadyExists) return claimed;
    auto verdict = driver_.Stat(DeleteVerdict(bucket));
    if (verdict.ok()) {
      // The collector decided the bucket, perhaps before it saw our claim: the bytes will
      // tell, once it is done with the bucket.
      REGFS_RETURN_IF_ERROR(AwaitRelease(bucket));
    } else if (!verdict.status().IsNotFound()) {
      return verdict.status();
    }
    // Not decided yet: the collector will see the claim. Unless it already finished with
    // the bucket (decided and released) before we looked: only the bytes tell.
    auto data = driver_.Stat(layout::BlobData(digest));
    if (!data.ok()) return data.status().IsNotFound() ? Going(digest) : data.status();
  }
  return Status::Ok();
}

Status SweepFence::AwaitRelease(const std::string& bucket) {
  while (true) {
    auto condemned = driver_.Stat(CondemnedPath(bucket));
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

Status SweepFence::Condemn(const std::vector<Digest>& digests) {
  std::map<std::string, std::string> buckets;
  for (const Digest& digest : digests) {
    std::string& text = buckets[BucketOf(digest)];
    if (!text.empty()) text += "\n";
    text += digest.ToString();
  }
  for (const auto& [bucket, text] : buckets) {
    REGFS_RETURN_IF_ERROR(driver_.PutContent(CondemnedPath(bucket), text, false));
  }
  return Status::Ok();
}

Result<std::set<Digest>> SweepFence::Decide(const std::string& bucket) {
  Status decided = driver_.CreateContent(DeleteVerdict(bucket), "", false);
  if (!decided.ok() && decided.code() != Status::Code::kAlreadyExists) return decided;
  std::set<Digest> claimed;
  auto names = driver_.List(VerdictsDir(bucket));
  if (!names.ok()) return names.status();
  const std::string algorithm = bucket.substr(0, bucket.find('-'));
  for (const std::string& name : *names) {
    if (!name.starts_with("keep-")) continue;
    if (auto d = Digest::Parse(algorithm + ":" + name.substr(5)); d.ok()) claimed.insert(*d);
  }
  return claimed;
}

void SweepFence::Release(const std::string& bucket) {
  // The condemnation goes first: a writer that still sees it finds the verdict.
  (void)driver_.Delete(CondemnedPath(bucket));
  (void)driver_.Delete(VerdictsDir(bucket));
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
