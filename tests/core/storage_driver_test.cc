// The StorageDriver contract, checked for every driver.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "test_drivers.h"

namespace regfs {
namespace {

class StorageDriverTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { driver_ = factory_.Make(); }
  testing::DriverFactory factory_{GetParam()};
  std::shared_ptr<StorageDriver> driver_;
};

TEST_P(StorageDriverTest, PutGetAndReplace) {
  ASSERT_TRUE(driver_->PutContent("a/b/c", "one", true).ok());
  EXPECT_EQ(*driver_->GetContent("a/b/c", 100), "one");
  ASSERT_TRUE(driver_->PutContent("a/b/c", "two!", false).ok());
  EXPECT_EQ(*driver_->GetContent("a/b/c", 100), "two!");
  auto info = driver_->Stat("a/b/c");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 4u);
  EXPECT_FALSE(info->is_directory);
  auto dir = driver_->Stat("a/b");
  ASSERT_TRUE(dir.ok());
  EXPECT_TRUE(dir->is_directory);
}

TEST_P(StorageDriverTest, MissingIsNotFound) {
  EXPECT_TRUE(driver_->Stat("nope").status().IsNotFound());
  EXPECT_TRUE(driver_->GetContent("nope", 10).status().IsNotFound());
  EXPECT_TRUE(driver_->OpenReader("nope", 0).status().IsNotFound());
  EXPECT_TRUE(driver_->List("nope").status().IsNotFound());
  EXPECT_TRUE(driver_->Delete("nope").IsNotFound());
  EXPECT_TRUE(driver_->Move("nope", "x").IsNotFound());
}

TEST_P(StorageDriverTest, GetContentHonoursLimit) {
  ASSERT_TRUE(driver_->PutContent("big", std::string(100, 'x'), false).ok());
  EXPECT_EQ(driver_->GetContent("big", 10).status().code(), Status::Code::kResourceExhausted);
}

TEST_P(StorageDriverTest, WriterAppendsAndReaderSeeks) {
  {
    auto w = driver_->OpenWriter("up/data", false);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("hello ", 6).ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  {
    auto w = driver_->OpenWriter("up/data", true);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ((*w)->size(), 6u);
    ASSERT_TRUE((*w)->Write("world", 5).ok());
    EXPECT_EQ((*w)->size(), 11u);
  }
  auto r = driver_->OpenReader("up/data", 6);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->size(), 11u);
  char buf[32];
  auto n = (*r)->Read(buf, sizeof buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "world");
  EXPECT_EQ(*(*r)->Read(buf, sizeof buf), 0u);
}

TEST_P(StorageDriverTest, ListMoveDelete) {
  ASSERT_TRUE(driver_->PutContent("d/x", "1", false).ok());
  ASSERT_TRUE(driver_->PutContent("d/y/z", "2", false).ok());
  auto names = driver_->List("d");
  ASSERT_TRUE(names.ok());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"x", "y"}));
  ASSERT_TRUE(driver_->Move("d/x", "e/f/x2").ok());
  EXPECT_TRUE(driver_->Stat("d/x").status().IsNotFound());
  EXPECT_EQ(*driver_->GetContent("e/f/x2", 10), "1");
  ASSERT_TRUE(driver_->PutContent("e/f/x3", "3", false).ok());
  ASSERT_TRUE(driver_->Move("e/f/x3", "e/f/x2").ok());  // replaces
  EXPECT_EQ(*driver_->GetContent("e/f/x2", 10), "3");
  ASSERT_TRUE(driver_->Delete("d").ok());
  EXPECT_TRUE(driver_->Stat("d/y/z").status().IsNotFound());
}

TEST_P(StorageDriverTest, LockHasOneHolderAtATime) {
  // Another driver on the same storage stands for another process.
  std::shared_ptr<StorageDriver> other = driver_;
  if (!factory_.root().empty()) {
    auto second = NewFilesystemDriver(factory_.root());
    ASSERT_TRUE(second.ok());
    other = *second;
  }
  auto held = driver_->Lock("repository:a");
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  std::atomic<bool> granted{false};
  std::thread waiter([&] {
    auto lock = other->Lock("repository:a");
    EXPECT_TRUE(lock.ok());
    granted = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(granted.load()) << "a second holder got the lock while the first held it";
  held->reset();
  waiter.join();
  EXPECT_TRUE(granted.load());
}

TEST_P(StorageDriverTest, RefusesPathsThatEscape) {
  for (const char* bad : {"", "/abs", "a/../b", "..", "./a", "a//b", "a/"}) {
    EXPECT_EQ(driver_->PutContent(bad, "x", false).code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_FALSE(driver_->Stat(bad).ok()) << bad;
  }
}

INSTANTIATE_TEST_SUITE_P(AllDrivers, StorageDriverTest, ::testing::Values("filesystem", "inmemory"),
                         testing::DriverName);

TEST(FilesystemDriverTest, UnwritableRootIsRefused) {
  auto d = NewFilesystemDriver("/proc/version/registry");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("/proc/version/registry"), std::string::npos);
}

TEST(FilesystemDriverTest, ReadersExposeAFileDescriptor) {
  testing::DriverFactory f("filesystem");
  auto d = f.Make();
  EXPECT_TRUE(d->capabilities().fd_backed_reads);
  ASSERT_TRUE(d->PutContent("x", "abc", false).ok());
  auto r = d->OpenReader("x", 0);
  ASSERT_TRUE(r.ok());
  EXPECT_GE((*r)->fd(), 0);
}

}  // namespace
}  // namespace regfs
