// The behaviour every JobStore promises (store/job_store.h), as one value-parameterized suite
// run against each store: a test file includes this header once and instantiates the suite
// with its backend, e.g.
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreCases, ::testing::Values(SqliteBackend()),
//                            cases::BackendName);
// Each test gets a fresh, empty store from its backend's harness; the harness can open it again
// over the same data (what a restart looks like). Every store reads time from the test's clock.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/job_id.h"
#include "store/job_store.h"

namespace steno::store::cases {

class StoreHarness {
 public:
  virtual ~StoreHarness() = default;
  // Opens the store under test; a second call opens it again over the same data. nullptr (with
  // a test failure recorded) if it cannot be opened.
  virtual std::unique_ptr<JobStore> Open(std::function<int64_t()> clock) = 0;
};

struct StoreBackend {
  std::string name;  // a test name suffix: letters and digits
  std::function<std::unique_ptr<StoreHarness>()> make;
};

inline void PrintTo(const StoreBackend& backend, std::ostream* os) {
  *os << backend.name;
}
inline std::string BackendName(const ::testing::TestParamInfo<StoreBackend>& info) {
  return info.param.name;
}

inline const std::string kDigest(64, 'a');

// Submits a job (blob kDigest, language "de"); an empty Job, with a test failure, if refused.
inline Job SubmitJob(JobStore& store, const std::string& model = "base",
                     Priority priority = Priority::kNormal, const std::string& key = "") {
  NewJob job;
  job.model = model;
  job.priority = priority;
  job.blob_digest = kDigest;
  job.idempotency_key = key;
  job.params.language = "de";
  auto inserted = store.Insert(job);
  EXPECT_TRUE(inserted.ok()) << inserted.error().message;
  return inserted.ok() ? inserted->job : Job{};
}

// Claims the next job for `owner` with a 1 s lease; an empty Job, with a test failure, if none.
inline Job ClaimNextJob(JobStore& store, const std::string& owner = "w1",
                        std::vector<std::string> models = {}) {
  ClaimRequest request;
  request.owner = owner;
  request.lease_ms = 1000;
  request.models = std::move(models);
  auto claimed = store.Claim(request);
  EXPECT_TRUE(claimed.ok()) << claimed.error().message;
  if (!claimed.ok()) return Job{};
  EXPECT_TRUE(claimed->has_value()) << "nothing to claim";
  return claimed->value_or(Job{});
}

class StoreCases : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    harness_ = GetParam().make();
    ASSERT_TRUE(harness_);
    store_ = Reopen();
    ASSERT_TRUE(store_) << "the store under test did not open";
  }

  std::unique_ptr<JobStore> Reopen() {
    return harness_->Open([this] { return now_.load(); });
  }

  Job Submit(const std::string& model = "base", Priority priority = Priority::kNormal,
             const std::string& key = "") {
    Job job = SubmitJob(*store_, model, priority, key);
    now_ += 1;  // distinct creation times make the expected order unambiguous
    return job;
  }

  Job ClaimNext(const std::string& owner = "w1", std::vector<std::string> models = {}) {
    return ClaimNextJob(*store_, owner, std::move(models));
  }

  std::unique_ptr<StoreHarness> harness_;
  std::atomic<int64_t> now_{1'700'000'000'000};
  std::unique_ptr<JobStore> store_;
};

TEST_P(StoreCases, InsertedJobIsPendingWithItsFieldsStored) {
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
  EXPECT_TRUE(store_->Attempts(job.id)->empty());
}

