// The journal change feed of a filesystem storage: several writers, torn lines, rotation,
// readers resuming and falling behind; and the registry emitting an event for every change.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "regfs/core/change_feed.h"
#include "regfs/core/registry.h"
#include "test_drivers.h"

namespace regfs {
namespace {

namespace fs = std::filesystem;

class RecordingListener : public ChangeListener {
 public:
  void OnChange(const ChangeEvent& e) override {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
  }
  std::vector<ChangeEvent::Kind> Kinds() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<ChangeEvent::Kind> out;
    for (const auto& e : events) out.push_back(e.kind);
    return out;
  }
  std::mutex mu;
  std::vector<ChangeEvent> events;
};

ChangeEvent TagSet(const std::string& repo, const std::string& tag) {
  return ChangeEvent{.kind = ChangeEvent::Kind::kTagSet, .repository = repo, .tag = tag};
}

class ChangeJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    driver_ = factory_.Make();
    dir_ = JournalDirectory(factory_.root());
  }

  // A feed on the journal, as another process would open it.
  std::shared_ptr<ChangeFeed> Open(uint64_t segment_bytes = 1 << 20, size_t max_segments = 4) {
    auto feed = OpenJournalFeed({.directory = dir_,
                                 .segment_bytes = segment_bytes,
                                 .max_segments = max_segments,
                                 .on_error = [this](const Status& s) { errors_.push_back(s); }});
    EXPECT_TRUE(feed.ok()) << feed.status().ToString();
    return *feed;
  }

  // Reads everything after `cursor`, in batches of `batch` events.
  ChangeBatch ReadAll(ChangeFeed& feed, ChangeCursor cursor, size_t batch = 1000) {
    ChangeBatch all;
    all.next = cursor;
    while (true) {
      auto b = feed.Read(all.next, batch);
      EXPECT_TRUE(b.ok()) << b.status().ToString();
      if (!b.ok()) return all;
      all.gap |= b->gap;
      bool moved = !(b->next == all.next);
      all.next = b->next;
      for (auto& e : b->events) all.events.push_back(std::move(e));
      if (b->events.empty() && !moved) return all;
    }
  }

  std::vector<std::string> Segments() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  testing::DriverFactory factory_{"filesystem"};
  std::shared_ptr<StorageDriver> driver_;
  std::string dir_;
  std::vector<Status> errors_;
};

TEST_F(ChangeJournalTest, LivesOutsideTheRegistryTree) {
  EXPECT_FALSE(dir_.find("docker/registry/v2") != std::string::npos);
  Open();
  EXPECT_TRUE(fs::is_directory(dir_));
}

TEST_F(ChangeJournalTest, EventsRoundTripWithEveryField) {
  auto feed = Open();
  auto start = feed->End();
  ASSERT_TRUE(start.ok());
  auto digest = Digest::Parse("sha256:" + std::string(64, 'a'));
  ASSERT_TRUE(digest.ok());
  ChangeEvent in{.kind = ChangeEvent::Kind::kBlobLinked,
                 .repository = "team/app",
                 .digest = *digest,
                 .tag = "v1",
                 .media_type = "application/vnd.oci.image.layer.v1.tar+gzip",
                 .size = 12345,
                 .from_repository = "base/os",
                 .upload_id = "u-1"};
  feed->Publisher()->OnChange(in);
  auto batch = feed->Read(*start, 10);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->events.size(), 1u);
  const ChangeEvent& out = batch->events[0];
  EXPECT_EQ(out.kind, in.kind);
  EXPECT_EQ(out.repository, in.repository);
  EXPECT_EQ(out.digest->ToString(), in.digest->ToString());
  EXPECT_EQ(out.tag, in.tag);
  EXPECT_EQ(out.media_type, in.media_type);
  EXPECT_EQ(out.size, in.size);
  EXPECT_EQ(out.from_repository, in.from_repository);
  EXPECT_EQ(out.upload_id, in.upload_id);
  EXPECT_FALSE(batch->gap);
  // Up to date: nothing more, the cursor stays.
  auto again = feed->Read(batch->next, 10);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->events.empty());
  EXPECT_EQ(again->next, batch->next);
}

