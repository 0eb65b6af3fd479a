// SweepFence: how the garbage collector deletes a blob that a writer in another process may
// be linking at that very moment, without either of them waiting for the other and without
// any assumption about timing. It works on every driver: it needs only Stat, PutContent,
// CreateContent (exactly one creator wins) and strong read-after-write.
//
// Objects, beside registry:2's tree:
//   regfs/gc/sweeping                    present while a collector condemns and deletes
//   regfs/gc/condemned/<alg>-<hex>       the collector means to delete this blob
//   regfs/gc/verdicts/<alg>-<hex>        "keep" or "delete": whoever creates it first decides
//
// The collector (one at a time: it holds the "gc" lease):
//   1. BeginSweep, then Condemn every candidate (no manifest refers to it, no link to it).
//   2. Lists every repository's links again; a candidate linked now is Released (kept).
//   3. For each remaining candidate, Decide: creates the verdict "delete"; only if that
//      creation wins does it delete the blob. Then Release.
// A writer, after it wrote a link (layer link, manifest revision) to digest D: Claim(D).
//   a. If regfs/gc/sweeping is absent, done.
//   b. If D is condemned, create the verdict "keep". If "delete" won instead, wait until the
//      collector released D (it deletes the bytes first), or its "gc" lease is free.
//   c. If it was condemned, check the blob's bytes are there: if not, the writer must not
//      report success (bytes there now were written after the collector's delete).
//
// Why nothing linked is lost: the writer's link precedes its Claim. If the Claim's reads (a,
// b) come before the collector's condemnation, the collector's later listing (2) sees the
// link. If they come after, the writer sees the condemnation and races for the verdict,
// which exactly one side wins (CreateContent): "keep" and the collector keeps the blob;
// "delete" and the writer fails the operation (503; the client's retry stores the bytes
// anew) unless it wrote the bytes itself after the delete.
#pragma once

#include <string>
#include <vector>

#include "regfs/core/digest.h"
#include "regfs/core/status.h"
#include "regfs/core/storage_driver.h"

namespace regfs {

class SweepFence {
 public:
  explicit SweepFence(StorageDriver& driver) : driver_(driver) {}

  // ---- writers
  // Call after writing links to `digests`. Ok when they stay; Unavailable when a collector
  // deleted (or is deleting) one of them; the storage's error when it cannot tell.
  Status Claim(const std::vector<Digest>& digests);

  // ---- the collector (holding the "gc" lease)
  // Removes what a collector killed midway left (condemnations, verdicts) and announces
  // the sweep: writers start looking at condemnations from here on.
  Status BeginSweep();
  Status Condemn(const Digest& digest);
  // True when the blob may be deleted now (the "delete" verdict won); false when a writer
  // claimed it first.
  Result<bool> Decide(const Digest& digest);
  // Forgets the condemnation and verdict of one blob (after deleting or keeping it).
  void Release(const Digest& digest);
  // Ends the sweep: no more condemnations.
  Status EndSweep();

 private:
  static std::string Key(const Digest& digest);
  // Waits until the collector released the blob `key` (or died holding it).
  Status AwaitRelease(const std::string& key);
  StorageDriver& driver_;
};

}  // namespace regfs