TEST_P(StoreCases, RejectsInvalidJobs) {
  NewJob no_model;
  EXPECT_EQ(store_->Insert(no_model).error().code, kErrBadJob);
  NewJob bad_digest{"base", Priority::kNormal, {}, "../../etc/passwd", ""};
  EXPECT_EQ(store_->Insert(bad_digest).error().code, kErrBadJob);
  NewJob long_key{"base", Priority::kNormal, {}, kDigest, std::string(256, 'k')};
  EXPECT_EQ(store_->Insert(long_key).error().code, kErrBadJob);
  EXPECT_EQ(store_->Get("nope").error().code, kErrJobNotFound);
  EXPECT_EQ(store_->Get("nope").error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(store_->Claim({"", 1000, std::nullopt, {}}).error().kind, ErrorKind::kBadInput);
  EXPECT_EQ(store_->Claim({"w", 0, std::nullopt, {}}).error().kind, ErrorKind::kBadInput);
  EXPECT_EQ(store_->Count().value()[JobState::kPending], 0);
}

// Text that would break SQL spliced from strings is stored and matched as plain data.
TEST_P(StoreCases, ValuesAreDataNeverSql) {
  const std::string evil = "x'); DROP TABLE jobs; -- \"$1 ? %s \\";
  NewJob job{evil, Priority::kNormal, {}, kDigest, evil};
  job.params.prompt = evil;
  auto inserted = store_->Insert(job);
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  auto got = store_->Get(inserted->job.id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->model, evil);
  EXPECT_EQ(got->params.prompt, evil);
  EXPECT_EQ(got->idempotency_key, evil);
  JobFilter filter;
  filter.model = evil;
  EXPECT_EQ(store_->List(filter)->jobs.size(), 1u);
  EXPECT_TRUE(store_->Insert(job)->existing);
  Job claimed = ClaimNext(evil, {evil});
  EXPECT_EQ(claimed.id, inserted->job.id);
  ASSERT_TRUE(store_->Fail(claimed.id, evil, Error(ErrorKind::kInternal, evil, evil)).ok());
  EXPECT_EQ(store_->Get(claimed.id)->error->message, evil);
  ASSERT_TRUE(store_->PutFootprint({evil, evil, 1, 1, 0}).ok());
  EXPECT_TRUE(store_->GetFootprint(evil, evil)->has_value());
}

TEST_P(StoreCases, FullLifecycleStoresResultOnce) {
  Job job = Submit();
  Job claimed = ClaimNext("w1");
  EXPECT_EQ(claimed.id, job.id);
  EXPECT_EQ(claimed.state, JobState::kLoading);
  EXPECT_EQ(claimed.lease_owner, "w1");
  EXPECT_EQ(claimed.lease_expires_ms, now_ + 1000);
  EXPECT_EQ(claimed.started_ms, now_.load());
  ASSERT_TRUE(store_->MarkProcessing(job.id, "w1").ok());
  EXPECT_TRUE(store_->MarkProcessing(job.id, "w1").ok()) << "marking twice is a no-op";
  EXPECT_EQ(store_->Get(job.id)->state, JobState::kProcessing);
  EXPECT_EQ(store_->GetResult(job.id).error().code, kErrResultNotFound);

  ASSERT_TRUE(store_->Complete(job.id, "w1", R"({"segments":[{"text":"hi"}]})").ok());
  auto done = store_->Get(job.id);
  EXPECT_EQ(done->state, JobState::kCompleted);
  EXPECT_EQ(done->finished_ms, now_.load());
  EXPECT_TRUE(done->lease_owner.empty());
  EXPECT_EQ(done->lease_expires_ms, 0);
  EXPECT_EQ(store_->GetResult(job.id).value(), R"({"segments":[{"text":"hi"}]})");

  // A second completion (a duplicate runner, a replayed message) is refused and changes nothing.
  auto again = store_->Complete(job.id, "w1", R"({"segments":[]})");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, kErrJobFinished);
  EXPECT_EQ(store_->GetResult(job.id).value(), R"({"segments":[{"text":"hi"}]})");
  EXPECT_EQ(store_->Fail(job.id, "w1", Error(ErrorKind::kInternal, "x", "y")).error().code,
            kErrJobFinished);
  EXPECT_EQ(store_->Requeue({job.id, "w1", std::nullopt, 0}).error().code, kErrJobFinished);
  EXPECT_EQ(store_->Get(job.id)->state, JobState::kCompleted);
  EXPECT_EQ(store_->GetResult("missing").error().code, kErrJobNotFound);
  auto attempts = store_->Attempts(job.id);
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ((*attempts)[0].outcome, "completed");
}

TEST_P(StoreCases, OnlyTheLeaseHolderMayFinish) {
  Job job = Submit();
  ClaimNext("w1");
  auto other = store_->Complete(job.id, "w2", "{}");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, kErrLeaseNotHeld);
  EXPECT_EQ(store_->MarkProcessing(job.id, "w2").error().code, kErrLeaseNotHeld);
  EXPECT_EQ(store_->Fail(job.id, "w2", Error()).error().code, kErrLeaseNotHeld);
  EXPECT_EQ(store_->Requeue({job.id, "w2", std::nullopt, 0}).error().code, kErrLeaseNotHeld);
  EXPECT_EQ(store_->Complete(job.id, "w1", "not json").error().code, "bad_result");
  EXPECT_EQ(store_->Complete("missing", "w1", "{}").error().code, kErrJobNotFound);
  Job pending = Submit();
  EXPECT_EQ(store_->Complete(pending.id, "w1", "{}").error().code, kErrLeaseNotHeld);
  EXPECT_TRUE(store_->Complete(job.id, "w1", "{}").ok());
}

