// The StorageDriver contract, checked for every driver.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
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
    ASSERT_TRUE((*w)->Close().ok());
  }
  {
    auto w = driver_->OpenWriter("up/data", true);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("world", 5).ok());
    EXPECT_EQ((*w)->size(), 11u);
    ASSERT_TRUE((*w)->Close().ok());
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

// Content larger than a multipart part, appended to across writers (each one a separate
// request on an object store, as an upload's chunks are), read back whole and at offsets.
TEST_P(StorageDriverTest, AppendsAcrossWritersAndPartsKeepEveryByte) {
  const size_t part = 5 << 20;
  std::string expected;
  for (size_t chunk : {part + 123, size_t{1000}, part / 2, size_t{1}}) {
    std::string bytes(chunk, '\0');
    for (size_t i = 0; i < chunk; ++i) bytes[i] = static_cast<char>((expected.size() + i) * 7 % 251);
    auto w = driver_->OpenWriter("big/data", !expected.empty());
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(bytes.data(), bytes.size()).ok());
    ASSERT_TRUE((*w)->Close().ok());
    expected += bytes;
    EXPECT_EQ((*w)->size(), expected.size());
    ASSERT_EQ(driver_->Stat("big/data")->size, expected.size());
  }
  auto r = driver_->OpenReader("big/data", 0);
  ASSERT_TRUE(r.ok());
  std::string got;
  std::vector<char> buf(1 << 20);
  while (true) {
    auto n = (*r)->Read(buf.data(), buf.size());
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n == 0) break;
    got.append(buf.data(), *n);
  }
  EXPECT_TRUE(got == expected) << "content differs after " << got.size() << " bytes";
  // Positioned reads: across the first part boundary, and past the end.
  char small[64];
  auto n = (*r)->ReadAt(part - 10, small, sizeof small);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(small, *n), expected.substr(part - 10, sizeof small));
  EXPECT_EQ(*(*r)->ReadAt(expected.size() - 3, small, sizeof small), 3u);
  EXPECT_EQ(*(*r)->ReadAt(expected.size(), small, sizeof small), 0u);
  // Moving it keeps every byte too (a multipart copy on an object store).
  ASSERT_TRUE(driver_->Move("big/data", "blobs/moved").ok());
  EXPECT_TRUE(driver_->Stat("big/data").status().IsNotFound());
  auto moved = driver_->OpenReader("blobs/moved", expected.size() - part);
  ASSERT_TRUE(moved.ok());
  std::string tail;
  while (true) {
    auto m = (*moved)->Read(buf.data(), buf.size());
    ASSERT_TRUE(m.ok());
    if (*m == 0) break;
    tail.append(buf.data(), *m);
  }
  EXPECT_TRUE(tail == expected.substr(expected.size() - part));
}

// An appending writer that is dropped without Close publishes nothing new on an object
// store; a filesystem may keep a prefix. Either way the old content is intact.
TEST_P(StorageDriverTest, DroppedWriterKeepsTheOldContent) {
  ASSERT_TRUE(driver_->PutContent("w/data", "old", false).ok());
  {
    auto w = driver_->OpenWriter("w/data", true);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write("new", 3).ok());
  }
  auto content = driver_->GetContent("w/data", 100);
  ASSERT_TRUE(content.ok());
  EXPECT_TRUE(content->starts_with("old")) << *content;
  if (!driver_->capabilities().atomic_move) {
    EXPECT_EQ(*content, "old");
  }
}

TEST_P(StorageDriverTest, ListsAreCompleteBeyondOnePage) {
  if (factory_.kind() != "s3") GTEST_SKIP() << "pages are an object store's";
  // More children than one ListObjectsV2 page (1000) holds.
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      for (int i = t; i < 1005; i += 8) {
        EXPECT_TRUE(driver_->PutContent("many/" + std::to_string(i) + "/link", "x", false).ok());
      }
    });
  }
  for (auto& w : writers) w.join();
  auto names = driver_->List("many");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), 1005u);
  ASSERT_TRUE(driver_->Delete("many").ok());
  EXPECT_TRUE(driver_->List("many").status().IsNotFound());
}

