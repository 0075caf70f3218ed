// The job queue: priority order, aging (low never starves), bounds, limits, backoff, cancel.
#include "sched/job_queue.h"

#include <gtest/gtest.h>

#include <array>
#include <unordered_set>

namespace steno::sched {
namespace {

std::vector<std::string> Ids(const std::vector<QueuedJob>& jobs) {
  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.id);
  return ids;
}

QueuedJob J(std::string id, Priority p, int64_t at, std::string model = "base") {
  QueuedJob j;
  j.id = std::move(id);
  j.model = std::move(model);
  j.priority = p;
  j.enqueued_ms = at;
  return j;
}

TEST(SchedJobQueueTest, HigherPriorityFirstThenArrivalOrder) {
  JobQueue q;
  ASSERT_TRUE(q.Push(J("low", Priority::kLow, 0)).ok());
  ASSERT_TRUE(q.Push(J("n1", Priority::kNormal, 0)).ok());
  ASSERT_TRUE(q.Push(J("high", Priority::kHigh, 0)).ok());
  ASSERT_TRUE(q.Push(J("n2", Priority::kNormal, 0)).ok());
  EXPECT_EQ(Ids(q.Candidates(0, {})), (std::vector<std::string>{"high", "n1", "n2", "low"}));
  EXPECT_EQ(Ids(q.Ordered()), Ids(q.Candidates(0, {})));
}

TEST(SchedJobQueueTest, LowPriorityEventuallyRunsUnderAFloodOfHigh) {
  QueueConfig c{.aging_step_ms = 1'000};
  JobQueue q(c);
  ASSERT_TRUE(q.Push(J("low", Priority::kLow, 0)).ok());
  // One slot; every 100 ms a new high job arrives and the best candidate runs.
  int64_t now = 0;
  int high = 0;
  bool low_ran = false;
  int64_t low_ran_at = -1;
  for (int step = 0; step < 100 && !low_ran; ++step, now += 100) {
    ASSERT_TRUE(q.Push(J("h" + std::to_string(high++), Priority::kHigh, now)).ok());
    ASSERT_TRUE(q.Push(J("h" + std::to_string(high++), Priority::kHigh, now)).ok());
    auto next = q.Candidates(now, {}, 1);
    ASSERT_EQ(next.size(), 1u);
    q.Remove(next[0].id);
    low_ran = next[0].id == "low";
    if (low_ran) low_ran_at = now;
  }
  EXPECT_TRUE(low_ran);
  // The aging bound: a low job loses to high jobs only while they arrived within 2 steps of it.
  // Only the 40 high jobs that arrived within 2 steps (2 s) of it run first: one per 100 ms.
  EXPECT_LE(low_ran_at, 4 * c.aging_step_ms);
  EXPECT_GE(low_ran_at, 3 * c.aging_step_ms) << "but not before those high jobs";
}

TEST(SchedJobQueueTest, AgedLowOutranksAFreshHigh) {
  JobQueue q(QueueConfig{.aging_step_ms = 1'000});
  ASSERT_TRUE(q.Push(J("low", Priority::kLow, 0)).ok());
  ASSERT_TRUE(q.Push(J("high", Priority::kHigh, 2'001)).ok());
  EXPECT_EQ(q.Candidates(2'001, {})[0].id, "low");
  EXPECT_LT(q.EffectiveRank(J("low", Priority::kLow, 0), 2'001),
            q.EffectiveRank(J("high", Priority::kHigh, 2'001), 2'001));
  // A high job 1 ms earlier than the bound still wins.
  JobQueue q2(QueueConfig{.aging_step_ms = 1'000});
  ASSERT_TRUE(q2.Push(J("low", Priority::kLow, 0)).ok());
  ASSERT_TRUE(q2.Push(J("high", Priority::kHigh, 1'999)).ok());
  EXPECT_EQ(q2.Candidates(1'999, {})[0].id, "high");
}

TEST(SchedJobQueueTest, FullQueueRejectsWithARetryAfterHint) {
  JobQueue q(QueueConfig{.max_length = 2, .max_running = 1});
  ASSERT_TRUE(q.Push(J("a", Priority::kHigh, 0)).ok());
  ASSERT_TRUE(q.Push(J("b", Priority::kLow, 0)).ok());
  q.RecordJobDuration(10'000);
  auto full = q.Push(J("c", Priority::kHigh, 0));
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(full.error().code, "queue_full");
  EXPECT_NE(full.error().message.find("retry after 20 s"), std::string::npos)
      << full.error().message;
  EXPECT_EQ(q.retry_after_s(1), 20);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_FALSE(q.Contains("c"));
  // Room again after one leaves.
  EXPECT_TRUE(q.Remove("a"));
  EXPECT_TRUE(q.Push(J("c", Priority::kHigh, 0)).ok());
}

TEST(SchedJobQueueTest, DuplicateIdIsRefused) {
  JobQueue q;
  ASSERT_TRUE(q.Push(J("a", Priority::kHigh, 0)).ok());
  auto dup = q.Push(J("a", Priority::kLow, 5));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, "duplicate_job");
  EXPECT_EQ(q.size(), 1u);
}

TEST(SchedJobQueueTest, RetryAfterSecondsClamps) {
  EXPECT_EQ(RetryAfterSeconds(0, 30'000, 4), 1);
  EXPECT_EQ(RetryAfterSeconds(8, 30'000, 4), 60);
  EXPECT_EQ(RetryAfterSeconds(1'000, 30'000, 1), 300);
  EXPECT_EQ(RetryAfterSeconds(3, 1'001, 0), 4) << "0 slots counts as 1; rounds up";
}

TEST(SchedJobQueueTest, GlobalAndPerModelRunningLimits) {
  JobQueue q(QueueConfig{.max_running = 3, .max_running_per_model = 2});
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(q.Push(J("a" + std::to_string(i), Priority::kNormal, i, "A")).ok());
  ASSERT_TRUE(q.Push(J("b0", Priority::kNormal, 10, "B")).ok());
  // Nothing running: two of A (its limit), then B.
  EXPECT_EQ(Ids(q.Candidates(100, {})), (std::vector<std::string>{"a0", "a1", "b0"}));
  // One A already running: one more A, then B, and the global limit stops there.
  RunningCounts r{.total = 1, .per_model = {{"A", 1}}};
  EXPECT_EQ(Ids(q.Candidates(100, r)), (std::vector<std::string>{"a0", "b0"}));
  r = {.total = 3, .per_model = {{"C", 3}}};
  EXPECT_TRUE(q.Candidates(100, r).empty()) << "global limit reached";
}

TEST(SchedJobQueueTest, BackoffHidesAJobUntilItsTimeAndCancelRemovesIt) {
  JobQueue q;
  QueuedJob retry = J("retry", Priority::kHigh, 0);
  retry.not_before_ms = 5'000;
  ASSERT_TRUE(q.Push(retry).ok());
  ASSERT_TRUE(q.Push(J("other", Priority::kLow, 0)).ok());
  EXPECT_EQ(Ids(q.Candidates(4'999, {})), (std::vector<std::string>{"other"}));
  EXPECT_EQ(Ids(q.Candidates(5'000, {})), (std::vector<std::string>{"retry", "other"}));
  EXPECT_TRUE(q.Remove("retry"));
  EXPECT_FALSE(q.Remove("retry"));
  EXPECT_EQ(Ids(q.Candidates(5'000, {})), (std::vector<std::string>{"other"}));
}

TEST(SchedJobQueueTest, BestWalksGroupsInQueueOrderAndSkipsWholeGroups) {
  JobQueue q(QueueConfig{.aging_step_ms = 1'000});
  ASSERT_TRUE(q.Push(J("a0", Priority::kNormal, 0, "A")).ok());
  ASSERT_TRUE(q.Push(J("b0", Priority::kNormal, 1, "B")).ok());
  ASSERT_TRUE(q.Push(J("a1", Priority::kHigh, 2, "A")).ok());  // rank 2 − 1000: first
  QueuedJob on1 = J("a2", Priority::kNormal, 3, "A");
  on1.device = "cuda:1";  // same model, its own group
  ASSERT_TRUE(q.Push(on1).ok());
  std::unordered_set<std::string> skipped;
  std::string group;
  const QueuedJob* best = q.Best(skipped, &group);
  ASSERT_NE(best, nullptr);
  EXPECT_EQ(best->id, "a1");
  // A (any device) cannot be placed: none of its jobs is offered again, B's and cuda:1's are.
  skipped.insert(group);
  best = q.Best(skipped, &group);
  ASSERT_NE(best, nullptr);
  EXPECT_EQ(best->id, "b0");
  skipped.insert(group);
  best = q.Best(skipped, &group);
  ASSERT_NE(best, nullptr);
  EXPECT_EQ(best->id, "a2");
  skipped.insert(group);
  EXPECT_EQ(q.Best(skipped, &group), nullptr);
  // Taking a group's best makes its next one the group's head.
  ASSERT_TRUE(q.Remove("a1"));
  best = q.Best({}, &group);
  ASSERT_NE(best, nullptr);
  EXPECT_EQ(best->id, "a0");
  EXPECT_EQ(q.GroupHeads().size(), 3u);
  EXPECT_EQ(q.size_by_priority(), (std::array<size_t, 3>{0, 3, 0}));
}

TEST(SchedJobQueueTest, JobsInBackoffJoinTheirGroupOnceDue) {
  JobQueue q;
  QueuedJob retry = J("retry", Priority::kHigh, 0);
  retry.not_before_ms = 5'000;
  ASSERT_TRUE(q.Push(retry).ok());
  ASSERT_TRUE(q.Push(J("other", Priority::kLow, 0)).ok());
  q.PromoteDue(4'999);
  EXPECT_EQ(q.Best({}, nullptr)->id, "other");
  EXPECT_EQ(q.NextDue(), 5'000);
  q.PromoteDue(5'000);
  EXPECT_EQ(q.Best({}, nullptr)->id, "retry") << "its old place in the order";
  EXPECT_FALSE(q.NextDue().has_value());
  // Removing a job still in backoff works too.
  QueuedJob later = J("later", Priority::kNormal, 0);
  later.not_before_ms = 9'000;
  ASSERT_TRUE(q.Push(later).ok());
  EXPECT_TRUE(q.Remove("later"));
  q.PromoteDue(10'000);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.GroupHeads().size(), 1u);
}

}  // namespace
}  // namespace steno::sched
