// OpenBackend: the one way regfs-httpd and regfs-fused open storage. It picks the driver the
// configuration names, checks that it can be used, and attaches the change feed and the change
// log that storage keeps for other processes, so neither front end wires them by hand.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "regfs/core/change_feed.h"
#include "regfs/core/change_log.h"
#include "regfs/core/descriptor_cache.h"
#include "regfs/core/status.h"
#include "regfs/core/storage_driver.h"

namespace regfs {

// An S3-compatible bucket: registry:2's storage.s3 keys (and storage.oss, served through
// OSS's S3 API), already resolved from the configuration and the AWS_* environment.
struct S3StorageOptions {
  std::string access_key;
  std::string secret_key;     // never logged, never in an error message
  std::string session_token;  // AWS_SESSION_TOKEN for temporary credentials
  std::string region = "us-east-1";
  // "http://host:port", "https://host" or a bare host (then `secure` picks the scheme).
  // Empty: AWS's endpoint for the region.
  std::string region_endpoint;
  // Path-style addressing (/bucket/key). Unset: path style when region_endpoint is set, as
  // registry:2 2.8 does; virtual-hosted style (bucket.host/key) on AWS.
  std::optional<bool> force_path_style;
  std::string bucket;  // REQUIRED
  bool encrypt = false;
  std::string key_id;  // KMS key for encrypt; empty: S3-managed keys (AES256)
  bool secure = true;
  bool skip_verify = false;
  std::string ca_bundle;  // AWS_CA_BUNDLE: PEM file of the CAs to trust
  uint64_t chunk_size = 10 << 20;  // multipart part size of uploads
  uint64_t multipart_copy_chunk_size = 32 << 20;
  int multipart_copy_max_concurrency = 100;
  uint64_t multipart_copy_threshold = 32 << 20;
  std::string root_directory;  // key prefix of everything regfs stores
  std::string storage_class = "STANDARD";  // or NONE: send no storage class
  // The store's smallest multipart part but the last: 5 MiB on S3, 100 KB on OSS.
  uint64_t min_part_size = 5 << 20;
  // Largest object CopyObject copies in one request; above it, UploadPartCopy.
  uint64_t max_single_copy = uint64_t{5} << 30;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds io_timeout{30'000};
  int max_attempts = 5;
};

struct StorageOptions {
  std::string driver = "filesystem";  // filesystem, inmemory or s3
  std::string root_directory;         // filesystem
  S3StorageOptions s3;                // s3
  // A read-only registry publishes nothing; its feed is opened for reading only.
  bool read_only = false;
  // Told about failures to publish to the change feed, for the log.
  std::function<void(const Status&)> on_feed_error;
  // storage.cache.blobdescriptor: "", "inmemory" or "redis" (with `redis`).
  std::string descriptor_cache;
  RedisCacheOptions redis;
  // Told when the Redis cache stops answering (an error) and when it answers again (OK).
  std::function<void(const Status&)> on_cache_change;
};

struct Backend {
  std::shared_ptr<StorageDriver> driver;
  // The storage's change feed, or null when it has none (in-memory storage, an object store
  // for now, or a filesystem whose journal folder cannot be created): `no_feed` says why.
  std::shared_ptr<ChangeFeed> feed;
  std::string no_feed;
  // The storage's durable change log, on every driver (in memory: this process's only).
  std::shared_ptr<ChangeLog> log;
  // The blob descriptor cache the options ask for, or null; give it to RegistryOptions.
  std::shared_ptr<DescriptorCache> descriptor_cache;
};

// Opens the storage `options` describes. Fails with a message an operator can act on when
// the driver is unknown, the folder is unusable, or the bucket is unreachable, missing or
// refuses the credentials.
Result<Backend> OpenBackend(const StorageOptions& options);

// The object-store driver alone (OpenBackend calls it): checks the bucket with one request.
Result<std::shared_ptr<StorageDriver>> NewS3Driver(const S3StorageOptions& options);

}  // namespace regfs
