// The durable change log, on every driver: dense numbering across processes, cursors,
// retention and what a reader left behind by retention is told.
#include "regfs/core/change_log.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "test_drivers.h"

namespace regfs {
namespace {

class ChangeLogTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { driver_ = factory_.Make(); }
  // The log as another process on the same storage sees it.
  std::shared_ptr<ChangeLog> OpenAnother() { return OpenChangeLog(factory_.MakeSecond()); }

  testing::DriverFactory factory_{GetParam()};
  std::shared_ptr<StorageDriver> driver_;
};

LogRetention TrimAtOnce() {
  LogRetention r;
  r.min_age = std::chrono::seconds(0);
  return r;
}

TEST_P(ChangeLogTest, AppendsAreNumberedAndReadInOrder) {
  auto log = OpenChangeLog(driver_);
  EXPECT_EQ(*log->Newest(), 0u);
  auto empty = log->Read(0, 10);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->entries.empty());
  EXPECT_EQ(empty->last, 0u);

  const auto before = std::chrono::system_clock::now() - std::chrono::seconds(1);
  EXPECT_EQ(*log->Append(R"({"n":1})"), 1u);
  EXPECT_EQ(*log->Append("two\nlines"), 2u);
  EXPECT_EQ(*log->Append(""), 3u);

  auto batch = log->Read(0, 2);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->entries.size(), 2u);
  EXPECT_EQ(batch->entries[0].sequence, 1u);
  EXPECT_EQ(batch->entries[0].body, R"({"n":1})");
  EXPECT_GT(batch->entries[0].time, before);
  EXPECT_EQ(batch->entries[1].body, "two\nlines");
  EXPECT_EQ(batch->last, 2u);
  EXPECT_FALSE(batch->gap);
  auto rest = log->Read(batch->last, 10);
  ASSERT_EQ(rest->entries.size(), 1u);
  EXPECT_EQ(rest->entries[0].body, "");
  EXPECT_TRUE(log->Read(3, 10)->entries.empty());
  EXPECT_EQ(*OpenAnother()->Newest(), 3u);

  EXPECT_EQ(log->Append(std::string(ChangeLog::kMaxBodyBytes + 1, 'x')).status().code(),
            Status::Code::kInvalidArgument);
}

TEST_P(ChangeLogTest, ProcessesAppendingTogetherShareOneDenseSequence) {
  constexpr int kAppenders = 4;
  const int kEach = GetParam() == "s3" ? 10 : 40;  // each append is a request there
  std::vector<std::thread> appenders;
  for (int a = 0; a < kAppenders; ++a) {
    appenders.emplace_back([&, a, log = OpenAnother()] {
      for (int i = 0; i < kEach; ++i) {
        auto n = log->Append(std::to_string(a) + "/" + std::to_string(i));
        ASSERT_TRUE(n.ok()) << n.status().ToString();
      }
    });
  }
  for (auto& t : appenders) t.join();

  auto batch = OpenAnother()->Read(0, 1000);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->entries.size(), static_cast<size_t>(kAppenders * kEach));
  std::set<std::string> bodies;
  std::vector<int> last_seen(kAppenders, -1);
  for (size_t i = 0; i < batch->entries.size(); ++i) {
    const auto& e = batch->entries[i];
    EXPECT_EQ(e.sequence, i + 1);
    bodies.insert(e.body);
    // Each appender's own entries keep its order.
    const int a = std::stoi(e.body), k = std::stoi(e.body.substr(e.body.find('/') + 1));
    EXPECT_EQ(k, last_seen[a] + 1);
    last_seen[a] = k;
  }
  EXPECT_EQ(bodies.size(), static_cast<size_t>(kAppenders * kEach));
}

TEST_P(ChangeLogTest, ADamagedEntryIsReadNotFatal) {
  auto log = OpenChangeLog(driver_);
  ASSERT_TRUE(log->Append("one").ok());
  // What a foreign writer or a damaged disk could leave: no time line.
  ASSERT_TRUE(driver_->CreateContent("regfs/log/entries/00000000000000000002", "garbage").ok());
  ASSERT_TRUE(log->Append("three").ok());
  auto batch = log->Read(0, 10);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->entries.size(), 3u);
  EXPECT_EQ(batch->entries[1].body, "garbage");
  EXPECT_EQ(batch->entries[2].body, "three");
}

