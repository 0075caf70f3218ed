// Recycling in the scheduler: a runner past its job limit is replaced by a fresh one, queued jobs
// go to the replacement untouched, and the old runner is unloaded ("recycled") once its jobs end.
// What a bug would break: the policy never consulted (no second runner), a queued job lost or
// retried on the way, the old runner kept, or streams the scheduler added counted as a leak.
#include <gtest/gtest.h>

#include "sched/scheduler.h"
#include "sim/sim_cluster.h"

namespace steno::sched {
namespace {

using sim::kGiB;
using sim::SimCluster;
using sim::SimClusterOptions;

SimClusterOptions OneCard(runner::RecyclePolicy policy) {
  SimClusterOptions o;
  o.cards = {SimCard{"cuda:0", 24 * kGiB}};
  o.models = {{"small", 1 * kGiB, kGiB / 2, 1000}};
  o.config.sample_interval_ms = 0;
  o.config.placement.min_residency_ms = 0;
  o.config.recycle = policy;
  return o;
}

TEST(SchedRecycleTest, ARunnerPastItsJobLimitIsReplacedAndQueuedJobsRunOnTheFreshOne) {
  std::vector<RunnerUpdate> runners;
  std::map<std::string, int64_t> ran_on;
  SimClusterOptions o = OneCard({.max_jobs = 3, .max_growth_ratio = 0});
  o.config.queue.max_running = 1;  // one job at a time: the order is known
  o.hooks.on_runner = [&](const RunnerUpdate& u) { runners.push_back(u); };
  o.hooks.on_job = [&](const JobUpdate& u) {
    if (u.job.state == JobState::kCompleted) ran_on[u.job.id] = u.runner_id;
  };
  SimCluster sim(std::move(o));
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(sim.Submit("a" + std::to_string(i), "small").ok());
  sim.Advance(600'000);
  for (int i = 1; i <= 5; ++i) {
    const JobInfo j = sim.Job("a" + std::to_string(i));
    EXPECT_EQ(j.job.state, JobState::kCompleted) << i;
    EXPECT_EQ(j.job.attempt, 1) << "untouched by the replacement: " << i;
  }
  EXPECT_EQ(ran_on["a1"], 1);
  EXPECT_EQ(ran_on["a3"], 1);
  EXPECT_EQ(ran_on["a4"], 2) << "the job after the limit runs on the replacement";
  EXPECT_EQ(ran_on["a5"], 2);
  EXPECT_EQ(sim.backend.runners_started(), 2);
  bool recycled = false;
  for (const auto& u : runners) {
    if (u.kind == RunnerUpdate::Kind::kUnloaded && u.runner_id == 1) {
      EXPECT_EQ(u.reason, "recycled");
      recycled = true;
    }
  }
  EXPECT_TRUE(recycled);
  EXPECT_EQ(sim.backend.live_runners(), 1);
  EXPECT_EQ(sim.backend.used("cuda:0"), sim.scheduler->Snapshot().devices[0].memory.allocated)
      << "the old runner's memory came back";
  EXPECT_EQ(sim.backend.oom_refusals(), 0);
}

TEST(SchedRecycleTest, ABusyRunnerDueForRecyclingFinishesItsJobsFirst) {
  std::vector<RunnerUpdate> runners;
  SimClusterOptions o = OneCard({.max_jobs = 1, .max_growth_ratio = 0});
  o.config.placement.max_streams_per_runner = 2;
  o.hooks.on_runner = [&](const RunnerUpdate& u) { runners.push_back(u); };
  SimCluster sim(std::move(o));
  sim.backend.SetJobPlan([](const JobRunSpec& job, int) {
    SimJobPlan p;
    p.duration_ms = job.job_id == "long" ? 10'000 : 1000;
    return p;
  });
  ASSERT_TRUE(sim.Submit("long", "small").ok());
  ASSERT_TRUE(sim.Submit("short", "small").ok());  // a second stream on the same runner
  sim.Advance(2000 + 1000);                        // "short" ends: the runner is due
  EXPECT_EQ(sim.State("short"), JobState::kCompleted);
  EXPECT_EQ(sim.State("long"), JobState::kProcessing) << "not cut short";
  EXPECT_EQ(sim.backend.runners_started(), 2) << "the replacement started beside it";
  for (const auto& u : runners) {
    EXPECT_FALSE(u.kind == RunnerUpdate::Kind::kUnloaded) << "unloaded while busy: " << u.reason;
  }
  sim.Advance(10'000);
  EXPECT_EQ(sim.State("long"), JobState::kCompleted);
  EXPECT_EQ(sim.Job("long").job.attempt, 1);
  bool recycled = false;
  for (const auto& u : runners) {
    recycled = recycled || (u.kind == RunnerUpdate::Kind::kUnloaded && u.runner_id == 1 &&
                            u.reason == "recycled");
  }
  EXPECT_TRUE(recycled) << "unloaded once its last job ended";
}

TEST(SchedRecycleTest, StreamsTheSchedulerAddedAreNotGrowth) {
  // The device lists processes; a runner's reading grows by the stream it was given. With a
  // growth limit of 1.1× that would look like a leak if it were not charged growth.
  SimClusterOptions o = OneCard({.max_jobs = 0, .max_growth_ratio = 1.1});
  SimCluster sim(std::move(o));
  sim.backend.ListProcesses(true);
  sim.backend.SetJobPlan([](const JobRunSpec&, int) { return SimJobPlan{10'000, {}, false}; });
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  sim.Advance(3000);                           // ready, read once with one stream
  ASSERT_TRUE(sim.Submit("b", "small").ok());  // a second stream: the reading grows by a third
  sim.Advance(60'000);
  EXPECT_EQ(sim.State("a"), JobState::kCompleted);
  EXPECT_EQ(sim.State("b"), JobState::kCompleted);
  EXPECT_EQ(sim.backend.runners_started(), 1) << "not recycled";
}

}  // namespace
}  // namespace steno::sched
