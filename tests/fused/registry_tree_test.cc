// The file-tree logic of regfs-fused without a kernel: resolution, lookup counting,
// inode identity and the errno each refusal maps to.
#include "registry_tree.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <sstream>

#include "errno_map.h"

namespace regfs::fused {
namespace {

class RegistryTreeTest : public ::testing::Test {
 protected:
  void SetUp() override { registry_ = OpenRegistry(/*delete_enabled=*/true); }

  std::unique_ptr<Registry> OpenRegistry(bool delete_enabled) {
    RegistryOptions o;
    o.driver = driver_;
    o.delete_enabled = delete_enabled;
    auto r = Registry::Open(o);
    EXPECT_TRUE(r.ok());
    return std::move(r).value();
  }

  Digest PushBlob(const std::string& repo, const std::string& content) {
    auto up = registry_->StartUpload(repo);
    std::istringstream body(content);
    EXPECT_TRUE(registry_->AppendUpload(repo, up->id, body, std::nullopt).ok());
    Digest d = Digest::Sha256Of(content);
    EXPECT_TRUE(registry_->CommitUpload(repo, up->id, d).ok());
    return d;
  }

  // Pushes an image (config + one layer) and tags it; returns the manifest digest.
  Digest PushImage(const std::string& repo, const std::string& tag, const std::string& layer) {
    Digest config = PushBlob(repo, "{}");
    Digest l = PushBlob(repo, layer);
    std::string m =
        R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
        config.ToString() +
        R"(","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
        l.ToString() + R"(","size":)" + std::to_string(layer.size()) + "}]}";
    auto put = registry_->PutManifest(repo, tag, "", m);
    EXPECT_TRUE(put.ok()) << put.status().ToString();
    return put->digest;
  }

  // Resolves a slash-separated path from the root, counting lookups like the kernel does.
  Result<NodeAttr> Walk(RegistryTree& tree, const std::string& path) {
    Ino ino = kRootIno;
    Result<NodeAttr> attr = Status::NotFound("empty path");
    std::stringstream ss(path);
    for (std::string part; std::getline(ss, part, '/');) {
      attr = tree.Lookup(ino, part);
      if (!attr.ok()) return attr;
      ino = attr->ino;
    }
    return attr;
  }

  std::vector<std::string> Names(RegistryTree& tree, Ino ino) {
    std::vector<std::string> out;
    auto entries = tree.ReadDir(ino);
    for (const auto& e : *entries) {
      if (e.name != "." && e.name != "..") out.push_back(e.name);
    }
    return out;
  }

  std::shared_ptr<StorageDriver> driver_ = NewInMemoryDriver();
  std::unique_ptr<Registry> registry_;
};

TEST_F(RegistryTreeTest, ResolvesNamespacesRepositoriesAndSpecialFolders) {
  Digest m = PushImage("team/app", "v1", "layer-1");
  RegistryTree tree(*registry_, true);
  EXPECT_EQ(Names(tree, kRootIno), std::vector<std::string>{"team"});
  auto team = Walk(tree, "team");
  ASSERT_TRUE(team.ok());
  EXPECT_TRUE(S_ISDIR(team->mode));
  EXPECT_EQ(Names(tree, team->ino), std::vector<std::string>{"app"});
  auto app = Walk(tree, "team/app");
  EXPECT_EQ(Names(tree, app->ino),
            (std::vector<std::string>{"_tags", "_manifests", "_blobs", "_uploads"}));
  auto tag = Walk(tree, "team/app/_tags/v1");
  ASSERT_TRUE(tag.ok());
  EXPECT_TRUE(S_ISLNK(tag->mode));
  EXPECT_EQ(*tree.ReadLink(tag->ino), "../_manifests/" + m.ToString());
  EXPECT_EQ(tag->size, tree.ReadLink(tag->ino)->size());
  auto manifest = Walk(tree, "team/app/_manifests/" + m.ToString());
  ASSERT_TRUE(manifest.ok());
  EXPECT_TRUE(manifest->immutable);
  EXPECT_EQ(manifest->size, registry_->StatManifest("team/app", "v1")->size);
  // A namespace is not a repository: no special folders under it, nor at the top.
  EXPECT_FALSE(Walk(tree, "_tags").ok());
  EXPECT_FALSE(Walk(tree, "nothere").ok());
  EXPECT_FALSE(Walk(tree, "team/app/_tags/nope").ok());
  EXPECT_FALSE(Walk(tree, "team/app/_manifests/sha256:zz").ok());
}