TEST_P(StoreCases, ClaimFollowsPriorityThenAgeAndModelFilter) {
  Job low = Submit("base", Priority::kLow);
  Job normal1 = Submit("base", Priority::kNormal);
  Job high = Submit("tiny", Priority::kHigh);
  Job normal2 = Submit("base", Priority::kNormal);
  EXPECT_EQ(ClaimNext("w", {"base"}).id, normal1.id);  // high is for another model
  auto other_model = store_->Claim({"w", 1000, std::nullopt, {"large", "medium"}});
  ASSERT_TRUE(other_model.ok());
  EXPECT_FALSE(other_model->has_value());
  EXPECT_EQ(ClaimNext("w", {"large", "tiny"}).id, high.id);
  EXPECT_EQ(ClaimNext().id, normal2.id);
  EXPECT_EQ(ClaimNext().id, low.id);
  auto none = store_->Claim({"w", 1000, std::nullopt, {}});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_P(StoreCases, ClaimByIdTakesOnlyAPendingJob) {
  Job a = Submit();
  Job b = Submit();
  auto got = store_->Claim({"w1", 1000, b.id, {}});
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->id, b.id);
  EXPECT_EQ((*got)->state, JobState::kLoading);
  auto again = store_->Claim({"w2", 1000, b.id, {}});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value()) << "a held job was claimed twice";
  EXPECT_EQ(store_->Claim({"w1", 1000, std::string("missing"), {}}).error().code, kErrJobNotFound);
  EXPECT_EQ(ClaimNext().id, a.id);
}

TEST_P(StoreCases, IdempotencyKeyReturnsTheExistingJob) {
  Job first = Submit("base", Priority::kNormal, "client-key-1");
  NewJob retry{"large", Priority::kHigh, {}, kDigest, "client-key-1"};
  auto second = store_->Insert(retry);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->existing);
  EXPECT_EQ(second->job.id, first.id);
  EXPECT_EQ(second->job.model, "base");  // the original, not the retry's fields
  Job other = Submit("base", Priority::kNormal, "client-key-2");
  EXPECT_NE(other.id, first.id);
  Job no_key1 = Submit();
  Job no_key2 = Submit();
  EXPECT_NE(no_key1.id, no_key2.id) << "jobs without a key are never merged";
  EXPECT_EQ(store_->Count()->by_state[0], 4);
}

TEST_P(StoreCases, RequeueCountsAttemptsAndHonoursBackoff) {
  Job job = Submit();
  ClaimNext("w1");
  ASSERT_TRUE(
      store_->Requeue({job.id, "w1", Error(ErrorKind::kOutOfMemory, "oom", "no VRAM"), 500}).ok());
  auto got = store_->Get(job.id);
  EXPECT_EQ(got->state, JobState::kPending);
  EXPECT_EQ(got->attempt, 2);
  EXPECT_EQ(got->not_before_ms, now_ + 500);
  EXPECT_TRUE(got->lease_owner.empty());
  ASSERT_TRUE(got->error.has_value());
  EXPECT_EQ(got->error->kind, ErrorKind::kOutOfMemory);
  EXPECT_EQ(got->error->code, "oom");
  auto early = store_->Claim({"w1", 1000, std::nullopt, {}});
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(early->has_value()) << "claimed before its backoff ended";
  auto early_by_id = store_->Claim({"w1", 1000, job.id, {}});
  ASSERT_TRUE(early_by_id.ok());
  EXPECT_FALSE(early_by_id->has_value()) << "claimed by id before its backoff ended";
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
  EXPECT_EQ((*history)[1].ended_ms, now_.load());
  EXPECT_FALSE((*history)[1].error.has_value());
  EXPECT_EQ(store_->Attempts("missing").error().code, kErrJobNotFound);
}

