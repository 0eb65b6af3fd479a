// BlobFetch: one download of a blob from an upstream, stored in the registry and streamed
// to every client that asks for the blob meanwhile.
//
// A fetch runs on its own thread, so it finishes (and the cache fills) even when the
// client that started it goes away. The bytes go to two places as they arrive: a spool
// file on local disk, from which every waiting client reads at its own pace, and an upload
// of the registry, which verifies the digest when the last byte is in and only then makes
// the blob visible. Clients get every byte but the last as it arrives, and the last only
// once the blob is verified and stored: a client never holds a whole blob whose digest is
// wrong, and a mismatch stores nothing (the upload is removed) and fails every pull of it.
//
// Nothing of a blob is held in memory beyond one buffer.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "regfs/core/registry.h"

namespace regfs::httpd::proxy {

class UpstreamBody;

class BlobFetch : public std::enable_shared_from_this<BlobFetch> {
 public:
  // How a fetch gets its bytes: opens the upstream download.
  using Opener = std::function<Result<std::unique_ptr<UpstreamBody>>()>;

  // Opens the upstream download on the caller's thread (so an upstream that is down or has
  // no such blob fails the request at once, with nothing sent), a spool file and an upload.
  // Nothing moves until Launch. REQUIRES: registry outlives the fetch.
  static Result<std::shared_ptr<BlobFetch>> Open(Registry& registry, const std::string& repo,
                                                 const Digest& digest, const Opener& open,
                                                 const std::string& spool_directory);
  // Streams the download on a thread of its own; `done` is called on it once the fetch has
  // ended, either way, before readers learn the outcome. Call once.
  void Launch(std::function<void(const Status&)> done);
  ~BlobFetch();

  const Digest& digest() const { return digest_; }
  uint64_t size() const { return size_; }

  // Copies bytes from `offset` on into `buf` (at most `len`), waiting up to `timeout` for
  // them to arrive. Returns how many were copied (0 only when offset == size); an error
  // when the fetch failed (the digest did not match, the upstream broke off) or stalled.
  Result<size_t> Read(uint64_t offset, char* buf, size_t len, std::chrono::milliseconds timeout);
  // Waits for the fetch to end: Ok once the blob is stored in the registry.
  Status Wait(std::chrono::milliseconds timeout);
  // The fetch's bytes as a reader from the start (Read waits as above; so does ReadAt).
  std::unique_ptr<FileReader> NewReader(std::chrono::milliseconds timeout);

 private:
  BlobFetch(Registry& registry, std::string repo, Digest digest,
            std::unique_ptr<UpstreamBody> body, std::string upload_id, int spool_fd);
  void Run(std::function<void(const Status&)> done);
  // Called by the upload's stream as bytes arrive.
  void Arrived(uint64_t total);
  void Finish(Status status);

  Registry& registry_;
  const std::string repo_;
  const Digest digest_;
  const uint64_t size_;
  const int spool_fd_;  // unlinked at once: it disappears with the last reader
  std::unique_ptr<UpstreamBody> body_;  // until the download ends
  const std::string upload_id_;

  std::mutex mu_;
  std::condition_variable changed_;
  uint64_t spooled_ = 0;  // bytes in the spool file
  bool finished_ = false;
  Status result_;  // valid once finished_
};

}  // namespace regfs::httpd::proxy