TEST_P(StorageDriverTest, SignedUrlsWhereOffered) {
  ASSERT_TRUE(driver_->PutContent("s/data", "signed", false).ok());
  auto url = driver_->SignedURL("s/data", std::chrono::seconds(60));
  EXPECT_EQ(url.ok(), driver_->capabilities().presigned_urls) << url.status().ToString();
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
  std::shared_ptr<StorageDriver> other = factory_.MakeSecond();
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

// An object store's lock is a lease with an expiry: its holder renews it, so holding it
// longer than the expiry keeps others out; a lease whose holder died is taken over.
TEST_P(StorageDriverTest, LeasesOutliveTheirExpiryWhileHeldOnly) {
  if (factory_.kind() != "s3") GTEST_SKIP() << "leases are an object store's";
  std::shared_ptr<StorageDriver> other = factory_.MakeSecond();
  auto held = driver_->Lock("repository:slow");
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  std::atomic<bool> granted{false};
  std::thread waiter([&] {
    auto lock = other->Lock("repository:slow");
    EXPECT_TRUE(lock.ok()) << lock.status().ToString();
    granted = true;
  });
  std::this_thread::sleep_for(std::chrono::seconds(13));  // beyond the 10 s expiry
  EXPECT_FALSE(granted.load()) << "the lease was taken over while its holder held it";
  EXPECT_TRUE((*held)->held()) << "renewed all along, so still sure of it";
  held->reset();
  waiter.join();
  EXPECT_TRUE(granted.load());

  // A holder that died: its lease object stays, expired. (FNV-1a 64 of the name, as the
  // driver names lease objects.)
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : std::string("repository:dead")) h = (h ^ c) * 1099511628211ull;
  char name[17];
  std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(h));
  ASSERT_TRUE(driver_->PutContent(std::string("regfs/leases/") + name,
                                  "token someone-else\nexpires 1000\n", false)
                  .ok());
  auto start = std::chrono::steady_clock::now();
  auto taken = other->Lock("repository:dead");
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));

  // A lease another process took over (its object replaced behind the holder's back): the
  // holder's next renewal is refused and it stops counting itself the holder.
  EXPECT_TRUE((*taken)->held());
  ASSERT_TRUE(driver_->PutContent(std::string("regfs/leases/") + name,
                                  "token usurper\nexpires 99999999999\n", false)
                  .ok());
  for (int i = 0; i < 80 && (*taken)->held(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE((*taken)->held()) << "a lease taken over still counts as held";
}

TEST_P(StorageDriverTest, CreateContentHasOneWinner) {
  ASSERT_TRUE(driver_->CreateContent("log/1", "first").ok());
  EXPECT_EQ(driver_->CreateContent("log/1", "second").code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(*driver_->GetContent("log/1", 100), "first");

  // Racing creators of one path, through separate drivers as separate processes would be.
  constexpr int kCreators = 6;
  std::atomic<int> won{0}, lost{0};
  std::vector<std::thread> creators;
  for (int i = 0; i < kCreators; ++i) {
    creators.emplace_back([&, i, d = factory_.MakeSecond()] {
      Status s = d->CreateContent("log/2", "creator " + std::to_string(i));
      if (s.ok()) won++;
      else if (s.code() == Status::Code::kAlreadyExists) lost++;
      else ADD_FAILURE() << s.ToString();
    });
  }
  for (auto& t : creators) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(lost.load(), kCreators - 1);
  EXPECT_EQ(driver_->GetContent("log/2", 100)->rfind("creator ", 0), 0u);
  // No temporary file of a loser remains to be listed.
  EXPECT_EQ(driver_->List("log")->size(), 2u);

  ASSERT_TRUE(driver_->Delete("log/1").ok());
  EXPECT_TRUE(driver_->CreateContent("log/1", "again").ok());
}

TEST_P(StorageDriverTest, LeasesHaveOneHolderAndNeverWait) {
  auto other_process = factory_.MakeSecond();
  auto held = driver_->TryLease("notify:ci");
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_EQ(other_process->TryLease("notify:ci").status().code(),
            Status::Code::kFailedPrecondition);
  EXPECT_EQ(driver_->TryLease("notify:ci").status().code(), Status::Code::kFailedPrecondition);
  // A lease is no Lock: the lock of the same name is free, and the lease of another name too.
  EXPECT_TRUE(driver_->Lock("notify:ci").ok());
  EXPECT_TRUE(other_process->TryLease("notify:cd").ok());
  held->reset();
  EXPECT_TRUE(other_process->TryLease("notify:ci").ok());
}

TEST_P(StorageDriverTest, RefusesPathsThatEscape) {
  for (const char* bad : {"", "/abs", "a/../b", "..", "./a", "a//b", "a/"}) {
    EXPECT_EQ(driver_->PutContent(bad, "x", false).code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_FALSE(driver_->Stat(bad).ok()) << bad;
  }
}

INSTANTIATE_TEST_SUITE_P(AllDrivers, StorageDriverTest, ::testing::ValuesIn(testing::TestDriverKinds()),
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
