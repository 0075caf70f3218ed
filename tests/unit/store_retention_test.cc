// Retention: expired final jobs go, their results with them, then every blob no job references;
// live jobs and referenced or freshly committed blobs stay.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/wall_clock.h"
#include "store/data_dir.h"
#include "store/retention.h"
#include "store/sqlite_job_store.h"
#include "support/test_env.h"

namespace steno::store {
namespace {

constexpr int64_t kDay = int64_t{24} * 3600 * 1000;

class StoreRetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SqliteOptions options;
    options.path = DefaultDbPath(dir_.path);
    options.clock = [this] { return now_; };
    auto store = SqliteJobStore::Open(options);
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
    auto blobs = BlobStore::Open(dir_.path + "/blobs");
    ASSERT_TRUE(blobs.ok());
    blobs_.emplace(std::move(blobs).value());
  }

  // A job for an upload of `content`, finished (completed) unless `finish` is false.
  Job JobFor(const std::string& content, bool finish) {
    auto blob = blobs_->Put(content);
    EXPECT_TRUE(blob.ok());
    auto inserted = store_->Insert({"base", Priority::kNormal, {}, blob->digest, ""});
    EXPECT_TRUE(inserted.ok());
    if (finish) {
      EXPECT_TRUE(store_->Claim({"w", 1000, inserted->job.id, {}}).ok());
      EXPECT_TRUE(store_->Complete(inserted->job.id, "w", R"({"segments":[]})").ok());
    }
    return inserted->job;
  }

  test::ScopedTempDir dir_{"steno-retention"};
  int64_t now_ = UnixMillis() - 10 * kDay;
  std::unique_ptr<SqliteJobStore> store_;
  std::optional<BlobStore> blobs_;
};

TEST_F(StoreRetentionTest, ExpiredJobsAndTheirUploadsAreRemoved) {
  Job old_done = JobFor("old finished", true);
  Job old_pending = JobFor("old but still queued", false);
  Job shared_old = JobFor("shared content", true);
  now_ += 9 * kDay;  // one day ago
  Job recent_done = JobFor("recent finished", true);
  Job shared_recent = JobFor("shared content", true);  // same upload, newer job
  now_ = UnixMillis();

  RetentionPolicy policy;  // 7 days
  policy.grace_ms = 0;
  auto report = RunRetention(*store_, *blobs_, policy, UnixMillis() + 1);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->jobs_deleted, 2);   // old_done and shared_old
  EXPECT_EQ(report->blobs_removed, 1);  // only "old finished": the shared one is still referenced
  EXPECT_EQ(report->bytes_freed, static_cast<int64_t>(std::string("old finished").size()));

  EXPECT_EQ(store_->Get(old_done.id).error().code, kErrJobNotFound);
  EXPECT_EQ(store_->GetResult(old_done.id).error().code, kErrJobNotFound);
  EXPECT_EQ(store_->Get(shared_old.id).error().code, kErrJobNotFound);
  EXPECT_FALSE(blobs_->Contains(old_done.blob_digest));
  EXPECT_EQ(store_->Get(old_pending.id)->state, JobState::kPending) << "a live job was purged";
  EXPECT_TRUE(blobs_->Contains(old_pending.blob_digest));
  EXPECT_TRUE(store_->GetResult(recent_done.id).ok());
  EXPECT_TRUE(blobs_->Contains(shared_recent.blob_digest));
  // Every blob left is referenced by a job: no orphans.
  auto refs = store_->ReferencedBlobs();
  auto listed = blobs_->List();
  ASSERT_TRUE(listed.ok());
  for (const auto& b : *listed) {
    EXPECT_NE(std::find(refs->begin(), refs->end(), b.digest), refs->end()) << b.digest;
  }
}

TEST_F(StoreRetentionTest, GraceSparesAnUploadWhoseJobIsNotInsertedYet) {
  auto blob = blobs_->Put("uploaded a moment ago");
  ASSERT_TRUE(blob.ok());
  std::ofstream(blobs_->dir() + "/tmp/inflight.part") << "still arriving";
  RetentionPolicy policy;
  policy.grace_ms = 60'000;
  auto report = RunRetention(*store_, *blobs_, policy, UnixMillis());
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->blobs_removed, 0);
  EXPECT_EQ(report->temp_files_removed, 0);
  EXPECT_TRUE(blobs_->Contains(blob->digest));
  // At startup (grace 0) both are crash leftovers.
  policy.grace_ms = 0;
  report = RunRetention(*store_, *blobs_, policy, UnixMillis() + 1);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->blobs_removed, 1);
  EXPECT_EQ(report->temp_files_removed, 1);
}