TEST_F(ChangeJournalTest, EmptyJournalThenFirstEvent) {
  auto feed = Open();
  auto start = feed->End();
  ASSERT_TRUE(start.ok());
  auto none = feed->Read(*start, 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->events.empty());
  EXPECT_FALSE(none->gap);
  feed->Publisher()->OnChange(TagSet("a", "1"));
  auto one = ReadAll(*feed, *start);
  ASSERT_EQ(one.events.size(), 1u);
  EXPECT_FALSE(one.gap);
}

// Two registries (as regfs-httpd and regfs-fused would be) publishing into one journal from
// several threads each: every event arrives once, whole, and each writer's in its order.
TEST_F(ChangeJournalTest, TwoRegistriesWriteConcurrently) {
  auto feed_a = Open(4096, 64);
  auto feed_b = Open(4096, 64);
  auto start = feed_a->End();
  ASSERT_TRUE(start.ok());
  auto reg_a = Registry::Open({.driver = driver_, .listeners = {feed_a->Publisher()}});
  auto reg_b = Registry::Open({.driver = driver_, .listeners = {feed_b->Publisher()}});
  ASSERT_TRUE(reg_a.ok() && reg_b.ok());
  constexpr int kUploads = 50;
  auto work = [&](Registry& reg, const std::string& repo) {
    for (int i = 0; i < kUploads; ++i) ASSERT_TRUE(reg.StartUpload(repo).ok());
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back(work, std::ref(**reg_a), "a/r" + std::to_string(t));
    threads.emplace_back(work, std::ref(**reg_b), "b/r" + std::to_string(t));
  }
  for (auto& t : threads) t.join();
  ChangeBatch all = ReadAll(*feed_b, *start, 7);
  EXPECT_FALSE(all.gap);
  ASSERT_EQ(all.events.size(), 4u * kUploads);
  std::map<std::string, int> per_repo;
  std::set<std::string> ids;
  for (const auto& e : all.events) {
    EXPECT_EQ(e.kind, ChangeEvent::Kind::kUploadStarted);
    per_repo[e.repository]++;
    ids.insert(e.upload_id);
  }
  EXPECT_EQ(ids.size(), 4u * kUploads);
  for (const auto& [repo, n] : per_repo) EXPECT_EQ(n, kUploads) << repo;
  EXPECT_GT(Segments().size(), 1u);  // 200 lines do not fit in 4 KiB: it rotated meanwhile
  EXPECT_TRUE(errors_.empty());
}

// A writer killed inside write() leaves a line without its newline; the next writer seals it.
TEST_F(ChangeJournalTest, TornLastLineIsSkipped) {
  auto feed = Open();
  auto start = feed->End();
  ASSERT_TRUE(start.ok());
  feed->Publisher()->OnChange(TagSet("a", "1"));
  auto segments = Segments();
  ASSERT_EQ(segments.size(), 1u);
  {
    std::ofstream torn(dir_ + "/" + segments[0], std::ios::app);
    torn << R"({"kind":"tag_set","repository":"a","ta)";
  }
  // The torn line alone: the reader waits for the rest of it, without a gap.
  auto first = ReadAll(*feed, *start);
  ASSERT_EQ(first.events.size(), 1u);
  EXPECT_FALSE(first.gap);
  // A later writer (another process) goes on: its event is read, the torn one reported.
  Open()->Publisher()->OnChange(TagSet("a", "2"));
  auto rest = ReadAll(*feed, first.next);
  ASSERT_EQ(rest.events.size(), 1u);
  EXPECT_EQ(rest.events[0].tag, "2");
  EXPECT_TRUE(rest.gap);
}

