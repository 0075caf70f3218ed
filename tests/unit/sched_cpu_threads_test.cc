// The CPU's cores shared among its jobs, on a virtual clock with simulated runners: a job alone is
// given every thread it may use (--threads), jobs that wait together split the free cores so that
// more of them run side by side, and the threads of the jobs running never exceed the cores.
//
// What a bug would break: the thread count each job is sent with (JobRunSpec::threads, recorded
// by the watching backend), the most jobs running at once, and the threads in use summed from
// the jobs' own updates (a job ending without giving its threads back would leave later ones
// fewer, or none).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

#include "sched/scheduler.h"
#include "sim/sim_cluster.h"
#include "support/sched_sim.h"

namespace steno::sched {
namespace {

using sim::kGiB;
using sim::SimCluster;
using sim::SimClusterOptions;
using sim::WatcherOf;

// Jobs and CPU threads in use, from the scheduler's job updates and the threads each was sent.
struct InUse {
  SimCluster* sim = nullptr;
  int jobs = 0;
  int peak_jobs = 0;
  int threads = 0;
  int peak_threads = 0;
  std::map<std::string, int> held;

  SchedulerHooks Hooks() {
    SchedulerHooks h;
    h.on_job = [this](const JobUpdate& u) {
      if (u.kind != JobUpdate::Kind::kState || !sim) return;
      if (u.job.state == JobState::kLoading) {
        peak_jobs = std::max(peak_jobs, ++jobs);
      } else if (IsFinal(u.job.state)) {
        --jobs;
        threads -= held[u.job.id];
        held.erase(u.job.id);
      }
    };
    return h;
  }
  // After the jobs sent so far: each running one holds what it was sent with.
  void Observe() {
    for (const auto& [id, n] : WatcherOf(*sim).threads_sent()) {
      if (held.count(id) || IsFinal(sim->State(id))) continue;
      held[id] = n;
      threads += n;
    }
    peak_threads = std::max(peak_threads, threads);
  }
};

// A machine without GPUs: the CPU is the device, with `cores` given to steno and `most` threads
// a job (--threads). "small" jobs run 1 s each.
SimClusterOptions CpuOnly(int cores, int most, InUse& in_use) {
  SimClusterOptions o;
  o.cards = {};
  o.models = {{"small", 1 * kGiB, kGiB / 2, 1000}};
  o.config.sample_interval_ms = 0;
  o.config.placement.min_residency_ms = 0;
  o.config.cpu_cores = cores;
  o.config.max_threads_per_job = most;
  o.config.concurrency.mode = ConcurrencyConfig::Mode::kAuto;
  o.hooks = in_use.Hooks();
  return sim::Watched(o);
}

// Runs the virtual clock in small steps, observing the threads in use after each.
void Step(SimCluster& sim, InUse& in_use, int64_t ms) {
  for (int64_t t = 0; t < ms; t += 50) {
    sim.Advance(50);
    in_use.Observe();
  }
}

TEST(SchedCpuThreads, AJobAloneGetsEveryThreadAndJobsWaitingTogetherShareTheCores) {
  InUse in_use;
  SimCluster sim(CpuOnly(2, 2, in_use));
  in_use.sim = &sim;
  const auto& sent = WatcherOf(sim).threads_sent();

  // A burst: the first finds the CPU to itself; the four behind it wait together for it.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(sim.Submit("small/" + std::to_string(i), "small").ok());
  Step(sim, in_use, 8000);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(sim.State("small/" + std::to_string(i)), JobState::kCompleted) << i;
  }
  EXPECT_EQ(sent.at("small/0"), 2) << "a job alone uses every thread it may";
  for (int i = 1; i < 5; ++i) {
    EXPECT_EQ(sent.at("small/" + std::to_string(i)), 1) << i << ": four waiting share two cores";
  }
  EXPECT_EQ(in_use.peak_jobs, 2) << "two one-thread jobs side by side";
  EXPECT_EQ(in_use.peak_threads, 2) << "never more threads than cores";

  ASSERT_TRUE(sim.Submit("small/later", "small").ok());
  Step(sim, in_use, 3000);
  ASSERT_EQ(sim.State("small/later"), JobState::kCompleted);
  EXPECT_EQ(sent.at("small/later"), 2) << "once alone again, a job has both cores";
  EXPECT_EQ(in_use.threads, 0) << "every job gave its threads back";
}

TEST(SchedCpuThreads, ThreadsInUseStayWithinTheCoresAndNoneAboveTheMostAJobMayUse) {
  InUse in_use;
  SimCluster sim(CpuOnly(8, 4, in_use));
  in_use.sim = &sim;
  const auto& sent = WatcherOf(sim).threads_sent();
  // The first two take 4 threads each (each found no other waiting); the four behind them share
  // the cores as those free up: at most two threads each, every core in use, never more.
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(sim.Submit("small/" + std::to_string(i), "small").ok());
  Step(sim, in_use, 6000);
  for (int i = 0; i < 6; ++i) {
    const std::string id = "small/" + std::to_string(i);
    ASSERT_EQ(sim.State(id), JobState::kCompleted) << id;
    if (i < 2) {
      EXPECT_EQ(sent.at(id), 4) << id;
    } else {
      EXPECT_GE(sent.at(id), 1) << id;
      EXPECT_LE(sent.at(id), 2) << id << ": eight cores among four waiting";
    }
  }
  EXPECT_GE(in_use.peak_jobs, 4);
  EXPECT_EQ(in_use.peak_threads, 8) << "the free cores are shared out, never exceeded";

  ASSERT_TRUE(sim.Submit("small/alone", "small").ok());
  Step(sim, in_use, 3000);
  EXPECT_EQ(sent.at("small/alone"), 4) << "at most --threads, though eight cores are idle";
  EXPECT_EQ(in_use.threads, 0);
}

}  // namespace
}  // namespace steno::sched
