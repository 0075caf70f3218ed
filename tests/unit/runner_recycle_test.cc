#include "runner/recycle_policy.h"

#include <gtest/gtest.h>

namespace steno::runner {
namespace {

TEST(RecyclePolicyTest, IdleRunnerPastItsJobLimitIsReplaced) {
  RecyclePolicy p{.max_jobs = 100, .max_growth_ratio = 0};
  EXPECT_EQ(RecycleReason({.jobs_done = 99}, p), "");
  EXPECT_NE(RecycleReason({.jobs_done = 100}, p).find("100 jobs"), std::string::npos);
}

TEST(RecyclePolicyTest, IdleRunnerWhoseMemoryGrewTooMuchIsReplaced) {
  RecyclePolicy p{.max_jobs = 0, .max_growth_ratio = 1.5};
  RunnerUsage u{.jobs_done = 5, .bytes_at_ready = 1000, .bytes_now = 1500};
  EXPECT_EQ(RecycleReason(u, p), "") << "exactly at the limit stays";
  u.bytes_now = 1501;
  EXPECT_NE(RecycleReason(u, p).find("memory grew"), std::string::npos);
}

TEST(RecyclePolicyTest, ZeroDisablesEachRule) {
  RecyclePolicy p{.max_jobs = 0, .max_growth_ratio = 0};
  EXPECT_EQ(RecycleReason({.jobs_done = 1 << 30, .bytes_at_ready = 1, .bytes_now = 1 << 30}, p),
            "");
  // Unknown size at ready: growth cannot be judged.
  RecyclePolicy g{.max_jobs = 0, .max_growth_ratio = 1.5};
  EXPECT_EQ(RecycleReason({.jobs_done = 1, .bytes_at_ready = 0, .bytes_now = 5}, g), "");
}

}  // namespace
}  // namespace steno::runner