TEST_P(StoreCases, HeartbeatRenewsLeasesAndExpiredLeasesAreRequeued) {
  Job a = Submit();
  Job b = Submit();
  Job c = Submit();
  ClaimNext("w1");
  ClaimNext("w2");
  ClaimNext("w1");
  ASSERT_TRUE(store_->MarkProcessing(c.id, "w1").ok());
  now_ += 900;
  auto held = store_->Heartbeat("w1", 1000);
  ASSERT_TRUE(held.ok());
  std::vector<std::string> mine = {a.id, c.id};
  std::sort(mine.begin(), mine.end());
  std::sort(held->begin(), held->end());
  EXPECT_EQ(*held, mine);
  EXPECT_EQ(store_->Get(a.id)->lease_expires_ms, now_ + 1000);
  EXPECT_TRUE(store_->RequeueExpired()->empty()) << "nothing has expired yet";
  now_ += 200;  // w2's lease (claimed 900 ms + 200 ms ago, 1000 ms long) has run out
  auto expired = store_->RequeueExpired();
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, std::vector<std::string>{b.id});
  auto requeued = store_->Get(b.id);
  EXPECT_EQ(requeued->state, JobState::kPending);
  EXPECT_EQ(requeued->attempt, 2);
  EXPECT_EQ(requeued->error->code, "lease_expired");
  EXPECT_EQ(requeued->error->kind, ErrorKind::kTimeout);
  EXPECT_EQ(store_->Get(a.id)->state, JobState::kLoading);
  EXPECT_EQ(store_->Get(c.id)->state, JobState::kProcessing);
  EXPECT_EQ(store_->Attempts(b.id)->front().outcome, "lease_expired");
  // The stalled worker wakes up: its heartbeat no longer lists the job, completion is refused.
  EXPECT_TRUE(store_->Heartbeat("w2", 1000)->empty());
  EXPECT_EQ(store_->Complete(b.id, "w2", "{}").error().code, kErrLeaseNotHeld);
  // A lease past its expiry that nobody requeued still lets its holder finish.
  now_ += 5000;
  EXPECT_TRUE(store_->Complete(a.id, "w1", "{}").ok());
  EXPECT_EQ(store_->Heartbeat("", 1000).error().kind, ErrorKind::kBadInput);
}

TEST_P(StoreCases, CancelStopsAJobInAnyLiveState) {
  Job pending = Submit();
  Job running = Submit();
  ASSERT_TRUE(store_->Claim({"w1", 1000, running.id, {}}).ok());
  auto c1 = store_->Cancel(pending.id);
  ASSERT_TRUE(c1.ok());
  EXPECT_EQ(c1->state, JobState::kCancelled);
  EXPECT_EQ(store_->Get(pending.id)->state, JobState::kCancelled);
  auto c2 = store_->Cancel(running.id);
  ASSERT_TRUE(c2.ok());
  EXPECT_TRUE(c2->lease_owner.empty());
  EXPECT_EQ(c2->error->code, "cancelled");
  EXPECT_TRUE(store_->Heartbeat("w1", 1000)->empty());
  EXPECT_EQ(store_->Complete(running.id, "w1", "{}").error().code, kErrJobFinished);
  EXPECT_EQ(store_->Attempts(running.id)->front().outcome, "cancelled");
  EXPECT_TRUE(store_->Cancel(running.id).ok()) << "cancelling twice is a no-op";
  Job done = Submit();
  ClaimNext("w1");
  ASSERT_TRUE(store_->Complete(done.id, "w1", "{}").ok());
  EXPECT_EQ(store_->Cancel(done.id).error().code, kErrJobFinished);
  EXPECT_EQ(store_->Cancel("missing").error().code, kErrJobNotFound);
}

TEST_P(StoreCases, FailRecordsTheReason) {
  Job job = Submit();
  ClaimNext("w1");
  ASSERT_TRUE(
      store_->Fail(job.id, "w1", Error(ErrorKind::kBadInput, "no_audio_stream", "no audio")).ok());
  auto got = store_->Get(job.id);
  EXPECT_EQ(got->state, JobState::kFailed);
  EXPECT_EQ(got->finished_ms, now_.load());
  EXPECT_EQ(got->error->kind, ErrorKind::kBadInput);
  EXPECT_EQ(got->error->code, "no_audio_stream");
  EXPECT_EQ(got->error->message, "no audio");
  auto attempts = store_->Attempts(job.id);
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ((*attempts)[0].outcome, "failed");
  EXPECT_EQ((*attempts)[0].error->code, "no_audio_stream");
  EXPECT_EQ(store_->GetResult(job.id).error().code, kErrResultNotFound);
}

