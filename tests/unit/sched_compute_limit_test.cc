// Compute-aware admission in the scheduler, on a virtual clock with simulated runners: a job that
// fits in memory but finds its device at the compute limit waits in the queue, priorities decide
// who goes next, loads are not held back, and the learned limit settles where a card that shares
// its compute among its jobs stops delivering more.
//
// What a bug would break: jobs beyond the limit running (the peak count of processing jobs, from
// the scheduler's own job updates), a later job of higher priority not going first, a learned
// limit that grows to what memory allows (the median concurrency at each start).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "sched/scheduler.h"
#include "sim/sim_cluster.h"

namespace steno::sched {
namespace {

using sim::kGiB;
using sim::SimCluster;
using sim::SimClusterOptions;

// Jobs holding a stream, as the scheduler's own updates say: + on → loading, − on a final state.
struct Running {
  int now = 0;
  int peak = 0;
  std::vector<int> at_start;  // `now` right after each job was sent to its runner
  std::vector<std::string> started;

  SchedulerHooks Hooks() {
    SchedulerHooks h;
    h.on_job = [this](const JobUpdate& u) {
      if (u.kind != JobUpdate::Kind::kState) return;
      if (u.job.state == JobState::kLoading) {
        peak = std::max(peak, ++now);
        started.push_back(u.job.id);
      } else if (u.job.state == JobState::kProcessing) {
        at_start.push_back(now);
      } else if (IsFinal(u.job.state)) {
        --now;
      }
    };
    return h;
  }
};

// One 24 GiB card; "small" takes 1 GiB + 0.5 GiB a stream: memory alone would run 24 at once.
SimClusterOptions OneCard(ConcurrencyConfig compute, Running& running) {
  SimClusterOptions o;
  o.cards = {SimCard{"cuda:0", 24 * kGiB}};
  o.models = {{"small", 1 * kGiB, kGiB / 2, 1000}};
  o.config.sample_interval_ms = 0;
  o.config.placement.min_residency_ms = 0;
  o.config.queue.max_length = 1000;
  o.config.finished_jobs_kept = 1000;
  o.config.concurrency = compute;
  o.hooks = running.Hooks();
  return o;
}

ConcurrencyConfig Fixed(int n) {
  ConcurrencyConfig c;
  c.mode = ConcurrencyConfig::Mode::kFixed;
  c.fixed = n;
  return c;
}

TEST(SchedComputeLimit, JobsBeyondTheLimitWaitThoughMemoryHasRoom) {
  Running running;
  SimCluster sim(OneCard(Fixed(2), running));
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(sim.Submit("small/" + std::to_string(i), "small").ok());
  sim.Advance(2500);  // loaded, two jobs running
  const SchedulerSnapshot snap = sim.scheduler->Snapshot();
  ASSERT_EQ(snap.devices.size(), 1u);
  const DeviceLedger& card = snap.devices[0];
  EXPECT_EQ(card.compute.mode, "fixed");
  EXPECT_EQ(card.compute.limit, 2);
  EXPECT_EQ(card.compute.running, 2);
  EXPECT_EQ(snap.running, 2u);
  EXPECT_EQ(snap.queued, 4u);
  EXPECT_GT(card.memory.available, 4 * kGiB) << "memory would have taken every one of them";

  sim.Advance(60'000);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(sim.State("small/" + std::to_string(i)), JobState::kCompleted) << i;
  }
  EXPECT_EQ(running.peak, 2);
}

// A live session computes at the pace of speech for as long as it is open: memory alone admits
// it, and it does not take a batch job's compute slot (the limit is learned from batch jobs).
TEST(SchedComputeLimit, LiveSessionsAreAdmittedByMemoryAloneAndTakeNoComputeSlot) {
  Running running;
  SimCluster sim(OneCard(Fixed(1), running));
  ASSERT_TRUE(sim.Submit("small/first", "small").ok());
  sim.Advance(2100);  // loaded: "first" runs, the card is at its limit
  ASSERT_EQ(sim.State("small/first"), JobState::kProcessing);
  for (int i = 0; i < 3; ++i) {
    SubmitRequest r;
    r.job.id = "small/live" + std::to_string(i);
    r.job.model = "small";
    r.job.params.live = live::Settings{};
    r.input.path = "/audio/live.wav";
    ASSERT_TRUE(sim.scheduler->Submit(std::move(r)).ok());
  }
  ASSERT_TRUE(sim.Submit("small/second", "small").ok());
  sim.Advance(100);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(sim.State("small/live" + std::to_string(i)), JobState::kProcessing) << i;
  }
  EXPECT_EQ(sim.State("small/second"), JobState::kPending) << "the batch slot is still taken";
  const DeviceLedger card = sim.scheduler->Snapshot().devices.at(0);
  EXPECT_EQ(card.compute.running, 1) << "live sessions are not counted as computing jobs";
  sim.Advance(60'000);
  EXPECT_EQ(sim.State("small/second"), JobState::kCompleted);
}

TEST(SchedComputeLimit, PrioritiesDecideWhoTakesTheFreedSlot) {
  Running running;
  SimCluster sim(OneCard(Fixed(1), running));
  ASSERT_TRUE(sim.Submit("small/first", "small").ok());
  sim.Advance(2100);  // loaded: "first" runs, the card is at its limit
  for (const char* id : {"small/low1", "small/low2", "small/normal"}) {
    ASSERT_TRUE(sim.Submit(id, "small",
                           std::string(id).find("low") != std::string::npos ? Priority::kLow
                                                                            : Priority::kNormal)
                    .ok());
  }
  ASSERT_TRUE(sim.Submit("small/high", "small", Priority::kHigh).ok());
  sim.Advance(60'000);
  const std::vector<std::string> order = {"small/first", "small/high", "small/normal", "small/low1",
                                          "small/low2"};
  EXPECT_EQ(running.started, order);
  EXPECT_EQ(running.peak, 1);
}

TEST(SchedComputeLimit, AHighJobBehindAThousandLowOnesStartsWithinOneJobsTime) {
  Running running;
  SimCluster sim(OneCard(Fixed(2), running));
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(sim.Submit("small/low" + std::to_string(i), "small", Priority::kLow).ok());
  }
  sim.Advance(10'000);  // loaded long ago, the card at its limit of two
  const int64_t submitted = sim.now();
  ASSERT_TRUE(sim.Submit("small/high", "small", Priority::kHigh).ok());
  sim.Advance(5'000);
  const JobInfo high = sim.Job("small/high");
  ASSERT_EQ(high.job.state, JobState::kCompleted);
  EXPECT_LE(high.job.started_ms - submitted, 1000) << "the next slot to free is its";
  EXPECT_LE(high.job.finished_ms - submitted, 2 * 1000) << "its time alone is 1 s";
  EXPECT_EQ(running.peak, 2);
}

TEST(SchedComputeLimit, LoadsAreNotHeldBackByTheLimit) {
  Running running;
  SimClusterOptions o = OneCard(Fixed(1), running);
  o.models.push_back({"other", 1 * kGiB, kGiB / 2, 1000});
  SimCluster sim(o);
  ASSERT_TRUE(sim.Submit("small/busy", "small").ok());
  sim.Advance(2100);
  ASSERT_EQ(sim.scheduler->Snapshot().devices[0].compute.running, 1);
  ASSERT_TRUE(sim.scheduler->Load(LoadRequest{"other", "", std::nullopt}).ok())
      << "a load runs no job: the compute limit does not apply to it";
  sim.Advance(2100);
  int others = 0;
  for (const auto& r : sim.scheduler->Snapshot().runners) others += r.view.model == "other";
  EXPECT_EQ(others, 1);
}

// A card whose runners share two cores' worth of compute: a job's run time is fixed when it
// starts, stretched by the number of jobs running then beyond two.
struct TwoCoreCard {
  int running = 0;
  SimJobPlan Plan() {
    ++running;
    SimJobPlan p;
    p.audio_s = 5;
    p.duration_ms = 2500 * std::max(2, running);  // one job alone: 5 s, on one core
    return p;
  }
};

struct Outcome {
  int64_t median_latency_ms = 0;  // submitted → completed
  int64_t median_run_ms = 0;      // claimed → completed
  double throughput = 0;          // audio s per s from the first submission to the last end
  int median_concurrency = 0;
  int limit_at_end = 0;
};

Outcome RunTwoCoreCard(ConcurrencyConfig compute) {
  Running running;
  SimClusterOptions o = OneCard(compute, running);
  TwoCoreCard card;
  auto hooks = running.Hooks();
  o.hooks.on_job = [&card, hooks](const JobUpdate& u) {
    if (u.kind == JobUpdate::Kind::kState && IsFinal(u.job.state)) --card.running;
    hooks.on_job(u);
  };
  SimCluster sim(o);
  sim.backend.SetJobPlan([&card](const JobRunSpec&, int) { return card.Plan(); });
  // 5 s of audio every 3 s on average (gaps uniform in [0, 6 s], seeded): 1.67 audio s per s
  // offered to a card that decodes 2, in bursts.
  constexpr int kJobs = 400;
  sim::SplitMix gaps(7);
  for (int i = 0; i < kJobs; ++i) {
    EXPECT_TRUE(sim.Submit("small/" + std::to_string(i), "small").ok());
    sim.Advance(static_cast<int64_t>(gaps.Below(6001)));
  }
  sim.Advance(3 * 3600 * 1000LL);
  std::vector<int64_t> latencies;
  std::vector<int64_t> runs;
  int64_t last_end = 0;
  for (const JobInfo& j : sim.scheduler->Jobs()) {
    EXPECT_EQ(j.job.state, JobState::kCompleted) << j.job.id;
    latencies.push_back(j.job.finished_ms - j.job.created_ms);
    runs.push_back(j.job.finished_ms - j.job.started_ms);
    last_end = std::max(last_end, j.job.finished_ms);
  }
  std::sort(runs.begin(), runs.end());
  std::sort(latencies.begin(), latencies.end());
  std::vector<int> concurrency = running.at_start;
  std::sort(concurrency.begin(), concurrency.end());
  Outcome out;
  out.median_latency_ms = latencies[latencies.size() / 2];
  out.median_run_ms = runs[runs.size() / 2];
  out.throughput = kJobs * 5.0 / (static_cast<double>(last_end) / 1000.0);
  out.median_concurrency = concurrency[concurrency.size() / 2];
  out.limit_at_end = sim.scheduler->Snapshot().devices[0].compute.limit;
  return out;
}

TEST(SchedComputeLimit, LearnedLimitSettlesAtWhatTheCardSustainsAndCutsLatency) {
  ConcurrencyConfig learned;
  learned.mode = ConcurrencyConfig::Mode::kAuto;
  const Outcome limited = RunTwoCoreCard(learned);
  const Outcome unlimited = RunTwoCoreCard(ConcurrencyConfig{});
  EXPECT_LE(limited.median_concurrency, 2);
  EXPECT_GE(limited.limit_at_end, 1);
  EXPECT_LE(limited.limit_at_end, 3);
  EXPECT_GT(unlimited.median_concurrency, 2) << "memory alone lets the bursts share two cores";
  EXPECT_LT(limited.median_latency_ms, unlimited.median_latency_ms)
      << limited.median_latency_ms << " vs " << unlimited.median_latency_ms;
  EXPECT_LT(limited.median_run_ms, unlimited.median_run_ms)
      << limited.median_run_ms << " vs " << unlimited.median_run_ms;
  std::printf("two-core card: median latency %lld ms (unlimited %lld), throughput %.3f (%.3f)\n",
              static_cast<long long>(limited.median_latency_ms),
              static_cast<long long>(unlimited.median_latency_ms), limited.throughput,
              unlimited.throughput);
  EXPECT_GE(limited.throughput, 0.95 * unlimited.throughput)
      << limited.throughput << " vs " << unlimited.throughput;
}

// On the CPU the cores already bound the streams: a learned limit starts there and never shows
// more (placement would never run more, so a window above it could never fill and the shown
// limit would stay wrong for good).
TEST(SchedComputeLimit, TheCpusLearnedLimitNeverExceedsItsCores) {
  Running running;
  ConcurrencyConfig learned;
  learned.mode = ConcurrencyConfig::Mode::kAuto;
  SimClusterOptions o = OneCard(learned, running);
  o.config.cpu_cores = 2;
  o.config.max_threads_per_job = 1;
  SimCluster sim(o);
  sim.specs["small"].allowed_devices = {"cpu"};
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(sim.Submit("small/" + std::to_string(i), "small").ok());
  sim.Advance(120'000);
  for (int i = 0; i < 12; ++i) {
    ASSERT_EQ(sim.State("small/" + std::to_string(i)), JobState::kCompleted) << i;
  }
  EXPECT_EQ(running.peak, 2) << "the cores bound the CPU's streams";
  bool seen = false;
  for (const DeviceLedger& d : sim.scheduler->Snapshot().devices) {
    if (d.name != "cpu") continue;
    seen = true;
    EXPECT_EQ(d.compute.mode, "auto");
    EXPECT_GE(d.compute.windows, 2) << "the limiter measured the CPU's jobs";
    EXPECT_EQ(d.compute.limit, 2);
  }
  EXPECT_TRUE(seen) << "no cpu device in the snapshot";
}

}  // namespace
}  // namespace steno::sched