TEST_F(RegistryTreeTest, ReadsContentByDigest) {
  PushImage("a", "v1", "the layer bytes");
  RegistryTree tree(*registry_, true);
  auto blob = Walk(tree, "a/_blobs/" + Digest::Sha256Of("the layer bytes").ToString());
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(blob->size, 15u);
  auto reader = tree.Open(blob->ino, 4);
  ASSERT_TRUE(reader.ok());
  char buf[64];
  auto n = (*reader)->Read(buf, sizeof buf);
  EXPECT_EQ(std::string(buf, *n), "layer bytes");
}

TEST_F(RegistryTreeTest, SharedLayerIsOneInode) {
  PushImage("one", "v1", "shared");
  PushImage("two", "v1", "shared");
  RegistryTree tree(*registry_, true);
  std::string d = Digest::Sha256Of("shared").ToString();
  auto a = Walk(tree, "one/_blobs/" + d);
  auto b = Walk(tree, "two/_blobs/" + d);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->ino, b->ino);
  // Tags of different repositories are different inodes.
  EXPECT_NE(Walk(tree, "one/_tags/v1")->ino, Walk(tree, "two/_tags/v1")->ino);
}

TEST_F(RegistryTreeTest, InodesAreStableAndMatchReadDir) {
  PushImage("a", "v1", "x");
  RegistryTree tree(*registry_, true);
  auto tags = Walk(tree, "a/_tags");
  auto entries = tree.ReadDir(tags->ino);
  for (const auto& e : *entries) {
    if (e.name == "v1") {
      EXPECT_EQ(e.ino, Walk(tree, "a/_tags/v1")->ino);
    }
  }
  RegistryTree other(*registry_, true);  // another process: same numbers
  EXPECT_EQ(Walk(other, "a/_tags/v1")->ino, Walk(tree, "a/_tags/v1")->ino);
}

TEST_F(RegistryTreeTest, LookupsAreCountedAndForgotten) {
  PushImage("a", "v1", "x");
  RegistryTree tree(*registry_, true);
  EXPECT_EQ(tree.live_nodes(), 0u);
  auto tag = Walk(tree, "a/_tags/v1");  // a, _tags, v1
  ASSERT_TRUE(tag.ok());
  EXPECT_EQ(tree.live_nodes(), 3u);
  ASSERT_TRUE(tree.Lookup(Walk(tree, "a/_tags")->ino, "v1").ok());
  // v1 now has 2 lookups, a and _tags 2 each.
  tree.Forget(tag->ino, 1);
  EXPECT_TRUE(tree.GetAttr(tag->ino).ok());
  tree.Forget(tag->ino, 1);
  EXPECT_FALSE(tree.GetAttr(tag->ino).ok());
  EXPECT_EQ(tree.live_nodes(), 2u);
  tree.Forget(kRootIno, 100);  // the root is never forgotten
  EXPECT_TRUE(tree.GetAttr(kRootIno).ok());
}

TEST_F(RegistryTreeTest, TagOperationsAreRegistryOperations) {
  Digest m1 = PushImage("a", "v1", "x");
  Digest m2 = PushImage("a", "v2", "y");
  RegistryTree tree(*registry_, true);
  Ino tags = Walk(tree, "a/_tags")->ino;

  ASSERT_TRUE(tree.Symlink("../_manifests/" + m1.ToString(), tags, "new").ok());
  EXPECT_EQ(registry_->StatManifest("a", "new")->digest, m1);
  ASSERT_TRUE(tree.Symlink(m2.ToString(), tags, "new").ok());  // moves it
  EXPECT_EQ(registry_->StatManifest("a", "new")->digest, m2);
  ASSERT_TRUE(tree.Rename(tags, "new", tags, "renamed", false).ok());
  EXPECT_FALSE(registry_->StatManifest("a", "new").ok());
  EXPECT_EQ(registry_->StatManifest("a", "renamed")->digest, m2);
  EXPECT_EQ(ErrnoFor(tree.Rename(tags, "renamed", tags, "v1", true)), EEXIST);
  ASSERT_TRUE(tree.Unlink(tags, "renamed").ok());
  EXPECT_FALSE(registry_->StatManifest("a", "renamed").ok());

  EXPECT_EQ(
      ErrnoFor(
          tree.Symlink("../_manifests/" + Digest::Sha256Of("no").ToString(), tags, "t").status()),
      ENOENT);
  EXPECT_EQ(ErrnoFor(tree.Symlink("../_manifests/" + m1.ToString(), tags, "-bad").status()),
            EINVAL);
  EXPECT_EQ(ErrnoFor(tree.Symlink("/etc/passwd", tags, "t").status()), EINVAL);
  EXPECT_EQ(
      ErrnoFor(tree.Symlink("../_manifests/" + m1.ToString(), Walk(tree, "a")->ino, "t").status()),
      EPERM);
}