TEST_P(StoreCases, ListPagesThroughEveryJobOnceInBothOrders) {
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
  JobFilter wrong_order;
  wrong_order.order = ListOrder::kQueueOrder;
  wrong_order.page_token = "n.1.X";
  EXPECT_EQ(store_->List(wrong_order).error().code, "bad_page_token");
  JobFilter too_big;
  too_big.limit = 1001;
  EXPECT_EQ(store_->List(too_big).error().code, "bad_limit");
}

TEST_P(StoreCases, ListFiltersByStateOwnerAndCountsByState) {
  Submit();
  Job b = Submit();
  Job c = Submit();
  ASSERT_TRUE(store_->Claim({"w1", 1000, b.id, {}}).ok());
  ASSERT_TRUE(store_->Claim({"w2", 1000, c.id, {}}).ok());
  JobFilter filter;
  filter.states = {JobState::kLoading, JobState::kProcessing};
  auto page = store_->List(filter);
  ASSERT_EQ(page->jobs.size(), 2u);
  filter.lease_owner = "w1";
  page = store_->List(filter);
  ASSERT_EQ(page->jobs.size(), 1u);
  EXPECT_EQ(page->jobs[0].id, b.id);
  auto counts = store_->Count();
  EXPECT_EQ((*counts)[JobState::kPending], 1);
  EXPECT_EQ((*counts)[JobState::kLoading], 2);
  EXPECT_EQ((*counts)[JobState::kCompleted], 0);
}

TEST_P(StoreCases, PendingByModelCountsPendingAndDueJobsOnly) {
  auto empty = store_->PendingByModel();
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_TRUE(empty->empty());
  Job small1 = Submit("small");
  Submit("small");
  Job big = Submit("big");
  Job held = Submit("big");
  Submit("big");
  Job done = Submit("other");
  ASSERT_TRUE(store_->Claim({"w1", 1000, held.id, {}}).ok());
  ASSERT_TRUE(store_->Claim({"w1", 1000, done.id, {}}).ok());
  ASSERT_TRUE(store_->Complete(done.id, "w1", "{}").ok());
  // A retry waiting out its backoff is pending but not due.
  ASSERT_TRUE(store_->Claim({"w1", 1000, small1.id, {}}).ok());
  ASSERT_TRUE(
      store_->Requeue({small1.id, "w1", Error(ErrorKind::kOutOfMemory, "oom", "no VRAM"), 500})
          .ok());
  ASSERT_TRUE(store_->Cancel(big.id).ok());

  auto models = store_->PendingByModel();
  ASSERT_TRUE(models.ok()) << models.error().message;
  ASSERT_EQ(models->size(), 2u);  // "other" has none pending
  EXPECT_EQ((*models)[0].model, "big");
  EXPECT_EQ((*models)[0].pending, 1);
  EXPECT_EQ((*models)[0].due, 1);
  EXPECT_EQ((*models)[1].model, "small");
  EXPECT_EQ((*models)[1].pending, 2);
  EXPECT_EQ((*models)[1].due, 1);
  now_ += 500;
  models = store_->PendingByModel();
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[1].due, 2) << "the backoff ended";
  auto counts = store_->Count();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[JobState::kPending], 3);
}

TEST_P(StoreCases, FootprintsAreUpsertedPerModelAndDevice) {
  EXPECT_FALSE(store_->GetFootprint("base", "cpu")->has_value());
  ASSERT_TRUE(store_->PutFootprint({"base", "NVIDIA H100", 150, 40, 0}).ok());
  ASSERT_TRUE(store_->PutFootprint({"base", "cpu", 140, 30, 0}).ok());
  now_ += 10;
  ASSERT_TRUE(store_->PutFootprint({"base", "NVIDIA H100", 160, 45, 0}).ok());
  auto fp = store_->GetFootprint("base", "NVIDIA H100");
  ASSERT_TRUE(fp.ok() && fp->has_value());
  EXPECT_EQ((*fp)->weights_bytes, 160);
  EXPECT_EQ((*fp)->stream_bytes, 45);
  EXPECT_EQ((*fp)->measured_ms, now_.load());
  auto all = store_->ListFootprints();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].device_name, "NVIDIA H100");  // ordered by model, then device
  EXPECT_EQ((*all)[1].device_name, "cpu");
  EXPECT_FALSE(store_->PutFootprint({"", "cpu", 1, 1, 0}).ok());
  EXPECT_FALSE(store_->PutFootprint({"base", "cpu", -1, 1, 0}).ok());
}

