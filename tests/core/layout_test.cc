#include "layout.h"

#include <gtest/gtest.h>

namespace regfs {
namespace {

TEST(LayoutTest, MatchesRegistry2Paths) {
  Digest d = Digest::Sha256Of("hello");
  const std::string hex = d.hex();
  EXPECT_EQ(layout::BlobData(d), "docker/registry/v2/blobs/sha256/2c/" + hex + "/data");
  EXPECT_EQ(layout::LayerLink("team/app", d),
            "docker/registry/v2/repositories/team/app/_layers/sha256/" + hex + "/link");
  EXPECT_EQ(
      layout::RevisionLink("team/app", d),
      "docker/registry/v2/repositories/team/app/_manifests/revisions/sha256/" + hex + "/link");
  EXPECT_EQ(layout::TagCurrentLink("team/app", "v1"),
            "docker/registry/v2/repositories/team/app/_manifests/tags/v1/current/link");
  EXPECT_EQ(
      layout::TagIndexLink("team/app", "v1", d),
      "docker/registry/v2/repositories/team/app/_manifests/tags/v1/index/sha256/" + hex + "/link");
  EXPECT_EQ(layout::UploadData("a", "u-1"), "docker/registry/v2/repositories/a/_uploads/u-1/data");
  EXPECT_EQ(layout::UploadStartedAt("a", "u-1"),
            "docker/registry/v2/repositories/a/_uploads/u-1/startedat");
}

}  // namespace
}  // namespace regfs
