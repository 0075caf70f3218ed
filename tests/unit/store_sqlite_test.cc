// SqliteJobStore: the job lifecycle, leases, exactly-once completion, idempotency, paging,
// footprints and crash recovery on reopen.
#include <gtest/gtest.h>

#include <set>

#include "store/job_id.h"
#include "store/sqlite_job_store.h"
#include "support/test_env.h"

namespace steno::store {
namespace {

const std::string kDigest(64, 'a');

class StoreSqliteTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = OpenStore(); }

  std::unique_ptr<SqliteJobStore> OpenStore(bool own_queue = true) {
    SqliteOptions options;
    options.path = DefaultDbPath(dir_.path);
    options.own_queue = own_queue;
    options.clock = [this] { return now_; };
    auto store = SqliteJobStore::Open(options);
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return store.ok() ? std::move(store).value() : nullptr;
  }

  Job Submit(const std::string& model = "base", Priority priority = Priority::kNormal,
             const std::string& key = "") {
    NewJob job;
    job.model = model;
    job.priority = priority;
    job.blob_digest = kDigest;
    job.idempotency_key = key;
    job.params.language = "de";
    auto inserted = store_->Insert(job);
    EXPECT_TRUE(inserted.ok()) << inserted.error().message;
    now_ += 1;  // distinct creation times make the expected order unambiguous
    return inserted->job;
  }

  Job ClaimNext(const std::string& owner = "w1", std::vector<std::string> models = {}) {
    ClaimRequest request;
    request.owner = owner;
    request.lease_ms = 1000;
    request.models = std::move(models);
    auto claimed = store_->Claim(request);
    EXPECT_TRUE(claimed.ok()) << claimed.error().message;
    EXPECT_TRUE(claimed->has_value()) << "nothing to claim";
    return claimed->value_or(Job{});
  }

  test::ScopedTempDir dir_{"steno-store"};
  int64_t now_ = 1'700'000'000'000;
  std::unique_ptr<SqliteJobStore> store_;
};

TEST_F(StoreSqliteTest, InsertedJobIsPendingWithItsFieldsStored) {
  Job job = Submit("small.en", Priority::kHigh);
  EXPECT_TRUE(IsValidJobId(job.id)) << job.id;
  auto got = store_->Get(job.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, JobState::kPending);
  EXPECT_EQ(got->priority, Priority::kHigh);
  EXPECT_EQ(got->model, "small.en");
  EXPECT_EQ(got->params.language, "de");
  EXPECT_EQ(got->blob_digest, kDigest);
  EXPECT_EQ(got->attempt, 1);
  EXPECT_EQ(got->created_ms, now_ - 1);
  EXPECT_FALSE(got->error.has_value());
}

TEST_F(StoreSqliteTest, RejectsInvalidJobs) {
  NewJob no_model;
  EXPECT_EQ(store_->Insert(no_model).error().code, kErrBadJob);
  NewJob bad_digest{"base", Priority::kNormal, {}, "../../etc/passwd", ""};
  EXPECT_EQ(store_->Insert(bad_digest).error().code, kErrBadJob);
  EXPECT_EQ(store_->Get("nope").error().code, kErrJobNotFound);
}

TEST_F(StoreSqliteTest, FullLifecycleStoresResultOnce) {
  Job job = Submit();
  Job claimed = ClaimNext("w1");
  EXPECT_EQ(claimed.id, job.id);
  EXPECT_EQ(claimed.state, JobState::kLoading);
  EXPECT_EQ(claimed.lease_owner, "w1");
  EXPECT_EQ(claimed.lease_expires_ms, now_ + 1000);
  ASSERT_TRUE(store_->MarkProcessing(job.id, "w1").ok());
  EXPECT_EQ(store_->Get(job.id)->state, JobState::kProcessing);
  EXPECT_EQ(store_->GetResult(job.id).error().code, kErrResultNotFound);

  ASSERT_TRUE(store_->Complete(job.id, "w1", R"({"segments":[{"text":"hi"}]})").ok());
  auto done = store_->Get(job.id);
  EXPECT_EQ(done->state, JobState::kCompleted);
  EXPECT_EQ(done->finished_ms, now_);
  EXPECT_TRUE(done->lease_owner.empty());
  EXPECT_EQ(store_->GetResult(job.id).value(), R"({"segments":[{"text":"hi"}]})");

  // A second completion (a duplicate runner, a replayed message) is refused and changes nothing.
  auto again = store_->Complete(job.id, "w1", R"({"segments":[]})");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, kErrJobFinished);
  EXPECT_EQ(store_->GetResult(job.id).value(), R"({"segments":[{"text":"hi"}]})");
  EXPECT_EQ(store_->Fail(job.id, "w1", Error(ErrorKind::kInternal, "x", "y")).error().code,
            kErrJobFinished);
  EXPECT_EQ(store_->Get(job.id)->state, JobState::kCompleted);
}