TEST_F(ChangeJournalTest, TornTailOfAFullSegmentDoesNotStopTheReader) {
  // A writer killed mid-line at the end of a segment that is full: the next writer starts the
  // next segment, and the reader must leave the torn tail behind (as a gap) to follow it.
  auto feed = Open(512, 4);
  auto start = feed->End();
  ASSERT_TRUE(start.ok());
  feed->Publisher()->OnChange(TagSet("a", "1"));
  auto segments = Segments();
  ASSERT_EQ(segments.size(), 1u);
  {
    std::ofstream torn(dir_ + "/" + segments[0], std::ios::app);
    torn << R"({"kind":"tag_set","repository":"a","tag":")" << std::string(600, 'x');
  }
  auto first = ReadAll(*feed, *start);
  ASSERT_EQ(first.events.size(), 1u);
  Open(512, 4)->Publisher()->OnChange(TagSet("a", "2"));
  ASSERT_EQ(Segments().size(), 2u);
  auto rest = ReadAll(*feed, first.next);
  ASSERT_EQ(rest.events.size(), 1u);
  EXPECT_EQ(rest.events[0].tag, "2");
  EXPECT_TRUE(rest.gap);
}

TEST_F(ChangeJournalTest, RotationKeepsAReaderThatKeepsUp) {
  auto feed = Open(1024, 3);
  auto cursor = feed->End();
  ASSERT_TRUE(cursor.ok());
  ChangeCursor at = *cursor;
  auto publisher = feed->Publisher();
  int seen = 0;
  for (int i = 0; i < 300; ++i) {
    publisher->OnChange(TagSet("repo", "t" + std::to_string(i)));
    if (i % 5 == 4) {
      auto b = ReadAll(*feed, at, 3);
      EXPECT_FALSE(b.gap) << "at event " << i;
      for (const auto& e : b.events) EXPECT_EQ(e.tag, "t" + std::to_string(seen++));
      at = b.next;
    }
  }
  EXPECT_EQ(seen, 300);
  EXPECT_LE(Segments().size(), 3u);  // bounded: older segments were deleted
  EXPECT_GT(at.segment, 3u);
}

TEST_F(ChangeJournalTest, ReaderResumesFromItsCursorInAnotherProcess) {
  auto writer = Open(2048, 8)->Publisher();
  auto start = Open()->End();
  ASSERT_TRUE(start.ok());
  for (int i = 0; i < 40; ++i) writer->OnChange(TagSet("r", std::to_string(i)));
  auto first = Open()->Read(*start, 15);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->events.size(), 15u);
  // A new reader (a restarted process) given the saved cursor continues exactly there.
  auto rest = ReadAll(*Open(2048, 8), first->next);
  ASSERT_EQ(rest.events.size(), 25u);
  EXPECT_EQ(rest.events.front().tag, "15");
  EXPECT_EQ(rest.events.back().tag, "39");
  EXPECT_FALSE(rest.gap);
}

TEST_F(ChangeJournalTest, ReaderFallenBehindIsToldSo) {
  auto feed = Open(512, 2);
  auto start = feed->End();
  ASSERT_TRUE(start.ok());
  auto publisher = feed->Publisher();
  for (int i = 0; i < 100; ++i) publisher->OnChange(TagSet("r", std::to_string(i)));
  auto b = feed->Read(*start, 1000);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->gap);
  auto end = feed->End();
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(b->next, *end);
  // From there on it reads normally again.
  publisher->OnChange(TagSet("r", "after"));
  auto after = ReadAll(*feed, b->next);
  ASSERT_EQ(after.events.size(), 1u);
  EXPECT_EQ(after.events[0].tag, "after");
  EXPECT_FALSE(after.gap);
}

TEST_F(ChangeJournalTest, JournalResetIsAGap) {
  auto feed = Open();
  auto publisher = feed->Publisher();
  publisher->OnChange(TagSet("r", "1"));
  auto end = feed->End();
  ASSERT_TRUE(end.ok());
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  auto b = feed->Read(*end, 10);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->gap);
  publisher->OnChange(TagSet("r", "2"));  // the writer notices its segment is gone
  auto after = ReadAll(*feed, b->next);
  ASSERT_EQ(after.events.size(), 1u);
  EXPECT_EQ(after.events[0].tag, "2");
}

TEST_F(ChangeJournalTest, RemovedJournalIsStartedAgain) {
  auto feed = Open();
  auto publisher = feed->Publisher();
  publisher->OnChange(TagSet("r", "1"));
  fs::remove_all(fs::path(dir_).parent_path());
  publisher->OnChange(TagSet("r", "2"));
  auto all = ReadAll(*feed, ChangeCursor{});
  ASSERT_EQ(all.events.size(), 1u);
  EXPECT_EQ(all.events[0].tag, "2");
  EXPECT_TRUE(errors_.empty());
}

