// StorageDriver over an S3-compatible bucket, in registry:2's key layout under
// rootdirectory, so registry:2's s3 driver and regfs can serve one bucket.
//
// How the filesystem's operations map onto objects:
// - Directories are implied by keys below them (Stat and List ask for one key of the prefix).
// - PutContent is one PUT: S3 replaces objects atomically.
// - A writer buffers `chunk_size` bytes per multipart part and publishes on Close. Append
//   (an upload's next chunk) starts a new multipart upload whose first parts are server-side
//   copies of the existing object (or, below the store's minimum part size, its bytes
//   re-sent), so no process ever needs the previous writer's in-memory state.
// - Move is a server-side copy (multipart above the threshold) and a delete.
// - Lock is a lease object created with If-None-Match: * and taken over once expired.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "drivers/name_hash.h"
#include "drivers/s3/s3_client.h"
#include "drivers/s3/s3_responses.h"
#include "regfs/core/backend.h"

namespace regfs {
namespace {

using s3::Call;
using s3::Response;
using s3::S3Client;

constexpr uint64_t kMaxPartCopy = uint64_t{5} << 30;  // S3's largest part
constexpr size_t kMaxParts = 10000;
constexpr size_t kDeleteBatch = 1000;  // DeleteObjects' limit
// A lease outlives a crashed holder by this much. Its holder renews it every third of that
// for as long as it holds it, so a slow holder keeps it and a dead one costs others seconds.
constexpr std::chrono::seconds kLeaseTtl{10};
constexpr std::chrono::seconds kLeaseWait{120};

int64_t UnixMillis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// A PUT with If-None-Match: * lost: 412 when the object exists, 409 when another create of
// the same key raced this one (RGW).
bool IsCreateConflict(const Status& put) {
  return put.code() == Status::Code::kFailedPrecondition ||
         put.message().find("HTTP 409") != std::string::npos;
}

std::string Fnv1aHex(std::string_view text) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(Fnv1a64(text)));
  return buf;
}

std::string RandomToken() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

struct Part {
  int number;
  std::string etag;
};

std::string CompletionXml(const std::vector<Part>& parts) {
  std::string xml = "<CompleteMultipartUpload>";
  for (const Part& p : parts) {
    xml += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>" +
           s3::XmlEscape(p.etag) + "</ETag></Part>";
  }
  return xml + "</CompleteMultipartUpload>";
}

class S3Driver;

// The driver's object-level operations, shared by the driver, its readers and writers.
class Objects {
 public:
  Objects(S3StorageOptions options, s3::ClientOptions client)
      : options_(std::move(options)), client_(std::move(client)) {}

  S3Client& client() { return client_; }
  const S3StorageOptions& options() const { return options_; }

  // Headers every object creation carries: storage class and server-side encryption.
  s3::Pairs CreationHeaders() const {
    s3::Pairs h;
    if (!options_.storage_class.empty() && options_.storage_class != "NONE") {
      h.emplace_back("x-amz-storage-class", options_.storage_class);
    }
    if (options_.encrypt) {
      if (options_.key_id.empty()) {
        h.emplace_back("x-amz-server-side-encryption", "AES256");
      } else {
        h.emplace_back("x-amz-server-side-encryption", "aws:kms");
        h.emplace_back("x-amz-server-side-encryption-aws-kms-key-id", options_.key_id);
      }
    }
    return h;
  }

  Result<Response> Head(const std::string& key) { return client_.Send({"HEAD", key, {}, {}, {}}); }

  Status Put(const std::string& key, std::string_view body, s3::Pairs extra = {}) {
    return PutObject(key, body, std::move(extra)).status();
  }
  Result<Response> PutObject(const std::string& key, std::string_view body, s3::Pairs extra) {
    s3::Pairs headers = CreationHeaders();
    headers.emplace_back("Content-Type", "application/octet-stream");
    headers.insert(headers.end(), extra.begin(), extra.end());
    return client_.Send({"PUT", key, {}, headers, body});
  }

