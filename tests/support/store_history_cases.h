// More of the shared JobStore suite (support/store_cases.h): where a job ran. Every store keeps
// the job's node (the one running it, or that ran its last attempt) past the end of its lease,
// and one attempt row per run (node, start, end, outcome, reason), written in the transaction
// that starts or ends the run; GetWithAttempts reads both together. Included by the test files
// that include store_cases.h, before they instantiate the suite.
#pragma once

#include "support/store_cases.h"

namespace steno::store::cases {

// Attempt 1 on node-a is lost (its lease runs out), attempt 2 on node-b completes: the job and
// its history say so at every step.
TEST_P(StoreCases, AttemptsFollowAJobFromALostNodeToTheNextOne) {
  Job job = Submit();
  auto fresh = store_->GetWithAttempts(job.id);
  ASSERT_TRUE(fresh.ok()) << fresh.error().message;
  EXPECT_TRUE(fresh->job.node.empty()) << "never claimed";
  EXPECT_TRUE(fresh->attempts.empty());

  const int64_t first_start = now_.load();
  Job claimed = ClaimNext("node-a");
  EXPECT_EQ(claimed.node, "node-a");
  auto running = store_->GetWithAttempts(job.id);
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(running->job.node, "node-a");
  EXPECT_EQ(running->job.state, JobState::kLoading);
  ASSERT_EQ(running->attempts.size(), 1u);
  EXPECT_EQ(running->attempts[0].owner, "node-a");
  EXPECT_EQ(running->attempts[0].started_ms, first_start);
  EXPECT_EQ(running->attempts[0].ended_ms, 0) << "still running";
  EXPECT_EQ(running->attempts[0].outcome, "");

  now_ += 1500;  // node-a died: its 1 s lease runs out
  auto expired = store_->RequeueExpired();
  ASSERT_TRUE(expired.ok());
  ASSERT_EQ(*expired, std::vector<std::string>{job.id});
  const int64_t lost_at = now_.load();
  auto requeued = store_->GetWithAttempts(job.id);
  ASSERT_TRUE(requeued.ok());
  EXPECT_EQ(requeued->job.state, JobState::kPending);
  EXPECT_TRUE(requeued->job.lease_owner.empty());
  EXPECT_EQ(requeued->job.node, "node-a") << "the node of its last attempt";
  ASSERT_EQ(requeued->attempts.size(), 1u);
  EXPECT_EQ(requeued->attempts[0].outcome, "lease_expired");
  EXPECT_EQ(requeued->attempts[0].ended_ms, lost_at);
  ASSERT_TRUE(requeued->attempts[0].error.has_value());
  EXPECT_EQ(requeued->attempts[0].error->code, "lease_expired");

  now_ += 10;
  const int64_t second_start = now_.load();
  EXPECT_EQ(ClaimNext("node-b").attempt, 2);
  EXPECT_EQ(store_->Get(job.id)->node, "node-b");
  now_ += 10;
  ASSERT_TRUE(store_->Complete(job.id, "node-b", "{}").ok());

  auto done = store_->GetWithAttempts(job.id);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->job.state, JobState::kCompleted);
  EXPECT_TRUE(done->job.lease_owner.empty());
  EXPECT_EQ(done->job.node, "node-b") << "kept when the lease ends";
  ASSERT_EQ(done->attempts.size(), 2u);
  const AttemptRecord& lost = done->attempts[0];
  EXPECT_EQ(lost.attempt, 1);
  EXPECT_EQ(lost.owner, "node-a");
  EXPECT_EQ(lost.started_ms, first_start);
  EXPECT_EQ(lost.ended_ms, lost_at);
  EXPECT_EQ(lost.outcome, "lease_expired");
  const AttemptRecord& ran = done->attempts[1];
  EXPECT_EQ(ran.attempt, 2);
  EXPECT_EQ(ran.owner, "node-b");
  EXPECT_EQ(ran.started_ms, second_start);
  EXPECT_EQ(ran.ended_ms, done->job.finished_ms);
  EXPECT_EQ(ran.outcome, "completed");
  EXPECT_FALSE(ran.error.has_value());
  // Attempts reads the same history.
  EXPECT_EQ(store_->Attempts(job.id)->size(), 2u);
  // Listing carries the node too.
  JobFilter all;
  auto page = store_->List(all);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs.size(), 1u);
  EXPECT_EQ(page->jobs[0].node, "node-b");
  EXPECT_EQ(store_->GetWithAttempts("missing").error().code, kErrJobNotFound);
}

// Every way a run ends keeps the node and closes the attempt with its outcome and reason; the
// node and the history survive reopening the store.
TEST_P(StoreCases, EveryEndOfARunKeepsTheNodeAndRecordsTheOutcome) {
  Job failed = Submit();
  Job cancelled = Submit();
  Job handed_back = Submit();
  ASSERT_TRUE(store_->Claim({"node-a", 1000, failed.id, {}}).ok());
  ASSERT_TRUE(store_->Claim({"node-b", 1000, cancelled.id, {}}).ok());
  ASSERT_TRUE(store_->Claim({"node-c", 1000, handed_back.id, {}}).ok());
  ASSERT_TRUE(store_->MarkProcessing(failed.id, "node-a").ok());
  ASSERT_TRUE(store_->Fail(failed.id, "node-a", Error(ErrorKind::kBadInput, "bad", "no")).ok());
  ASSERT_TRUE(store_->Cancel(cancelled.id).ok());
  RequeueRequest back{handed_back.id, "node-c",
                      Error(ErrorKind::kUnavailable, "runner_crashed", "runner died"), 0};
  ASSERT_TRUE(store_->Requeue(back).ok());

  store_.reset();
  store_ = Reopen();
  ASSERT_TRUE(store_);
  struct Expected {
    std::string id, node, outcome, code;
  };
  for (const auto& e : {Expected{failed.id, "node-a", "failed", "bad"},
                        Expected{cancelled.id, "node-b", "cancelled", "cancelled"},
                        Expected{handed_back.id, "node-c", "requeued", "runner_crashed"}}) {
    auto got = store_->GetWithAttempts(e.id);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_EQ(got->job.node, e.node) << e.outcome;
    ASSERT_EQ(got->attempts.size(), 1u) << e.outcome;
    EXPECT_EQ(got->attempts[0].owner, e.node);
    EXPECT_EQ(got->attempts[0].outcome, e.outcome);
    EXPECT_EQ(got->attempts[0].ended_ms, now_.load()) << e.outcome;
    ASSERT_TRUE(got->attempts[0].error.has_value()) << e.outcome;
    EXPECT_EQ(got->attempts[0].error->code, e.code);
  }
}

}  // namespace steno::store::cases