TEST_F(ChangeJournalTest, UnusableDirectoryIsAnErrorAtOpen) {
  auto feed = OpenJournalFeed({.directory = "/dev/null/changes"});
  EXPECT_FALSE(feed.ok());
}

TEST_F(ChangeJournalTest, PublishingFailuresNeverFailTheRegistry) {
  auto feed = Open();
  auto reg = Registry::Open({.driver = driver_, .listeners = {feed->Publisher()}});
  ASSERT_TRUE(reg.ok());
  // The journal's place is taken by a file: the upload still starts, the failure is
  // reported (once per interval, however many events fail).
  fs::remove_all(dir_);
  std::ofstream(dir_) << "not a directory";
  EXPECT_TRUE((*reg)->StartUpload("r").ok());
  EXPECT_TRUE((*reg)->StartUpload("r").ok());
  EXPECT_EQ(errors_.size(), 1u);
}

// Every change the mount shows produces an event carrying what names the changed node.
TEST_F(ChangeJournalTest, EveryMutationEmitsAnEvent) {
  auto rec = std::make_shared<RecordingListener>();
  auto opened = Registry::Open({.driver = driver_, .delete_enabled = true, .listeners = {rec}});
  ASSERT_TRUE(opened.ok());
  Registry& reg = **opened;
  using K = ChangeEvent::Kind;

  auto up = reg.StartUpload("ns/app");
  ASSERT_TRUE(up.ok());
  std::istringstream body("{}");
  ASSERT_TRUE(reg.AppendUpload("ns/app", up->id, body, std::nullopt).ok());
  auto config =
      Digest::Parse("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  ASSERT_TRUE(config.ok());
  ASSERT_TRUE(reg.CommitUpload("ns/app", up->id, *config).ok());
  auto cancelled = reg.StartUpload("ns/app");
  ASSERT_TRUE(cancelled.ok());
  ASSERT_TRUE(reg.CancelUpload("ns/app", cancelled->id).ok());
  EXPECT_EQ(rec->Kinds(), (std::vector<K>{K::kUploadStarted, K::kBlobLinked, K::kUploadEnded,
                                          K::kUploadStarted, K::kUploadEnded}));
  EXPECT_EQ(rec->events[2].upload_id, up->id);

  rec->events.clear();
  const std::string manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      config->ToString() + R"(","size":2},"layers":[]})";
  auto put =
      reg.PutManifest("ns/app", "v1", "application/vnd.oci.image.manifest.v1+json", manifest);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  ASSERT_TRUE(reg.SetTag("ns/app", "v2", put->digest).ok());
  ASSERT_TRUE(reg.RenameTag("ns/app", "v2", "v3").ok());
  ASSERT_TRUE(reg.DeleteManifest("ns/app", "v3").ok());
  ASSERT_TRUE(reg.MountBlob("other", "ns/app", *config).ok());
  ASSERT_TRUE(reg.DeleteBlob("other", *config).ok());
  ASSERT_TRUE(reg.DeleteManifest("ns/app", put->digest.ToString()).ok());
  EXPECT_EQ(rec->Kinds(), (std::vector<K>{K::kManifestPut, K::kTagSet, K::kTagSet, K::kTagSet,
                                          K::kTagDeleted, K::kTagDeleted, K::kBlobLinked,
                                          K::kBlobUnlinked, K::kTagDeleted, K::kManifestDeleted}));
  EXPECT_EQ(rec->events[3].tag, "v3");
  EXPECT_EQ(rec->events[4].tag, "v2");

  rec->events.clear();
  ASSERT_TRUE(reg.DeleteRepository("ns/app").ok());
  ASSERT_TRUE(reg.DeleteRepository("ns").ok());  // the emptied namespace folder
  EXPECT_EQ(rec->Kinds(), (std::vector<K>{K::kRepositoryDeleted, K::kRepositoryDeleted}));
  EXPECT_EQ(rec->events[1].repository, "ns");
}

}  // namespace
}  // namespace regfs