TEST_F(StoreSqliteTest, OnlyTheLeaseHolderMayFinish) {
  Job job = Submit();
  ClaimNext("w1");
  auto other = store_->Complete(job.id, "w2", "{}");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, kErrLeaseNotHeld);
  EXPECT_EQ(store_->MarkProcessing(job.id, "w2").error().code, kErrLeaseNotHeld);
  EXPECT_EQ(store_->Complete(job.id, "w1", "not json").error().code, "bad_result");
  EXPECT_TRUE(store_->Complete(job.id, "w1", "{}").ok());
}

TEST_F(StoreSqliteTest, ClaimFollowsPriorityThenAgeAndModelFilter) {
  Job low = Submit("base", Priority::kLow);
  Job normal1 = Submit("base", Priority::kNormal);
  Job high = Submit("tiny", Priority::kHigh);
  Job normal2 = Submit("base", Priority::kNormal);
  EXPECT_EQ(ClaimNext("w", {"base"}).id, normal1.id);  // high is for another model
  EXPECT_EQ(ClaimNext().id, high.id);
  EXPECT_EQ(ClaimNext().id, normal2.id);
  EXPECT_EQ(ClaimNext().id, low.id);
  auto none = store_->Claim({"w", 1000, std::nullopt, {}});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(StoreSqliteTest, ClaimByIdTakesOnlyAPendingJob) {
  Job a = Submit();
  Job b = Submit();
  auto got = store_->Claim({"w1", 1000, b.id, {}});
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->id, b.id);
  auto again = store_->Claim({"w2", 1000, b.id, {}});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value()) << "a held job was claimed twice";
  EXPECT_EQ(store_->Claim({"w1", 1000, std::string("missing"), {}}).error().code, kErrJobNotFound);
  EXPECT_EQ(ClaimNext().id, a.id);
}

TEST_F(StoreSqliteTest, IdempotencyKeyReturnsTheExistingJob) {
  Job first = Submit("base", Priority::kNormal, "client-key-1");
  NewJob retry{"large", Priority::kHigh, {}, kDigest, "client-key-1"};
  auto second = store_->Insert(retry);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->existing);
  EXPECT_EQ(second->job.id, first.id);
  EXPECT_EQ(second->job.model, "base");  // the original, not the retry's fields
  Job other = Submit("base", Priority::kNormal, "client-key-2");
  EXPECT_NE(other.id, first.id);
  EXPECT_EQ(store_->Count()->by_state[0], 2);
}

TEST_F(StoreSqliteTest, RequeueCountsAttemptsAndHonoursBackoff) {
  Job job = Submit();
  ClaimNext("w1");
  ASSERT_TRUE(
      store_->Requeue({job.id, "w1", Error(ErrorKind::kOutOfMemory, "oom", "no VRAM"), 500}).ok());
  auto got = store_->Get(job.id);
  EXPECT_EQ(got->state, JobState::kPending);
  EXPECT_EQ(got->attempt, 2);
  ASSERT_TRUE(got->error.has_value());
  EXPECT_EQ(got->error->kind, ErrorKind::kOutOfMemory);
  EXPECT_EQ(got->error->code, "oom");
  auto early = store_->Claim({"w1", 1000, std::nullopt, {}});
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(early->has_value()) << "claimed before its backoff ended";
  now_ += 500;
  Job claimed = ClaimNext("w2");
  EXPECT_EQ(claimed.attempt, 2);
  EXPECT_EQ(store_->Complete(job.id, "w1", "{}").error().code, kErrLeaseNotHeld);
  EXPECT_TRUE(store_->Complete(job.id, "w2", "{}").ok());

  auto history = store_->Attempts(job.id);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].attempt, 1);
  EXPECT_EQ((*history)[0].owner, "w1");
  EXPECT_EQ((*history)[0].outcome, "requeued");
  EXPECT_EQ((*history)[0].error->code, "oom");
  EXPECT_EQ((*history)[1].attempt, 2);
  EXPECT_EQ((*history)[1].owner, "w2");
  EXPECT_EQ((*history)[1].outcome, "completed");
  EXPECT_EQ((*history)[1].ended_ms, now_);
  EXPECT_FALSE((*history)[1].error.has_value());
  EXPECT_EQ(store_->Attempts("missing").error().code, kErrJobNotFound);
}