  Status DeleteOne(const std::string& key) {
    auto r = client_.Send({"DELETE", key, {}, {}, {}});
    return r.ok() || r.status().IsNotFound() ? Status::Ok() : r.status();
  }

  Result<std::string> StartMultipart(const std::string& key) {
    s3::Pairs headers = CreationHeaders();
    headers.emplace_back("Content-Type", "application/octet-stream");
    auto r = client_.Send({"POST", key, {{"uploads", ""}}, headers, {}});
    if (!r.ok()) return r.status();
    return s3::ParseUploadId(r->body);
  }

  Result<std::string> UploadPart(const std::string& key, const std::string& upload_id,
                                 int number, std::string_view data) {
    auto r = client_.Send(
        {"PUT", key, {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}}, {}, data});
    if (!r.ok()) return r.status();
    if (r->etag.empty()) return Status::IOError("PUT part of " + key + ": no ETag in the answer");
    return r->etag;
  }

  std::string CopySource(const std::string& key) const {
    return "/" + options_.bucket + "/" + s3::UriEncode(key, true);
  }

  Result<std::string> CopyPart(const std::string& from, const std::string& key,
                               const std::string& upload_id, int number, uint64_t first,
                               uint64_t last) {
    auto r = client_.Send({"PUT",
                           key,
                           {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}},
                           {{"x-amz-copy-source", CopySource(from)},
                            {"x-amz-copy-source-range",
                             "bytes=" + std::to_string(first) + "-" + std::to_string(last)}},
                           {}});
    if (!r.ok()) return r.status();
    return s3::ParseCopyETag(r->body);
  }

  // Completes the upload. A retried Complete whose first attempt succeeded finds the
  // upload gone: then the object is checked instead of failing a finished write.
  Status Complete(const std::string& key, const std::string& upload_id,
                  const std::vector<Part>& parts, uint64_t expected_size) {
    std::string xml = CompletionXml(parts);
    auto r = client_.Send({"POST", key, {{"uploadId", upload_id}}, {}, xml});
    if (!r.ok()) {
      if (r.status().IsNotFound()) {
        auto head = Head(key);
        if (head.ok() && head->content_length == expected_size) return Status::Ok();
      }
      return r.status();
    }
    Status completed = s3::ParseCompletion(r->body);
    return completed.ok() ? completed : completed.WithContext("completing the upload of " + key);
  }

  void Abort(const std::string& key, const std::string& upload_id) {
    (void)client_.Send({"DELETE", key, {{"uploadId", upload_id}}, {}, {}});
  }

  // Parts [first, first+size) of `from` copied server-side into `upload_id` as parts
  // numbered from `first_number`, each at least the minimum part size (the last one too:
  // more parts follow). Copies run in parallel, up to the configured concurrency.
  Status CopyRanges(const std::string& from, const std::string& key, const std::string& upload_id,
                    uint64_t size, int first_number, std::vector<Part>* parts) {
    uint64_t chunk = std::max<uint64_t>(options_.multipart_copy_chunk_size, options_.min_part_size);
    chunk = std::max<uint64_t>(chunk, (size + kMaxParts / 2 - 1) / (kMaxParts / 2));
    chunk = std::min(chunk, kMaxPartCopy);
    std::vector<std::pair<uint64_t, uint64_t>> ranges;  // (first, last)
    for (uint64_t at = 0; at < size; at += chunk) {
      ranges.emplace_back(at, std::min(size, at + chunk) - 1);
    }
    // A short tail joins the range before it, when that stays within a part's limit.
    if (ranges.size() > 1) {
      auto& tail = ranges.back();
      if (tail.second - tail.first + 1 < options_.min_part_size &&
          tail.second - ranges[ranges.size() - 2].first + 1 <= kMaxPartCopy) {
        ranges[ranges.size() - 2].second = tail.second;
        ranges.pop_back();
      }
    }
    std::vector<Part> out(ranges.size());
    std::vector<Status> results(ranges.size());
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i; (i = next.fetch_add(1)) < ranges.size();) {
        int number = first_number + static_cast<int>(i);
        auto etag = CopyPart(from, key, upload_id, number, ranges[i].first, ranges[i].second);
        if (etag.ok()) {
          out[i] = {number, *etag};
        } else {
          results[i] = etag.status();
        }
      }
    };
    size_t threads = std::min<size_t>(
        ranges.size(), static_cast<size_t>(std::clamp(options_.multipart_copy_max_concurrency, 1, 16)));
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    for (const Status& s : results) REGFS_RETURN_IF_ERROR(s);
    parts->insert(parts->end(), out.begin(), out.end());
    return Status::Ok();
  }

 private:
  S3StorageOptions options_;
  S3Client client_;
};

