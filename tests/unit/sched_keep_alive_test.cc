// Keep-alive: expiry from the last job's end, 0 / −1 / default, and overlapping requests.
#include "sched/keep_alive.h"

#include <gtest/gtest.h>

namespace steno::sched {
namespace {

TEST(SchedKeepAliveTest, DefaultExpiresSixHundredSecondsAfterTheLastJob) {
  KeepAlive k(/*loaded_ms=*/1'000);
  k.JobStarted(std::nullopt);
  EXPECT_EQ(k.ExpiresAt(), std::nullopt) << "never expires while busy";
  k.JobEnded(5'000);
  EXPECT_EQ(k.ExpiresAt(), 5'000 + 600'000);
}

TEST(SchedKeepAliveTest, ZeroUnloadsAsSoonAsTheLastJobEnds) {
  KeepAlive k(0);
  k.JobStarted(0);
  k.JobEnded(42'000);
  EXPECT_EQ(k.ExpiresAt(), 42'000);
}

TEST(SchedKeepAliveTest, MinusOneNeverExpires) {
  KeepAlive k(0);
  k.JobStarted(-1);
  k.JobEnded(42'000);
  EXPECT_EQ(k.ExpiresAt(), std::nullopt);
}

TEST(SchedKeepAliveTest, LongestRequestWinsWhileJobsOverlap) {
  KeepAlive k(0);
  k.JobStarted(300);
  k.JobStarted(0);  // overlaps: cannot shorten the 300 s
  k.JobEnded(10'000);
  EXPECT_EQ(k.ExpiresAt(), std::nullopt) << "one job still running";
  k.JobEnded(20'000);
  EXPECT_EQ(k.effective_s(), 300);
  EXPECT_EQ(k.ExpiresAt(), 20'000 + 300'000) << "from the last job's end";

  KeepAlive forever(0);
  forever.JobStarted(60);
  forever.JobStarted(-1);
  forever.JobStarted(3600);
  for (int i = 0; i < 3; ++i) forever.JobEnded(1'000);
  EXPECT_EQ(forever.ExpiresAt(), std::nullopt) << "−1 beats any number";
}

TEST(SchedKeepAliveTest, ANewBusyPeriodStartsFromItsOwnRequest) {
  KeepAlive k(0);
  k.JobStarted(-1);
  k.JobEnded(1'000);
  k.JobStarted(0);  // not overlapping the earlier job: its 0 applies
  k.JobEnded(2'000);
  EXPECT_EQ(k.ExpiresAt(), 2'000);
}

TEST(SchedKeepAliveTest, PreloadAndServerDefault) {
  EXPECT_EQ(KeepAlive(7'000, kKeepForever).ExpiresAt(), std::nullopt);
  EXPECT_EQ(KeepAlive(7'000).ExpiresAt(), 607'000) << "loaded, never used: default from load";
  KeepAlive k(0);
  k.JobStarted(std::nullopt, /*default_s=*/30);
  k.JobEnded(1'000);
  EXPECT_EQ(k.ExpiresAt(), 31'000);
}

TEST(SchedKeepAliveTest, LongerKeepAliveAndExpiry) {
  EXPECT_EQ(LongerKeepAlive(0, 600), 600);
  EXPECT_EQ(LongerKeepAlive(600, -1), -1);
  EXPECT_EQ(LongerKeepAlive(-5, 10), -1);
  EXPECT_EQ(ExpiryMs(100, 0), 100);
  EXPECT_EQ(ExpiryMs(100, -1), std::nullopt);
}

TEST(SchedKeepAliveTest, PinnedRunnerIgnoresItsJobsRequests) {
  KeepAlive k(0, kKeepForever);
  k.Pin();
  k.JobStarted(0);  // a job asking to unload at once
  k.JobEnded(1'000);
  EXPECT_TRUE(k.pinned());
  EXPECT_EQ(k.effective_s(), kKeepForever);
  EXPECT_FALSE(k.ExpiresAt().has_value());

  KeepAlive unpinned(0, kKeepForever);  // kept forever only until a job says otherwise
  unpinned.JobStarted(0);
  unpinned.JobEnded(1'000);
  EXPECT_EQ(unpinned.ExpiresAt(), std::optional<int64_t>(1'000));
}

TEST(SchedKeepAliveTest, RenewRestartsAnIdlePeriodAndMinusOnePins) {
  KeepAlive k(0, 30);
  EXPECT_EQ(k.ExpiresAt(), 30'000);
  k.Renew(20'000, 30);
  EXPECT_EQ(k.ExpiresAt(), 50'000);
  k.JobStarted(5);
  k.Renew(25'000, 60);  // busy: the longer wish holds for after its jobs
  k.JobEnded(40'000);
  EXPECT_EQ(k.ExpiresAt(), 100'000);
  k.Renew(41'000, -1);
  EXPECT_TRUE(k.pinned());
  EXPECT_FALSE(k.ExpiresAt().has_value());
  k.Renew(42'000, 10);  // a pinned runner stays pinned
  EXPECT_FALSE(k.ExpiresAt().has_value());
}

}  // namespace
}  // namespace steno::sched
