#include "regfs/core/backend.h"

namespace regfs {
namespace {

Result<Backend> OpenDriverAndFeed(const StorageOptions& options) {
  Backend backend;
  if (options.driver == "inmemory") {
    backend.driver = NewInMemoryDriver();
    backend.no_feed = "in-memory storage is seen by this process only";
    return backend;
  }
  if (options.driver == "s3") {
    auto driver = NewS3Driver(options.s3);
    if (!driver.ok()) return driver.status();
    backend.driver = *driver;
    // The change feed (a hint for mounts) is a local journal; a bucket has the change log
    // only, which mounts do not read yet: they see other processes' changes after their
    // cache timeouts.
    backend.no_feed = "the object-store driver keeps no change feed";
    return backend;
  }
  if (options.driver != "filesystem") {
    return Status::InvalidArgument("unknown storage driver " + options.driver);
  }
  auto driver = NewFilesystemDriver(options.root_directory);
  if (!driver.ok()) return driver.status();
  backend.driver = *driver;
  auto feed = OpenJournalFeed({.directory = JournalDirectory(options.root_directory),
                               .on_error = options.on_feed_error});
  if (feed.ok()) {
    backend.feed = *feed;
  } else {
    backend.no_feed = feed.status().message();
  }
  return backend;
}

}  // namespace

Result<Backend> OpenBackend(const StorageOptions& options) {
  auto backend = OpenDriverAndFeed(options);
  if (!backend.ok()) return backend;
  backend->log = OpenChangeLog(backend->driver);
  if (options.descriptor_cache == "inmemory") {
    backend->descriptor_cache = NewInMemoryDescriptorCache();
  } else if (options.descriptor_cache == "redis") {
    backend->descriptor_cache =
        NewRedisDescriptorCache(options.redis, backend->driver, options.on_cache_change);
  } else if (!options.descriptor_cache.empty()) {
    return Status::InvalidArgument("unknown blob descriptor cache '" + options.descriptor_cache +
                                   "' (inmemory or redis)");
  }
  return backend;
}

}  // namespace regfs
