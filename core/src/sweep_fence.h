// SweepFence: how the garbage collector deletes a blob that a writer in another process may
// be linking at that very moment, without either of them waiting for the other and without
// any assumption about timing. It works on every driver: it needs only Stat, PutContent,
// CreateContent (exactly one creator wins) and strong read-after-write.
//
// Blobs are condemned and decided in buckets (by algorithm and the first two hex digits of
// the digest), so a collection writes a few hundred small objects, not two per blob.
// Objects, beside registry:2's tree:
//   regfs/gc/sweeping                        present while a collector condemns and deletes
//   regfs/gc/condemned/<alg>-<hh>            the digests of the bucket it means to delete
//   regfs/gc/verdicts/<alg>-<hh>/keep-<hex>  a writer claimed this blob
//   regfs/gc/verdicts/<alg>-<hh>/delete      the collector decided the bucket
//
// The collector (one at a time: it holds the "gc" lease):
//   1. BeginSweep, then Condemn every candidate (no manifest refers to it, no link to it).
//   2. Lists every repository's links again; a candidate linked now is kept.
//   3. For each bucket, Decide: creates its "delete" verdict, then lists the blobs writers
//      claimed; it deletes the other candidates of the bucket, then Releases it.
// A writer, after it wrote a link (layer link, manifest revision) to digest D: Claim(D).
//   a. If regfs/gc/sweeping is absent, or D is not in its bucket's condemnation, done.
//   b. Creates keep-<hex>. If the bucket has no "delete" verdict yet, the collector will
//      see the claim (it lists after creating the verdict). If it has one, the collector
//      may have listed before the claim: wait until it released the bucket (or its "gc"
//      lease is free: it died).
//   c. Checks the blob's bytes are there: if not, the writer must not report success
//      (bytes there after a release were written after the collector's delete).
//
// Why nothing linked is lost: the writer's link precedes its Claim. If the Claim's reads (a)
// come before the condemnation, the collector's later listing (2) sees the link. If they
// come after, the writer's claim is created before it looks for the verdict: either the
// verdict is not there yet, and the collector's listing, which follows the verdict, sees the
// claim; or it is, and the writer waits for the outcome and reads it from the bytes. A
// writer that loses fails its operation (503; the client's retry stores the bytes anew).
#pragma once

#include <set>
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
  // deleted one of them; the storage's error when it cannot tell.
  Status Claim(const std::vector<Digest>& digests);

  // ---- the collector (holding the "gc" lease)
  // The bucket `digest` is condemned and decided in.
  static std::string BucketOf(const Digest& digest);
  // Removes what a collector killed midway left (condemnations, verdicts) and announces
  // the sweep: writers start looking at condemnations from here on.
  Status BeginSweep();
  // Condemns these blobs (any buckets; call once per sweep).
  Status Condemn(const std::vector<Digest>& digests);
  // Decides a bucket: from now on a writer's claim waits for its release. Returns the
  // blobs of the bucket writers claimed before: keep those, delete the others.
  Result<std::set<Digest>> Decide(const std::string& bucket);
  // Forgets the bucket's condemnation and verdicts (after deleting what it had to).
  void Release(const std::string& bucket);
  // Ends the sweep: no more condemnations.
  Status EndSweep();

 private:
  // Waits until the collector released `bucket` (or died holding it).
  Status AwaitRelease(const std::string& bucket);
  StorageDriver& driver_;
};

}  // namespace regfs