TEST_F(StoreSqliteTest, HeartbeatRenewsLeasesAndExpiredLeasesAreRequeued) {
  Job a = Submit();
  Job b = Submit();
  ClaimNext("w1");
  ClaimNext("w2");
  now_ += 900;
  auto held = store_->Heartbeat("w1", 1000);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(*held, std::vector<std::string>{a.id});
  now_ += 200;  // w2's lease (claimed 900 ms + 200 ms ago, 1000 ms long) has run out
  auto expired = store_->RequeueExpired();
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, std::vector<std::string>{b.id});
  EXPECT_EQ(store_->Get(b.id)->state, JobState::kPending);
  EXPECT_EQ(store_->Get(b.id)->attempt, 2);
  EXPECT_EQ(store_->Get(b.id)->error->code, "lease_expired");
  EXPECT_EQ(store_->Get(a.id)->state, JobState::kLoading);
  // The stalled worker wakes up: its heartbeat no longer lists the job, completion is refused.
  EXPECT_TRUE(store_->Heartbeat("w2", 1000)->empty());
  EXPECT_EQ(store_->Complete(b.id, "w2", "{}").error().code, kErrLeaseNotHeld);
}

TEST_F(StoreSqliteTest, CancelStopsAJobInAnyLiveState) {
  Job pending = Submit();
  Job running = Submit();
  ASSERT_TRUE(store_->Claim({"w1", 1000, running.id, {}}).ok());
  auto c1 = store_->Cancel(pending.id);
  ASSERT_TRUE(c1.ok());
  EXPECT_EQ(c1->state, JobState::kCancelled);
  ASSERT_TRUE(store_->Cancel(running.id).ok());
  EXPECT_TRUE(store_->Heartbeat("w1", 1000)->empty());
  EXPECT_EQ(store_->Complete(running.id, "w1", "{}").error().code, kErrJobFinished);
  EXPECT_TRUE(store_->Cancel(running.id).ok()) << "cancelling twice is a no-op";
  Job done = Submit();
  ClaimNext("w1");
  ASSERT_TRUE(store_->Complete(done.id, "w1", "{}").ok());
  EXPECT_EQ(store_->Cancel(done.id).error().code, kErrJobFinished);
  EXPECT_EQ(store_->Cancel("missing").error().code, kErrJobNotFound);
}

TEST_F(StoreSqliteTest, FailRecordsTheReason) {
  Job job = Submit();
  ClaimNext("w1");
  ASSERT_TRUE(
      store_->Fail(job.id, "w1", Error(ErrorKind::kBadInput, "no_audio_stream", "no audio")).ok());
  auto got = store_->Get(job.id);
  EXPECT_EQ(got->state, JobState::kFailed);
  EXPECT_EQ(got->error->kind, ErrorKind::kBadInput);
  EXPECT_EQ(got->error->code, "no_audio_stream");
  EXPECT_EQ(got->error->message, "no audio");
}

TEST_F(StoreSqliteTest, ListPagesThroughEveryJobOnceInBothOrders) {
  std::vector<std::string> ids;
  for (int i = 0; i < 25; ++i) {
    ids.push_back(
        Submit(i % 2 ? "base" : "tiny", i % 3 == 0 ? Priority::kHigh : Priority::kLow).id);
  }
  for (auto order : {ListOrder::kNewestFirst, ListOrder::kQueueOrder}) {
    JobFilter filter;
    filter.order = order;
    filter.limit = 7;
    std::vector<Job> seen;
    int pages = 0;
    do {
      auto page = store_->List(filter);
      ASSERT_TRUE(page.ok()) << page.error().message;
      seen.insert(seen.end(), page->jobs.begin(), page->jobs.end());
      filter.page_token = page->next_page_token;
      ++pages;
    } while (!filter.page_token.empty());
    EXPECT_EQ(pages, 4);
    ASSERT_EQ(seen.size(), 25u);
    std::set<std::string> unique;
    for (const auto& j : seen) unique.insert(j.id);
    EXPECT_EQ(unique.size(), 25u);
    if (order == ListOrder::kNewestFirst) {
      EXPECT_EQ(seen.front().id, ids.back());
      EXPECT_EQ(seen.back().id, ids.front());
    } else {
      for (size_t i = 1; i < seen.size(); ++i) {
        EXPECT_LE(static_cast<int>(seen[i - 1].priority), static_cast<int>(seen[i].priority));
      }
      EXPECT_EQ(seen.front().id, ids[0]);  // oldest high-priority job
    }
  }
  JobFilter tiny;
  tiny.model = "tiny";
  EXPECT_EQ(store_->List(tiny)->jobs.size(), 13u);
  JobFilter bad;
  bad.page_token = "garbage";
  EXPECT_EQ(store_->List(bad).error().code, "bad_page_token");
}