class S3Reader final : public FileReader {
 public:
  S3Reader(std::shared_ptr<Objects> objects, std::string key, uint64_t size, uint64_t offset)
      : objects_(std::move(objects)), key_(std::move(key)), size_(size), pos_(offset) {}

  Result<size_t> Read(char* buffer, size_t size) override {
    if (pos_ >= size_ || size == 0) return size_t{0};
    if (!stream_) {
      // Opened on the first read, from the position: a HEAD request never downloads.
      Response head;
      auto opened = objects_->client().Open(
          {"GET", key_, {}, {{"Range", "bytes=" + std::to_string(pos_) + "-"}}, {}}, &head);
      if (!opened.ok()) return opened.status();
      stream_ = std::move(*opened);
    }
    auto n = stream_->Read(buffer, size);
    if (!n.ok()) return n.status().WithContext("GET " + key_);
    pos_ += *n;
    return n;
  }

  Result<size_t> ReadAt(uint64_t offset, char* buffer, size_t size) override {
    if (offset >= size_ || size == 0) return size_t{0};
    uint64_t last = std::min<uint64_t>(size_, offset + size) - 1;
    auto r = objects_->client().Send(
        {"GET", key_, {}, {{"Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(last)}}, {}},
        size);
    if (!r.ok()) return r.status();
    std::copy(r->body.begin(), r->body.end(), buffer);
    return r->body.size();
  }

  uint64_t size() const override { return size_; }

 private:
  std::shared_ptr<Objects> objects_;
  std::string key_;
  uint64_t size_;
  uint64_t pos_;
  std::unique_ptr<s3::BodyStream> stream_;
};

class S3Writer final : public FileWriter {
 public:
  // `existing`: the object's size when opened for appending (0 if absent).
  S3Writer(std::shared_ptr<Objects> objects, std::string key, bool append, uint64_t existing)
      : objects_(std::move(objects)), key_(std::move(key)), append_(append),
        old_size_(existing), size_(existing) {}

  ~S3Writer() override {
    if (!upload_id_.empty() && !closed_) objects_->Abort(key_, upload_id_);
  }

  Status Write(const char* data, size_t size) override {
    if (!failure_.ok()) return failure_;
    if (closed_) return Status::FailedPrecondition("write to " + key_ + " after Close");
    if (size == 0) return Status::Ok();
    Status s = Begin();
    const uint64_t chunk = objects_->options().chunk_size;
    while (s.ok() && size > 0) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(size, chunk - buffer_.size()));
      buffer_.append(data, take);
      data += take;
      size -= take;
      size_ += take;
      if (buffer_.size() >= chunk) s = FlushPart();
    }
    if (!s.ok()) Fail(s);
    return s;
  }

  uint64_t size() const override { return failure_.ok() ? size_ : old_size_; }

  // Durability comes with Close: S3 acknowledges only what it stored.
  Status Commit() override { return failure_; }

  Status Close() override {
    if (closed_) return failure_;
    closed_ = true;
    if (!failure_.ok()) return failure_;
    Status s;
    if (!begun_) {
      // Nothing written: appending changes nothing; truncating leaves an empty object.
      if (!append_) s = objects_->Put(key_, "");
    } else if (upload_id_.empty()) {
      s = objects_->Put(key_, buffer_);
    } else {
      if (!buffer_.empty() || parts_.empty()) s = FlushPart();
      if (s.ok()) s = objects_->Complete(key_, upload_id_, parts_, size_);
      if (s.ok()) upload_id_.clear();
    }
    if (!s.ok()) Fail(s);
    buffer_.clear();
    buffer_.shrink_to_fit();
    return s;
  }

 private:
  // On the first write: carry what the object holds over into the new one.
  Status Begin() {
    if (begun_) return Status::Ok();
    begun_ = true;
    if (!append_ || old_size_ == 0) return Status::Ok();
    if (old_size_ < objects_->options().min_part_size) {
      // Too small to be a part of its own: its bytes go out again with the new ones.
      auto old = objects_->client().Send({"GET", key_, {}, {}, {}}, old_size_);
      if (!old.ok()) return old.status();
      if (old->body.size() != old_size_) {
        return Status::Unavailable("GET " + key_ + ": the object changed while being appended to");
      }
      buffer_ = std::move(old->body);
      return Status::Ok();
    }
    auto id = objects_->StartMultipart(key_);
    if (!id.ok()) return id.status();
    upload_id_ = *id;
    return objects_->CopyRanges(key_, key_, upload_id_, old_size_, 1, &parts_);
  }

  Status FlushPart() {
    if (upload_id_.empty()) {
      auto id = objects_->StartMultipart(key_);
      if (!id.ok()) return id.status();
      upload_id_ = *id;
    }
    if (parts_.size() >= kMaxParts) {
      return Status::ResourceExhausted("object " + key_ + " would need more than 10000 parts");
    }
    int number = static_cast<int>(parts_.size()) + 1;
    auto etag = objects_->UploadPart(key_, upload_id_, number, buffer_);
    if (!etag.ok()) return etag.status();
    parts_.push_back({number, *etag});
    buffer_.clear();
    return Status::Ok();
  }

  // After a failure nothing of this writer is published: the object keeps its old content.
  void Fail(const Status& s) {
    failure_ = s;
    if (!upload_id_.empty()) objects_->Abort(key_, upload_id_);
    upload_id_.clear();
  }

  std::shared_ptr<Objects> objects_;
  std::string key_;
  bool append_;
  uint64_t old_size_;  // what the object holds, and keeps if this writer fails
  uint64_t size_;      // what it will hold once closed
  bool begun_ = false;
  bool closed_ = false;
  Status failure_;
  std::string buffer_;      // the part being filled
  std::string upload_id_;
  std::vector<Part> parts_;
};

std::string LeaseBody(const std::string& token) {
  auto expires = std::chrono::system_clock::now() + kLeaseTtl;
  return "token " + token + "\nexpires " + std::to_string(UnixMillis(expires)) + "\n";
}

// An ETag without its quotes: Ceph RGW 16 matches If-Match only against the bare value
// (AWS documents the quoted form; the bare one is untested there).
std::string Unquoted(const std::string& etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    return etag.substr(1, etag.size() - 2);
  }
  return etag;
}

