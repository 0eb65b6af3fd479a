#include "observability/metered_driver.h"

#include <chrono>

namespace regfs::httpd {

namespace {

// Errors by what an operator does about them; NotFound and AlreadyExists are answers, not
// failures (a HEAD of a missing blob, a lost creation race).
const char* ErrorKind(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk:
    case Status::Code::kNotFound:
    case Status::Code::kAlreadyExists:
      return nullptr;
    case Status::Code::kUnavailable:
      return "unavailable";
    case Status::Code::kIOError:
    case Status::Code::kResourceExhausted:
      return "io";
    case Status::Code::kPermissionDenied:
      return "permission";
    case Status::Code::kCorruption:
      return "corrupt";
    default:
      return "other";
  }
}

class MeteredDriver final : public StorageDriver {
 public:
  MeteredDriver(std::shared_ptr<StorageDriver> inner, std::string label, ServerMetrics& m)
      : inner_(std::move(inner)), label_(std::move(label)), m_(m) {}

  DriverCapabilities capabilities() const override { return inner_->capabilities(); }
  std::string Describe() const override { return inner_->Describe(); }
  uint64_t requests_sent() const override { return inner_->requests_sent(); }

  Result<FileInfo> Stat(std::string_view path) override {
    return Timed("Stat", [&] { return inner_->Stat(path); });
  }
  Result<std::string> GetContent(std::string_view path, size_t max_size) override {
    return Timed("GetContent", [&] { return inner_->GetContent(path, max_size); });
  }
  Status PutContent(std::string_view path, std::string_view content, bool durable) override {
    return Timed("PutContent", [&] { return inner_->PutContent(path, content, durable); });
  }
  Status CreateContent(std::string_view path, std::string_view content, bool durable) override {
    return Timed("CreateContent", [&] { return inner_->CreateContent(path, content, durable); });
  }
  Result<std::unique_ptr<FileReader>> OpenReader(std::string_view path,
                                                 uint64_t offset) override {
    return Timed("Reader", [&] { return inner_->OpenReader(path, offset); });
  }
  Result<std::unique_ptr<FileWriter>> OpenWriter(std::string_view path, bool append) override {
    return Timed("Writer", [&] { return inner_->OpenWriter(path, append); });
  }
  Result<std::vector<std::string>> List(std::string_view path) override {
    return Timed("List", [&] { return inner_->List(path); });
  }
  Status Move(std::string_view from, std::string_view to) override {
    return Timed("Move", [&] { return inner_->Move(from, to); });
  }
  Status Delete(std::string_view path) override {
    return Timed("Delete", [&] { return inner_->Delete(path); });
  }
  Result<std::unique_ptr<StorageLock>> Lock(std::string_view name) override {
    auto started = std::chrono::steady_clock::now();
    auto lock = Timed("Lock", [&] { return inner_->Lock(name); });
    m_.lease_wait.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return lock;
  }
  Result<std::unique_ptr<StorageLock>> TryLease(std::string_view name) override {
    return Timed("TryLease", [&] { return inner_->TryLease(name); });
  }
  Result<uint64_t> RemoveLeftovers(std::string_view dir,
                                   std::chrono::system_clock::time_point cutoff,
                                   bool dry_run) override {
    return Timed("RemoveLeftovers", [&] { return inner_->RemoveLeftovers(dir, cutoff, dry_run); });
  }
  Result<std::string> SignedURL(std::string_view path, std::chrono::seconds ttl) override {
    return Timed("SignedURL", [&] { return inner_->SignedURL(path, ttl); });
  }

 private:
  static const Status& StatusOf(const Status& s) { return s; }
  template <typename T>
  static const Status& StatusOf(const Result<T>& r) {
    return r.status();
  }

  template <typename F>
  auto Timed(const char* action, F&& call) -> decltype(call()) {
    auto started = std::chrono::steady_clock::now();
    auto result = call();
    m_.storage_seconds.With({label_, action})
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
                     .count());
    if (const char* kind = ErrorKind(StatusOf(result))) {
      m_.storage_errors.With({label_, action, kind}).Add();
    }
    return result;
  }

  const std::shared_ptr<StorageDriver> inner_;
  const std::string label_;
  ServerMetrics& m_;
};

}  // namespace

std::shared_ptr<StorageDriver> NewMeteredDriver(std::shared_ptr<StorageDriver> inner,
                                                std::string driver_label,
                                                ServerMetrics& metrics) {
  return std::make_shared<MeteredDriver>(std::move(inner), std::move(driver_label), metrics);
}

}  // namespace regfs::httpd