TEST_P(StoreCases, DeleteFinishedBeforeTakesOnlyOldFinalJobs) {
  auto finish = [&](const Job& job) {
    ASSERT_TRUE(store_->Claim({"w", 1000, job.id, {}}).ok());
    ASSERT_TRUE(store_->Complete(job.id, "w", R"({"segments":[]})").ok());
  };
  NewJob other_blob{"base", Priority::kNormal, {}, std::string(64, 'c'), ""};
  Job old1 = Submit();
  finish(old1);
  Job old_other = store_->Insert(other_blob)->job;
  finish(old_other);
  Job old_cancelled = Submit();
  ASSERT_TRUE(store_->Cancel(old_cancelled.id).ok());
  Job old_pending = Submit();
  int64_t cutoff = now_ + 1;
  now_ += 100;
  Job recent = Submit();
  finish(recent);

  auto blobs = store_->ReferencedBlobs();
  ASSERT_TRUE(blobs.ok());
  EXPECT_EQ(std::set<std::string>(blobs->begin(), blobs->end()),
            (std::set<std::string>{kDigest, std::string(64, 'c')}));

  auto first = store_->DeleteFinishedBefore(cutoff, 2);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(*first, 2) << "limit respected";
  auto rest = store_->DeleteFinishedBefore(cutoff, 100);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, 1);
  EXPECT_EQ(store_->DeleteFinishedBefore(cutoff, 100).value(), 0);
  for (const auto& gone : {old1, old_other, old_cancelled}) {
    EXPECT_EQ(store_->Get(gone.id).error().code, kErrJobNotFound);
    EXPECT_EQ(store_->GetResult(gone.id).error().code, kErrJobNotFound);
    EXPECT_EQ(store_->Attempts(gone.id).error().code, kErrJobNotFound);
  }
  EXPECT_EQ(store_->Get(old_pending.id)->state, JobState::kPending) << "a live job was deleted";
  EXPECT_TRUE(store_->GetResult(recent.id).ok());
  EXPECT_EQ(store_->ReferencedBlobs().value(), std::vector<std::string>{kDigest});
  EXPECT_EQ(store_->DeleteFinishedBefore(cutoff, 0).error().kind, ErrorKind::kBadInput);
}

// Reopening (a restart) keeps every job, result and footprint as it was.
TEST_P(StoreCases, ReopenKeepsJobsResultsAndFootprints) {
  Job pending = Submit();
  Job completed = Submit("tiny", Priority::kHigh, "key-1");
  ASSERT_TRUE(store_->Claim({"w1", 1000, completed.id, {}}).ok());
  ASSERT_TRUE(store_->Complete(completed.id, "w1", R"({"text":"x"})").ok());
  ASSERT_TRUE(store_->PutFootprint({"base", "cpu", 140, 30, 0}).ok());
  store_.reset();
  store_ = Reopen();
  ASSERT_TRUE(store_);
  EXPECT_EQ(store_->Get(pending.id)->state, JobState::kPending);
  EXPECT_EQ(store_->Get(pending.id)->attempt, 1);
  auto done = store_->Get(completed.id);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, JobState::kCompleted);
  EXPECT_EQ(done->priority, Priority::kHigh);
  EXPECT_EQ(store_->GetResult(completed.id).value(), R"({"text":"x"})");
  EXPECT_EQ(store_->Attempts(completed.id)->size(), 1u);
  EXPECT_TRUE(store_->GetFootprint("base", "cpu")->has_value());
  auto same_key = store_->Insert({"base", Priority::kNormal, {}, kDigest, "key-1"});
  EXPECT_TRUE(same_key->existing);
}

// Threads sharing one store object claim at once: each job goes to exactly one of them.
TEST_P(StoreCases, ThreadsClaimingAtOnceGetDistinctJobs) {
  constexpr int kJobs = 120;
  constexpr int kThreads = 6;
  for (int i = 0; i < kJobs; ++i) Submit();
  std::vector<std::vector<std::string>> claimed(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string owner = "w" + std::to_string(t);
      for (;;) {
        auto job = store_->Claim({owner, 60'000, std::nullopt, {}});
        ASSERT_TRUE(job.ok()) << job.error().message;
        if (!*job) return;
        claimed[t].push_back((*job)->id);
        ASSERT_TRUE(store_->Complete((*job)->id, owner, "{}").ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> unique;
  size_t total = 0;
  for (const auto& ids : claimed) {
    total += ids.size();
    unique.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(total, static_cast<size_t>(kJobs));
  EXPECT_EQ(unique.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(store_->Count().value()[JobState::kCompleted], kJobs);
}

}  // namespace steno::store::cases