// A held lease object, renewed in the background (If-Match on its last ETag, so a lease
// another process took over after an expiry is never overwritten) until released.
class S3Lease final : public StorageLock {
 public:
  S3Lease(std::shared_ptr<Objects> objects, std::string key, std::string token, std::string etag)
      : objects_(std::move(objects)), key_(std::move(key)), token_(std::move(token)),
        etag_(std::move(etag)), renewed_at_(Now()), renewer_([this] { RenewUntilReleased(); }) {}

  // Held while the last renewal is recent: others take the lease over only once it has
  // expired (a full TTL after that renewal), so giving up after two thirds of it leaves a
  // third of the TTL for the write in progress and for clock drift between hosts.
  bool held() const override {
    if (lost_.load()) return false;
    return Now() - renewed_at_.load() < std::chrono::duration_cast<std::chrono::nanoseconds>(
                                            kLeaseTtl * 2 / 3)
                                            .count();
  }
  ~S3Lease() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    wake_.notify_all();
    renewer_.join();
    // Remove it only while it is still ours: an expired lease may have been taken over.
    auto current = objects_->client().Send({"GET", key_, {}, {}, {}}, 4096);
    if (current.ok() && current->body.find(token_) != std::string::npos) {
      (void)objects_->DeleteOne(key_);
    }
  }

 private:
  void RenewUntilReleased() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!wake_.wait_for(lock, kLeaseTtl / 3, [this] { return released_; })) {
      lock.unlock();
      auto renewed = objects_->PutObject(key_, LeaseBody(token_), {{"If-Match", Unquoted(etag_)}});
      lock.lock();
      if (renewed.ok() && !renewed->etag.empty()) {
        etag_ = renewed->etag;
        renewed_at_ = Now();
      } else if (renewed.ok() || renewed.status().code() == Status::Code::kFailedPrecondition) {
        lost_ = true;
        return;  // taken over after an expiry we could not prevent: nothing left to renew
      }
      // Any other failure: the store is struggling; try again at the next tick.
    }
  }

  static int64_t Now() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

  std::shared_ptr<Objects> objects_;
  const std::string key_;
  const std::string token_;
  std::string etag_;  // only the renewer touches it after construction
  // When the lease object last got a renewed expiry (steady clock ticks), and whether the
  // store said another holder has it now.
  std::atomic<int64_t> renewed_at_;
  std::atomic<bool> lost_{false};
  std::mutex mu_;
  std::condition_variable wake_;
  bool released_ = false;  // GUARDED_BY(mu_)
  std::thread renewer_;    // last: starts once everything above exists
};

