// What the scheduler admits for a model: an out-of-memory refusal raises the estimate and the
// job is retried (never lost) with the raised estimate admitted; a measured footprint is grown by
// what the runner's greedy warm-up cannot see at the beam size jobs decode with. What a bug would
// break: an oom failing the job or retrying it on the same too-small charge; a beam-search job
// admitted on a greedy measurement.
#include <gtest/gtest.h>

#include "sched/scheduler.h"
#include "sim/sim_cluster.h"

namespace steno::sched {
namespace {

using sim::kGiB;
using sim::kMiB;
using sim::SimCluster;
using sim::SimClusterOptions;

constexpr int64_t kContext = 300 * kMiB;

SimClusterOptions OneCard() {
  SimClusterOptions o;
  o.cards = {SimCard{"cuda:0", 24 * kGiB}};
  o.models = {{"small", 1 * kGiB, 512 * kMiB, 1000}};
  o.config.sample_interval_ms = 0;
  o.config.retry_base_ms = 1000;
  o.config.cuda_context_bytes = kContext;
  o.config.oom_raise = 1.5;
  o.config.placement.min_residency_ms = 0;
  return o;
}

TEST(SchedEstimateTest, AnOomIsRetriedWithTheRaisedEstimateAndCompletes) {
  std::vector<RunnerUpdate> runners;
  SimClusterOptions o = OneCard();
  o.hooks.on_runner = [&](const RunnerUpdate& u) { runners.push_back(u); };
  SimCluster sim(std::move(o));
  sim.backend.SetJobPlan([](const JobRunSpec&, int run) {
    SimJobPlan p;
    p.duration_ms = 1000;
    if (run == 0)
      p.fail_kind = RunnerErrorKind::kOom;  // the driver refused the first run's allocation
    return p;
  });
  // Keep-alive 0: the runner unloads after the failed run, so the retry is admitted afresh.
  ASSERT_TRUE(sim.Submit("a", "small", Priority::kNormal, 0).ok());
  sim.Advance(2000);
  EXPECT_EQ(sim.backend.used("cuda:0"), 1 * kGiB + kContext + 512 * kMiB);
  sim.Advance(1000);  // the run fails with oom
  JobInfo j = sim.Job("a");
  EXPECT_EQ(j.job.state, JobState::kPending) << "retried, not lost";
  EXPECT_EQ(j.job.attempt, 2);
  ASSERT_TRUE(j.job.error.has_value());
  EXPECT_EQ(j.job.error->code, "oom");
  EXPECT_EQ(j.job.error->kind, ErrorKind::kOutOfMemory);
  sim.Advance(0);
  EXPECT_EQ(sim.backend.used("cuda:0"), 0) << "the runner unloaded";

  // The retry's runner is admitted with the stream raised 1.5×: 768 MiB.
  sim.AdvanceTo(4000 + 1);  // backoff of 1 s, then a new runner starts
  EXPECT_EQ(sim.backend.used("cuda:0"), 1 * kGiB + kContext + 768 * kMiB);
  sim.Advance(60'000);
  j = sim.Job("a");
  EXPECT_EQ(j.job.state, JobState::kCompleted);
  EXPECT_EQ(j.job.attempt, 2);
  ASSERT_EQ(runners.size(), 4u);  // loaded, unloaded, loaded, unloaded
  EXPECT_EQ(runners[0].bytes, 1 * kGiB + kContext + 512 * kMiB);
  EXPECT_EQ(runners[2].kind, RunnerUpdate::Kind::kLoaded);
  EXPECT_EQ(runners[2].bytes, 1 * kGiB + kContext + 768 * kMiB);
  EXPECT_EQ(sim.backend.oom_refusals(), 0) << "the card itself never refused";
  EXPECT_LE(sim.backend.max_concurrent_runs_of_one_job(), 1);
}

// The raise outlives the next measurement: the retry's runner reports the same greedy figure that
// proved too small, and is still charged (and later jobs admitted) at the raised one.
TEST(SchedEstimateTest, AMeasurementAfterAnOomDoesNotLowerTheRaisedStream) {
  std::vector<RunnerUpdate> runners;
  SimClusterOptions o = OneCard();
  o.hooks.on_runner = [&](const RunnerUpdate& u) { runners.push_back(u); };
  SimCluster sim(std::move(o));
  sim.backend.SetFootprint("small", 1 * kGiB, 512 * kMiB);  // what every warm-up measures
  sim.backend.SetJobPlan([](const JobRunSpec&, int run) {
    SimJobPlan p;
    p.duration_ms = 1000;
    if (run == 0) p.fail_kind = RunnerErrorKind::kOom;
    return p;
  });
  ASSERT_TRUE(sim.Submit("a", "small", Priority::kNormal, 0).ok());
  sim.Advance(3000);  // loaded, measured at 512 MiB per stream, the run fails with oom
  ASSERT_EQ(sim.Job("a").job.attempt, 2);
  sim.AdvanceTo(4000 + 1);
  sim.Advance(60'000);
  ASSERT_EQ(sim.Job("a").job.state, JobState::kCompleted);
  ASSERT_EQ(runners.size(), 4u);  // loaded, unloaded, loaded, unloaded
  EXPECT_EQ(runners[2].kind, RunnerUpdate::Kind::kLoaded);
  EXPECT_EQ(runners[2].bytes, 1 * kGiB + kContext + 768 * kMiB) << "charged at the raised figure";

  // A later job's runner is admitted and charged at the raise too.
  ASSERT_TRUE(sim.Submit("b", "small", Priority::kNormal, 0).ok());
  sim.Advance(500);
  EXPECT_EQ(sim.backend.used("cuda:0"), 1 * kGiB + kContext + 768 * kMiB);
  sim.Advance(60'000);
  EXPECT_EQ(sim.Job("b").job.state, JobState::kCompleted);
  EXPECT_EQ(sim.backend.oom_refusals(), 0);
}

TEST(SchedEstimateTest, AnOomAfterEveryRetryFailsTheJobWithItsReason) {
  SimClusterOptions o = OneCard();
  o.config.max_retries = 2;
  SimCluster sim(std::move(o));
  sim.backend.SetJobPlan([](const JobRunSpec&, int) {
    return SimJobPlan{1000, RunnerErrorKind::kOom, false};
  });
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  sim.Advance(600'000);
  const JobInfo j = sim.Job("a");
  EXPECT_EQ(j.job.state, JobState::kFailed);
  EXPECT_EQ(j.job.attempt, 3);
  ASSERT_TRUE(j.job.error.has_value());
  EXPECT_EQ(j.job.error->code, "oom");
}

TEST(SchedEstimateTest, AMeasuredFootprintIsGrownByTheBeamSearchCacheItCannotSee) {
  // Jobs decode with beam search: the resolver says a measured stream lacks 200 MiB of
  // self-attention cache. Known and fresh measurements are both planned and charged with it.
  std::vector<FootprintUpdate> footprints;
  SimClusterOptions o = OneCard();
  o.config.known_footprints[{"small", "Simulated GPU"}] = MemoryEstimate{kGiB, 100 * kMiB, true};
  o.hooks.on_footprint = [&](const FootprintUpdate& f) { footprints.push_back(f); };
  SimCluster sim(std::move(o));
  sim.specs["small"].measured_stream_extra_bytes = 200 * kMiB;
  sim.backend.SetFootprint("small", kGiB, 120 * kMiB);
  ASSERT_TRUE(sim.Submit("a", "small", Priority::kNormal, 0).ok());
  sim.Advance(0);
  EXPECT_EQ(sim.backend.used("cuda:0"), kGiB + kContext + 300 * kMiB) << "admitted";
  sim.Advance(2000);  // ready: its own measurement (120 MiB) replaces the known one
  const SchedulerSnapshot snap = sim.scheduler->Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u);
  EXPECT_EQ(snap.runners[0].view.stream_bytes, 320 * kMiB);
  ASSERT_EQ(footprints.size(), 1u);
  EXPECT_EQ(footprints[0].stream_bytes, 120 * kMiB) << "the store keeps what was measured";
}

}  // namespace
}  // namespace steno::sched