TEST_F(StoreRetentionTest, RetentionPeriodIsConfigurable) {
  now_ = UnixMillis() - 2 * kDay;
  Job job = JobFor("two days old", true);
  RetentionPolicy keep_week;
  EXPECT_EQ(RunRetention(*store_, *blobs_, keep_week, UnixMillis())->jobs_deleted, 0);
  RetentionPolicy keep_hour;
  keep_hour.max_age_ms = 3600 * 1000;
  EXPECT_EQ(RunRetention(*store_, *blobs_, keep_hour, UnixMillis())->jobs_deleted, 1);
  EXPECT_FALSE(store_->Get(job.id).ok());
}

TEST(StoreDataDir, OpeningRecoversAndSweepsCrashLeftovers) {
  test::ScopedTempDir root("steno-datadir");
  std::string data_dir = root.path + "/nested/steno";
  std::string running_id, kept_digest;
  {
    auto first = OpenDataDir(data_dir);
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_EQ(first->recovered, 0);
    auto kept = first->blobs.Put("referenced upload");
    kept_digest = kept->digest;
    auto job = first->jobs->Insert({"base", Priority::kNormal, {}, kept_digest, ""});
    running_id = job->job.id;
    ASSERT_TRUE(first->jobs->Claim({"w", 1000, running_id, {}}).ok());
    ASSERT_TRUE(first->blobs.Put("uploaded, but the job was never inserted").ok());
    std::ofstream(first->blobs.dir() + "/tmp/cut-off.part") << "half";
  }  // "crash": the process state is gone, the files stay
  auto second = OpenDataDir(data_dir);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->recovered, 1);
  EXPECT_EQ(second->swept.blobs_removed, 1);
  EXPECT_EQ(second->swept.temp_files_removed, 1);
  EXPECT_EQ(second->jobs->Get(running_id)->state, JobState::kPending);
  auto listed = second->blobs.List();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].digest, kept_digest);
  // A second server on the same data dir is refused rather than stealing the queue.
  auto third = OpenDataDir(data_dir);
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, kErrStoreLocked);
}

// A speech job's audio (`<job id>.<ext>` in the results dir) goes with its job; the audio of a
// job still kept stays, and so does a file written a moment ago (its job may be completing).
TEST_F(StoreRetentionTest, ResultFilesGoWithTheirJobs) {
  const std::string results = ResultsDir(dir_.path);
  std::filesystem::create_directories(results);
  Job old_done = JobFor("old speech", true);
  now_ += 9 * kDay;
  Job recent_done = JobFor("recent speech", true);
  now_ = UnixMillis();
  auto write = [&](const std::string& name) {
    std::ofstream(results + "/" + name) << "audio";
    return results + "/" + name;
  };
  const std::string gone = write(old_done.id + ".mp3");
  const std::string kept = write(recent_done.id + ".wav");
  const std::string orphan = write("01NOSUCHJOB0000000000000000.flac");
  const auto an_hour_ago = std::filesystem::file_time_type::clock::now() - std::chrono::hours(2);
  for (const auto& f : {gone, kept, orphan}) std::filesystem::last_write_time(f, an_hour_ago);
  const std::string fresh = write("01FRESHJOB00000000000000000.mp3");

  RetentionPolicy policy;  // 7 days; 1 h grace
  policy.results_dir = results;
  auto report = RunRetention(*store_, *blobs_, policy, UnixMillis());
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->jobs_deleted, 1);
  EXPECT_EQ(report->result_files_removed, 2);
  EXPECT_FALSE(std::filesystem::exists(gone)) << "the deleted job's audio stayed";
  EXPECT_FALSE(std::filesystem::exists(orphan));
  EXPECT_TRUE(std::filesystem::exists(kept)) << "a kept job's audio was removed";
  EXPECT_TRUE(std::filesystem::exists(fresh)) << "a file inside the grace period was removed";
}

}  // namespace
}  // namespace steno::store
