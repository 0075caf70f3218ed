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
#include <vector>

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

// A machine without GPUs (CpuOnly) and what its jobs have in use.
struct CpuCluster {
  CpuCluster(int cores, int most) : sim(CpuOnly(cores, most, in_use)) { in_use.sim = &sim; }

  // Submits `ids` ("small/..." jobs) at once, runs the virtual clock `ms` in small steps
  // (observing the threads in use after each), and asserts that each completed.
  void Run(const std::vector<std::string>& ids, int64_t ms) {
    for (const std::string& id : ids) ASSERT_TRUE(sim.Submit(id, "small").ok()) << id;
    for (int64_t t = 0; t < ms; t += 50) {
      sim.Advance(50);
      in_use.Observe();
    }
    for (const std::string& id : ids) ASSERT_EQ(sim.State(id), JobState::kCompleted) << id;
  }
  // The threads job `id` was sent with.
  int Sent(const std::string& id) { return WatcherOf(sim).threads_sent().at(id); }

  InUse in_use;  // before `sim`: its hooks point here
  SimCluster sim;
};

// "small/0" ... "small/<n-1>".
std::vector<std::string> Small(int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back("small/" + std::to_string(i));
  return ids;
}

TEST(SchedCpuThreads, AJobAloneGetsEveryThreadAndJobsWaitingTogetherShareTheCores) {
  CpuCluster c(2, 2);
  // A burst: the first finds the CPU to itself; the four behind it wait together for it.
  ASSERT_NO_FATAL_FAILURE(c.Run(Small(5), 8000));
  EXPECT_EQ(c.Sent("small/0"), 2) << "a job alone uses every thread it may";
  for (int i = 1; i < 5; ++i) {
    EXPECT_EQ(c.Sent("small/" + std::to_string(i)), 1) << i << ": four waiting share two cores";
  }
  EXPECT_EQ(c.in_use.peak_jobs, 2) << "two one-thread jobs side by side";
  EXPECT_EQ(c.in_use.peak_threads, 2) << "never more threads than cores";

  ASSERT_NO_FATAL_FAILURE(c.Run({"small/later"}, 3000));
  EXPECT_EQ(c.Sent("small/later"), 2) << "once alone again, a job has both cores";
  EXPECT_EQ(c.in_use.threads, 0) << "every job gave its threads back";
}

TEST(SchedCpuThreads, ThreadsInUseStayWithinTheCoresAndNoneAboveTheMostAJobMayUse) {
  CpuCluster c(8, 4);
  // The first two take 4 threads each (each found no other waiting); the four behind them share
  // the cores as those free up: at most two threads each, every core in use, never more.
  ASSERT_NO_FATAL_FAILURE(c.Run(Small(6), 6000));
  for (int i = 0; i < 6; ++i) {
    const std::string id = "small/" + std::to_string(i);
    if (i < 2) {
      EXPECT_EQ(c.Sent(id), 4) << id;
    } else {
      EXPECT_GE(c.Sent(id), 1) << id;
      EXPECT_LE(c.Sent(id), 2) << id << ": eight cores among four waiting";
    }
  }
  EXPECT_GE(c.in_use.peak_jobs, 4);
  EXPECT_EQ(c.in_use.peak_threads, 8) << "the free cores are shared out, never exceeded";

  ASSERT_NO_FATAL_FAILURE(c.Run({"small/alone"}, 3000));
  EXPECT_EQ(c.Sent("small/alone"), 4) << "at most --threads, though eight cores are idle";
  EXPECT_EQ(c.in_use.threads, 0);
}

}  // namespace
}  // namespace steno::sched