class S3Driver final : public StorageDriver {
 public:
  S3Driver(std::shared_ptr<Objects> objects, std::string prefix)
      : objects_(std::move(objects)), prefix_(std::move(prefix)) {}

  DriverCapabilities capabilities() const override {
    return DriverCapabilities{.fd_backed_reads = false, .atomic_move = false, .presigned_urls = true};
  }
  std::string Describe() const override {
    return "s3:" + objects_->client().Describe() + (prefix_.empty() ? "" : " under /" + prefix_);
  }
  uint64_t requests_sent() const override { return objects_->client().requests_sent(); }

  Result<FileInfo> Stat(std::string_view path) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    const std::string key = Key(path);
    auto head = objects_->Head(key);
    if (head.ok()) return FileInfo{head->content_length, false, head->last_modified};
    if (!head.status().IsNotFound()) return head.status();
    auto page = ListPage(key + "/", "", "", 1);
    if (!page.ok()) return page.status();
    if (page->keys.empty()) return Status::NotFound(std::string(path) + " not found");
    return FileInfo{0, true, {}};
  }

  Result<std::string> GetContent(std::string_view path, size_t max_size) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    auto r = objects_->client().Send({"GET", Key(path), {}, {}, {}}, max_size);
    if (!r.ok()) return r.status();
    return std::move(r->body);
  }

  Status PutContent(std::string_view path, std::string_view content, bool) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    return objects_->Put(Key(path), content);
  }

  // Every PUT is durable once answered: `durable` changes nothing here.
  Status CreateContent(std::string_view path, std::string_view content, bool) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    auto created = objects_->PutObject(Key(path), content, {{"If-None-Match", "*"}});
    if (created.ok()) return Status::Ok();
    // 412: the object exists. 409: another create of the same key raced this one and won.
    if (IsCreateConflict(created.status())) {
      return Status::AlreadyExists(std::string(path) + " exists");
    }
    return created.status();
  }

  Result<std::unique_ptr<FileReader>> OpenReader(std::string_view path, uint64_t offset) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    const std::string key = Key(path);
    auto head = objects_->Head(key);
    if (!head.ok()) return head.status();
    return std::unique_ptr<FileReader>(
        new S3Reader(objects_, key, head->content_length, offset));
  }

  Result<std::unique_ptr<FileWriter>> OpenWriter(std::string_view path, bool append) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    const std::string key = Key(path);
    uint64_t existing = 0;
    if (append) {
      auto head = objects_->Head(key);
      if (head.ok()) {
        existing = head->content_length;
      } else if (!head.status().IsNotFound()) {
        return head.status();
      }
    }
    return std::unique_ptr<FileWriter>(new S3Writer(objects_, key, append, existing));
  }

  Result<std::vector<std::string>> List(std::string_view path) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    const std::string prefix = Key(path) + "/";
    std::vector<std::string> names;
    std::string token;
    do {
      auto page = ListPage(prefix, "/", token, 1000);
      if (!page.ok()) return page.status();
      for (const auto* list : {&page->keys, &page->prefixes}) {
        for (const std::string& k : *list) {
          if (!k.starts_with(prefix)) continue;
          std::string name = k.substr(prefix.size());
          if (!name.empty() && name.back() == '/') name.pop_back();
          if (!name.empty()) names.push_back(std::move(name));  // "dir/" markers are no child
        }
      }
      token = page->truncated ? page->next_token : "";
    } while (!token.empty());
    if (names.empty()) return Status::NotFound(std::string(path) + " not found");
    return names;
  }

  Status Move(std::string_view from, std::string_view to) override {
    if (!IsValidDriverPath(from)) return BadPath(from);
    if (!IsValidDriverPath(to)) return BadPath(to);
    const std::string src = Key(from), dst = Key(to);
    auto head = objects_->Head(src);
    if (!head.ok()) return head.status();
    const uint64_t size = head->content_length;
    const auto& o = objects_->options();
    if (size <= o.multipart_copy_threshold && size <= o.max_single_copy) {
      s3::Pairs headers = objects_->CreationHeaders();
      headers.emplace_back("x-amz-copy-source", objects_->CopySource(src));
      auto r = objects_->client().Send({"PUT", dst, {}, headers, {}});
      if (!r.ok()) return r.status();
      REGFS_RETURN_IF_ERROR(s3::ParseCopyETag(r->body).status().WithContext("copy to " + dst));
    } else {
      auto id = objects_->StartMultipart(dst);
      if (!id.ok()) return id.status();
      std::vector<Part> parts;
      Status s = objects_->CopyRanges(src, dst, *id, size, 1, &parts);
      if (s.ok()) s = objects_->Complete(dst, *id, parts, size);
      if (!s.ok()) {
        objects_->Abort(dst, *id);
        return s;
      }
    }
    return objects_->DeleteOne(src);
  }

  Status Delete(std::string_view path) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    const std::string key = Key(path);
    std::vector<std::string> keys;
    std::string token;
    do {
      auto page = ListPage(key + "/", "", token, 1000);
      if (!page.ok()) return page.status();
      keys.insert(keys.end(), page->keys.begin(), page->keys.end());
      token = page->truncated ? page->next_token : "";
    } while (!token.empty());
    auto head = objects_->Head(key);
    if (head.ok()) {
      keys.push_back(key);
    } else if (!head.status().IsNotFound()) {
      return head.status();
    }
    if (keys.empty()) return Status::NotFound(std::string(path) + " not found");
    if (keys.size() == 1) return objects_->DeleteOne(keys.front());
    for (size_t at = 0; at < keys.size(); at += kDeleteBatch) {
      std::string xml = "<Delete><Quiet>true</Quiet>";
      for (size_t i = at; i < std::min(keys.size(), at + kDeleteBatch); ++i) {
        xml += "<Object><Key>" + s3::XmlEscape(keys[i]) + "</Key></Object>";
      }
      xml += "</Delete>";
      auto r = objects_->client().Send(
          {"POST", "", {{"delete", ""}}, {{"Content-MD5", s3::Md5Base64(xml)}}, xml});
      if (!r.ok()) return r.status();
      REGFS_RETURN_IF_ERROR(s3::ParseDeleteResult(r->body));
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<StorageLock>> Lock(std::string_view name) override {
    // Beside docker/registry/v2, not in it, as on the filesystem.
    const std::string key = prefix_ + "regfs/leases/" + Fnv1aHex(name);
    const auto deadline = std::chrono::steady_clock::now() + kLeaseWait;
    std::chrono::milliseconds pause{5};
    while (true) {
      auto taken = TakeLease(key, name);
      if (!taken.ok()) return taken.status();  // the store failed: say so, do not wait
      if (*taken) return std::move(*taken);
      if (std::chrono::steady_clock::now() > deadline) {
        return Status::Unavailable("lease " + std::string(name) + " stayed taken for " +
                                   std::to_string(kLeaseWait.count()) + " s");
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(200));
    }
  }

  Result<std::unique_ptr<StorageLock>> TryLease(std::string_view name) override {
    // Its own key space, so a role's lease never is a Lock of the same name.
    const std::string key = prefix_ + "regfs/leases/role-" + Fnv1aHex(name);
    auto taken = TakeLease(key, name);
    if (!taken.ok()) return taken.status();
    if (!*taken) return Status::FailedPrecondition("lease " + std::string(name) + " is held");
    return std::move(*taken);
  }

  Result<std::string> SignedURL(std::string_view path, std::chrono::seconds ttl) override {
    if (!IsValidDriverPath(path)) return BadPath(path);
    return objects_->client().PresignGet(Key(path), ttl);
  }

 private:
  static Status BadPath(std::string_view path) {
    return Status::InvalidArgument("invalid storage path '" + std::string(path) + "'");
  }
  std::string Key(std::string_view path) const { return prefix_ + std::string(path); }

  // One attempt at the lease object `key`: the lease, null when a live holder has it, or
  // the store's error. An expired lease (its holder died or hung) is removed and taken.
  Result<std::unique_ptr<StorageLock>> TakeLease(const std::string& key, std::string_view name) {
    const std::string token = RandomToken();
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto created = objects_->PutObject(key, LeaseBody(token), {{"If-None-Match", "*"}});
      if (created.ok()) {
        return std::unique_ptr<StorageLock>(new S3Lease(objects_, key, token, created->etag));
      }
      if (!IsCreateConflict(created.status())) {
        return created.status().WithContext("taking lease " + std::string(name));
      }
      auto held = objects_->client().Send({"GET", key, {}, {}, {}}, 4096);
      if (held.status().IsNotFound()) continue;  // released meanwhile
      if (!held.ok()) return held.status();
      auto at = held->body.find("expires ");
      int64_t until = at == std::string::npos ? 0 : std::atoll(held->body.c_str() + at + 8);
      if (until >= UnixMillis(std::chrono::system_clock::now())) break;
      (void)objects_->DeleteOne(key);
    }
    return std::unique_ptr<StorageLock>();
  }

  Result<s3::ListPage> ListPage(const std::string& prefix, const std::string& delimiter,
                                const std::string& token, int max_keys) {
    s3::Pairs query = {{"list-type", "2"}, {"prefix", prefix}, {"max-keys", std::to_string(max_keys)}};
    if (!delimiter.empty()) query.emplace_back("delimiter", delimiter);
    if (!token.empty()) query.emplace_back("continuation-token", token);
    auto r = objects_->client().Send({"GET", "", query, {}, {}});
    if (!r.ok()) return r.status();
    return s3::ParseListObjects(r->body);
  }

  std::shared_ptr<Objects> objects_;
  std::string prefix_;  // rootdirectory + "/", or empty
};