TEST_P(ChangeLogTest, ARestartedProcessContinuesTheNumbering) {
  auto log = OpenChangeLog(driver_);
  for (int i = 1; i <= 150; ++i) ASSERT_EQ(*log->Append("e"), uint64_t(i));
  // A new process finds the end from the head hint, not from 1.
  auto later = OpenAnother();
  EXPECT_EQ(*later->Newest(), 150u);
  EXPECT_EQ(*later->Append("after restart"), 151u);
  // The first process learns of the other's entry by losing the create, and moves on.
  EXPECT_EQ(*log->Append("old process"), 152u);
}

TEST_P(ChangeLogTest, IdentityIsMadeOnceAndSharedByAll) {
  auto first = OpenChangeLog(driver_)->Identity();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->size(), 36u);
  EXPECT_EQ(*OpenAnother()->Identity(), *first);
}

TEST_P(ChangeLogTest, CursorsAreDurablePerConsumer) {
  auto log = OpenChangeLog(driver_);
  EXPECT_FALSE(log->LoadCursor("webhook.ci")->has_value());
  ASSERT_TRUE(log->SaveCursor("webhook.ci", 7).ok());
  ASSERT_TRUE(log->SaveCursor("gc", 3).ok());
  EXPECT_EQ(**OpenAnother()->LoadCursor("webhook.ci"), 7u);
  EXPECT_EQ(**OpenAnother()->LoadCursor("gc"), 3u);
  ASSERT_TRUE(log->DropCursor("gc").ok());
  EXPECT_FALSE(log->LoadCursor("gc")->has_value());
  EXPECT_TRUE(log->DropCursor("gc").ok());
  for (std::string_view bad : {"", "..", "a/b", "UPPER", "../../etc"}) {
    EXPECT_EQ(log->SaveCursor(bad, 1).code(), Status::Code::kInvalidArgument) << bad;
  }
}

TEST_P(ChangeLogTest, TrimKeepsWhatConsumersStillNeed) {
  auto log = OpenChangeLog(driver_);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(log->Append("e" + std::to_string(i + 1)).ok());
  ASSERT_TRUE(log->SaveCursor("slow", 4).ok());
  ASSERT_TRUE(log->SaveCursor("fast", 9).ok());

  auto report = log->Trim(TrimAtOnce());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->removed, 4u);  // 1..4: everyone handled them
  EXPECT_EQ(report->floor, 5u);
  EXPECT_TRUE(report->overrun.empty());
  EXPECT_EQ(log->Read(4, 100)->entries.front().sequence, 5u);

  // Nothing younger than min_age goes, whatever the consumers say.
  ASSERT_TRUE(log->SaveCursor("slow", 9).ok());
  EXPECT_EQ(log->Trim(LogRetention{})->removed, 0u);

  // The count limit overrides a consumer that fell behind; it is told of the gap.
  ASSERT_TRUE(log->SaveCursor("slow", 5).ok());
  LogRetention tight = TrimAtOnce();
  tight.max_entries = 2;
  report = log->Trim(tight);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->floor, 9u);
  EXPECT_EQ(report->overrun, std::vector<std::string>{"slow"});
  auto behind = log->Read(5, 100);
  ASSERT_TRUE(behind.ok());
  EXPECT_TRUE(behind->gap);
  ASSERT_EQ(behind->entries.size(), 2u);
  EXPECT_EQ(behind->entries[0].sequence, 9u);
  EXPECT_EQ(behind->entries[0].body, "e9");

  // The newest entry always stays, so the numbering never restarts.
  ASSERT_TRUE(log->SaveCursor("slow", 10).ok());
  ASSERT_TRUE(log->SaveCursor("fast", 10).ok());
  EXPECT_EQ(log->Trim(TrimAtOnce())->floor, 10u);
  EXPECT_EQ(*OpenAnother()->Append("e11"), 11u);
  EXPECT_EQ(*OpenAnother()->Newest(), 11u);
}

TEST_P(ChangeLogTest, WithoutConsumersEntriesGoOnceOldEnough) {
  auto log = OpenChangeLog(driver_);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(log->Append("e").ok());
  auto report = log->Trim(TrimAtOnce());
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->removed, 4u);
  EXPECT_EQ(*log->Newest(), 5u);
}

INSTANTIATE_TEST_SUITE_P(AllDrivers, ChangeLogTest, ::testing::ValuesIn(testing::TestDriverKinds()),
                         testing::DriverName);

}  // namespace
}  // namespace regfs
