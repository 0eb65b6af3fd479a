// Which kernel caches regfs-fused invalidates for each registry change, without a kernel:
// only nodes the kernel holds, the listing of the first folder that lacks a new repository,
// and everything the kernel holds after missed events.
#include "change_notifier.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

namespace regfs::fused {
namespace {

using Kind = RegistryTree::Kind;
using Type = Invalidation::Type;

class ChangeNotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = Registry::Open({.driver = NewInMemoryDriver(), .delete_enabled = true});
    ASSERT_TRUE(r.ok());
    registry_ = std::move(*r);
    auto up = registry_->StartUpload("team/app");  // makes team/app a repository
    ASSERT_TRUE(up.ok());
    tree_ = std::make_unique<RegistryTree>(*registry_, true);
  }

  // Looks up a slash-separated path from the root, as the kernel would.
  void Walk(const std::string& path) {
    Ino ino = kRootIno;
    std::stringstream ss(path);
    for (std::string part; std::getline(ss, part, '/');) {
      auto attr = tree_->Lookup(ino, part);
      ASSERT_TRUE(attr.ok()) << path << ": " << attr.status().ToString();
      ino = attr->ino;
    }
  }

  static bool Has(const std::vector<Invalidation>& v, const Invalidation& want) {
    return std::find(v.begin(), v.end(), want) != v.end();
  }

  static Ino Folder(const std::string& path) {
    return RegistryTree::InoFor(Kind::kFolder, path, "");
  }
  static Ino Tags(const std::string& repo) { return RegistryTree::InoFor(Kind::kTags, repo, ""); }

  std::unique_ptr<Registry> registry_;
  std::unique_ptr<RegistryTree> tree_;
};

ChangeEvent Event(ChangeEvent::Kind kind, const std::string& repo, const std::string& tag = "") {
  return ChangeEvent{.kind = kind, .repository = repo, .tag = tag};
}

TEST_F(ChangeNotifierTest, NothingForNodesTheKernelDoesNotHold) {
  EXPECT_TRUE(
      InvalidationsFor(Event(ChangeEvent::Kind::kTagDeleted, "team/app", "v1"), *tree_).empty());
}

TEST_F(ChangeNotifierTest, TagSetInAKnownTagsFolder) {
  Walk("team/app/_tags");
  auto v = InvalidationsFor(Event(ChangeEvent::Kind::kTagSet, "team/app", "v1"), *tree_);
  EXPECT_TRUE(Has(v, {Type::kEntry, Tags("team/app"), "v1"}));
  EXPECT_TRUE(Has(v, {Type::kInode, Tags("team/app"), ""}));
  // The repository is known with its special folders: no folder listing is touched.
  EXPECT_FALSE(Has(v, {Type::kInode, kRootIno, ""}));
  EXPECT_FALSE(Has(v, {Type::kInode, Folder("team"), ""}));
  EXPECT_EQ(v.size(), 2u);
}

TEST_F(ChangeNotifierTest, ANewRepositoryInvalidatesTheListingThatLacksIt) {
  Walk("team/app/_tags");
  auto v = InvalidationsFor(Event(ChangeEvent::Kind::kTagSet, "team/new", "v1"), *tree_);
  EXPECT_EQ(v, (std::vector<Invalidation>{{Type::kInode, Folder("team"), ""}}));
  v = InvalidationsFor(Event(ChangeEvent::Kind::kManifestPut, "other/x"), *tree_);
  EXPECT_EQ(v, (std::vector<Invalidation>{{Type::kInode, kRootIno, ""}}));
}

TEST_F(ChangeNotifierTest, ANamespaceBecomingARepositoryGetsItsSpecialFolders) {
  Walk("team");
  auto v = InvalidationsFor(Event(ChangeEvent::Kind::kBlobLinked, "team"), *tree_);
  EXPECT_TRUE(Has(v, {Type::kInode, Folder("team"), ""}));
}

TEST_F(ChangeNotifierTest, RepositoryDeletedDropsItsNameAndSpecialFolders) {
  Walk("team/app/_tags");
  auto v = InvalidationsFor(Event(ChangeEvent::Kind::kRepositoryDeleted, "team/app"), *tree_);
  EXPECT_TRUE(Has(v, {Type::kEntry, Folder("team"), "app"}));
  EXPECT_TRUE(Has(v, {Type::kInode, Folder("team"), ""}));
  EXPECT_TRUE(Has(v, {Type::kEntry, Folder("team/app"), "_tags"}));
}

TEST_F(ChangeNotifierTest, UploadEndedDropsTheUploadName) {
  Walk("team/app/_uploads");
  ChangeEvent e = Event(ChangeEvent::Kind::kUploadEnded, "team/app");
  e.upload_id = "abc";
  auto v = InvalidationsFor(e, *tree_);
  Ino uploads = RegistryTree::InoFor(Kind::kUploads, "team/app", "");
  EXPECT_TRUE(Has(v, {Type::kEntry, uploads, "abc"}));
  EXPECT_TRUE(Has(v, {Type::kInode, uploads, ""}));
}

TEST_F(ChangeNotifierTest, EverythingMeansEveryKnownFolderAndTheTopNames) {
  Walk("team/app/_tags");
  auto v = InvalidateEverything(*tree_);
  EXPECT_TRUE(Has(v, {Type::kInode, kRootIno, ""}));
  EXPECT_TRUE(Has(v, {Type::kInode, Folder("team/app"), ""}));
  EXPECT_TRUE(Has(v, {Type::kInode, Tags("team/app"), ""}));
  EXPECT_TRUE(Has(v, {Type::kEntry, kRootIno, "team"}));
  EXPECT_FALSE(Has(v, {Type::kEntry, Folder("team"), "app"}));  // dropped with "team"
}

TEST_F(ChangeNotifierTest, TheSweepDropsListingsAndTargetsButNotNames) {
  // Names and attributes time out by themselves; what the kernel keeps until told is the
  // listings and symlink targets, and those are what the periodic sweep drops.
  Walk("team/app/_tags");
  auto v = InvalidateUntimedCaches(*tree_);
  EXPECT_TRUE(Has(v, {Type::kInode, kRootIno, ""}));
  EXPECT_TRUE(Has(v, {Type::kInode, Folder("team/app"), ""}));
  EXPECT_TRUE(Has(v, {Type::kInode, Tags("team/app"), ""}));
  for (const Invalidation& i : v) EXPECT_EQ(i.type, Type::kInode);
}

}  // namespace
}  // namespace regfs::fused