TEST_F(StoreSqliteTest, ListFiltersByStateAndCountsByState) {
  Submit();
  Job b = Submit();
  Submit();
  ASSERT_TRUE(store_->Claim({"w1", 1000, b.id, {}}).ok());
  JobFilter filter;
  filter.states = {JobState::kLoading, JobState::kProcessing};
  auto page = store_->List(filter);
  ASSERT_EQ(page->jobs.size(), 1u);
  EXPECT_EQ(page->jobs[0].id, b.id);
  auto counts = store_->Count();
  EXPECT_EQ((*counts)[JobState::kPending], 2);
  EXPECT_EQ((*counts)[JobState::kLoading], 1);
  EXPECT_EQ((*counts)[JobState::kCompleted], 0);
}

TEST_F(StoreSqliteTest, FootprintsAreUpsertedPerModelAndDevice) {
  EXPECT_FALSE(store_->GetFootprint("base", "cpu")->has_value());
  ASSERT_TRUE(store_->PutFootprint({"base", "NVIDIA H100", 150, 40, 0}).ok());
  ASSERT_TRUE(store_->PutFootprint({"base", "cpu", 140, 30, 0}).ok());
  now_ += 10;
  ASSERT_TRUE(store_->PutFootprint({"base", "NVIDIA H100", 160, 45, 0}).ok());
  auto fp = store_->GetFootprint("base", "NVIDIA H100");
  ASSERT_TRUE(fp.ok() && fp->has_value());
  EXPECT_EQ((*fp)->weights_bytes, 160);
  EXPECT_EQ((*fp)->stream_bytes, 45);
  EXPECT_EQ((*fp)->measured_ms, now_);
  EXPECT_EQ(store_->ListFootprints()->size(), 2u);
  EXPECT_FALSE(store_->PutFootprint({"", "cpu", 1, 1, 0}).ok());
  EXPECT_FALSE(store_->PutFootprint({"base", "cpu", -1, 1, 0}).ok());
}

TEST_F(StoreSqliteTest, ReopenRequeuesAbandonedJobsAndKeepsEverythingElse) {
  Job pending = Submit();
  Job loading = Submit();
  Job processing = Submit();
  Job completed = Submit();
  ASSERT_TRUE(store_->Claim({"w1", 1000, loading.id, {}}).ok());
  ASSERT_TRUE(store_->Claim({"w1", 1000, processing.id, {}}).ok());
  ASSERT_TRUE(store_->MarkProcessing(processing.id, "w1").ok());
  ASSERT_TRUE(store_->Claim({"w1", 1000, completed.id, {}}).ok());
  ASSERT_TRUE(store_->Complete(completed.id, "w1", R"({"text":"x"})").ok());
  store_.reset();  // as if the process had died: nothing in memory survives

  store_ = OpenStore();
  ASSERT_TRUE(store_);
  EXPECT_EQ(store_->recovered_on_open(), 2);
  for (const auto& id : {loading.id, processing.id}) {
    auto j = store_->Get(id);
    EXPECT_EQ(j->state, JobState::kPending) << id;
    EXPECT_EQ(j->attempt, 2) << id;
    EXPECT_TRUE(j->lease_owner.empty());
    EXPECT_EQ(j->error->code, "run_lost");
  }
  EXPECT_EQ(store_->Get(pending.id)->attempt, 1);
  EXPECT_EQ(store_->Get(completed.id)->state, JobState::kCompleted);
  EXPECT_EQ(store_->GetResult(completed.id).value(), R"({"text":"x"})");
  EXPECT_EQ(store_->Complete(loading.id, "w1", "{}").error().code, kErrLeaseNotHeld);
}

TEST_F(StoreSqliteTest, OneProcessOwnsTheQueueButReadersMayOpen) {
  SqliteOptions options;
  options.path = DefaultDbPath(dir_.path);
  auto second = SqliteJobStore::Open(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, kErrStoreLocked);
  EXPECT_EQ(second.error().kind, ErrorKind::kUnavailable);

  Job job = Submit();
  ClaimNext("w1");
  auto reader = OpenStore(/*own_queue=*/false);
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->recovered_on_open(), 0);
  EXPECT_EQ(reader->Get(job.id)->state, JobState::kLoading) << "a reader must not steal work";
}

}  // namespace
}  // namespace steno::store