// Splits "http://host:port/" into its parts; a bare host takes `secure`'s scheme.
Status ParseEndpoint(const std::string& endpoint, bool secure, s3::ClientOptions* out) {
  std::string rest = endpoint;
  out->https = secure;
  if (rest.starts_with("https://")) {
    out->https = true;
    rest = rest.substr(8);
  } else if (rest.starts_with("http://")) {
    out->https = false;
    rest = rest.substr(7);
  } else if (rest.find("://") != std::string::npos) {
    return Status::InvalidArgument("storage.s3.regionendpoint " + endpoint +
                                   ": only http:// and https:// are supported");
  }
  rest = rest.substr(0, rest.find('/'));
  out->port = out->https ? 443 : 80;
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']') == std::string::npos) {
    int port = std::atoi(rest.c_str() + colon + 1);
    if (port <= 0 || port > 65535) {
      return Status::InvalidArgument("storage.s3.regionendpoint " + endpoint + ": bad port");
    }
    out->port = static_cast<uint16_t>(port);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return Status::InvalidArgument("storage.s3.regionendpoint has no host");
  out->host = rest;
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<StorageDriver>> NewS3Driver(const S3StorageOptions& options) {
  if (options.bucket.empty()) return Status::InvalidArgument("storage.s3.bucket is required");
  if (options.access_key.empty() || options.secret_key.empty()) {
    return Status::InvalidArgument(
        "storage.s3 needs accesskey and secretkey (or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY)");
  }
  if (options.chunk_size < options.min_part_size || options.chunk_size > kMaxPartCopy) {
    return Status::InvalidArgument("storage.s3.chunksize must be between " +
                                   std::to_string(options.min_part_size) + " and 5 GiB");
  }
  if (options.multipart_copy_chunk_size < options.min_part_size ||
      options.multipart_copy_chunk_size > kMaxPartCopy) {
    return Status::InvalidArgument("storage.s3.multipartcopychunksize must be between " +
                                   std::to_string(options.min_part_size) + " and 5 GiB");
  }
  s3::ClientOptions client;
  if (options.region_endpoint.empty()) {
    client.host = "s3." + options.region + ".amazonaws.com";
    client.https = options.secure;
    client.port = client.https ? 443 : 80;
    client.path_style = options.force_path_style.value_or(false);
  } else {
    REGFS_RETURN_IF_ERROR(ParseEndpoint(options.region_endpoint, options.secure, &client));
    client.path_style = options.force_path_style.value_or(true);
  }
  client.bucket = options.bucket;
  client.region = options.region;
  client.credentials = {options.access_key, options.secret_key, options.session_token};
  client.ca_file = options.ca_bundle;
  client.skip_verify = options.skip_verify;
  client.connect_timeout = options.connect_timeout;
  client.io_timeout = options.io_timeout;
  client.max_attempts = options.max_attempts;

  std::string root = options.root_directory;
  while (!root.empty() && root.front() == '/') root.erase(root.begin());
  while (!root.empty() && root.back() == '/') root.pop_back();
  if (!root.empty() && !IsValidDriverPath(root)) {
    return Status::InvalidArgument("storage.s3.rootdirectory " + options.root_directory +
                                   " is not a clean path");
  }
  std::shared_ptr<Objects> objects;
  try {
    objects = std::make_shared<Objects>(options, client);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("storage.s3: TLS setup failed: ") + e.what());
  }
  auto bucket = objects->client().Send({"HEAD", "", {}, {}, {}});
  const std::string where = "bucket " + options.bucket + " at " + objects->client().Describe();
  if (!bucket.ok()) {
    if (bucket.status().IsNotFound()) {
      return Status::Unavailable(where + " does not exist (create it first)");
    }
    return Status::Unavailable(where + ": " + bucket.status().message());
  }
  return std::shared_ptr<StorageDriver>(new S3Driver(objects, root.empty() ? "" : root + "/"));
}

}  // namespace regfs