TEST_F(RegistryTreeTest, DeletesFollowStorageDeleteEnabled) {
  Digest m = PushImage("a", "v1", "x");
  auto locked = OpenRegistry(/*delete_enabled=*/false);
  RegistryTree tree(*locked, true);
  EXPECT_EQ(ErrnoFor(tree.Unlink(Walk(tree, "a/_tags")->ino, "v1")), EPERM);
  EXPECT_EQ(ErrnoFor(tree.Unlink(Walk(tree, "a/_manifests")->ino, m.ToString())), EPERM);
  EXPECT_EQ(Walk(tree, "a/_manifests/" + m.ToString())->mode & 0777, 0444u);

  RegistryTree open_tree(*registry_, true);
  EXPECT_EQ(Walk(open_tree, "a/_manifests/" + m.ToString())->mode & 0777, 0644u);
  ASSERT_TRUE(open_tree.Unlink(Walk(open_tree, "a/_manifests")->ino, m.ToString()).ok());
  EXPECT_FALSE(registry_->StatManifest("a", "v1").ok());  // its tag went with it
}

TEST_F(RegistryTreeTest, ReadOnlyTreeRefusesEverything) {
  Digest m = PushImage("a", "v1", "x");
  RegistryTree tree(*registry_, false);
  Ino tags = Walk(tree, "a/_tags")->ino;
  EXPECT_EQ(ErrnoFor(tree.Unlink(tags, "v1")), EPERM);
  EXPECT_EQ(ErrnoFor(tree.Symlink(m.ToString(), tags, "x").status()), EPERM);
  EXPECT_EQ(ErrnoFor(tree.Rename(tags, "v1", tags, "v2", false)), EPERM);
  EXPECT_EQ(ErrnoFor(tree.Rmdir(kRootIno, "a")), EPERM);
}

TEST_F(RegistryTreeTest, RemovingARepositoryTreeStepByStep) {
  // What `rm -r a` does: unlink every file, rmdir each folder, then the repository.
  Digest m = PushImage("a", "v1", "x");
  PushImage("a/nested", "v1", "y");
  RegistryTree tree(*registry_, true);
  Ino a = Walk(tree, "a")->ino;
  EXPECT_EQ(ErrnoFor(tree.Rmdir(a, "_tags")), EEXIST);  // not empty yet (ENOTEMPTY in the bridge)
  ASSERT_TRUE(tree.Unlink(Walk(tree, "a/_tags")->ino, "v1").ok());
  ASSERT_TRUE(tree.Rmdir(a, "_tags").ok());
  ASSERT_TRUE(tree.Unlink(Walk(tree, "a/_manifests")->ino, m.ToString()).ok());
  Ino blobs = Walk(tree, "a/_blobs")->ino;
  auto blob_entries = tree.ReadDir(blobs);
  for (const auto& e : *blob_entries) {
    if (e.name[0] != '.') {
      Status s = tree.Unlink(blobs, e.name);
      ASSERT_TRUE(s.ok()) << e.name << ": " << s.ToString();
    }
  }
  // "a" still holds the nested repository: it stays.
  EXPECT_EQ(ErrnoFor(tree.Rmdir(kRootIno, "a")), EEXIST);
  EXPECT_TRUE(Walk(tree, "a").ok());
  EXPECT_TRUE(registry_->StatManifest("a/nested", "v1").ok());
}

TEST(ErrnoMapTest, OneTranslationForEveryCode) {
  EXPECT_EQ(ErrnoFor(Status::Ok()), 0);
  EXPECT_EQ(ErrnoFor(Status::NotFound("x")), ENOENT);
  EXPECT_EQ(ErrnoFor(Status::InvalidArgument("x", Status::Reason::kTagInvalid)), EINVAL);
  EXPECT_EQ(ErrnoFor(Status::FailedPrecondition("x", Status::Reason::kUnsupported)), EPERM);
  EXPECT_EQ(ErrnoFor(Status::AlreadyExists("x")), EEXIST);
  EXPECT_EQ(ErrnoFor(Status::ResourceExhausted("x")), ENOSPC);
  EXPECT_EQ(ErrnoFor(Status::IOError("x")), EIO);
}

}  // namespace
}  // namespace regfs::fused
