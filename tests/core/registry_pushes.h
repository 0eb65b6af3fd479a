// Pushes for the registry suites: a blob uploaded in one chunk, as a client would.
#pragma once

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "regfs/core/registry.h"

namespace regfs::testing {

// Uploads `content` to `repo` (start, one append, commit); failures are test failures.
inline Digest PushBlob(Registry& registry, const std::string& repo, const std::string& content) {
  auto up = registry.StartUpload(repo);
  EXPECT_TRUE(up.ok()) << up.status().ToString();
  if (!up.ok()) return Digest::Sha256Of(content);
  std::istringstream body(content);
  EXPECT_TRUE(registry.AppendUpload(repo, up->id, body, std::nullopt).ok());
  auto blob = registry.CommitUpload(repo, up->id, Digest::Sha256Of(content));
  EXPECT_TRUE(blob.ok()) << blob.status().ToString();
  return Digest::Sha256Of(content);
}

}  // namespace regfs::testing
