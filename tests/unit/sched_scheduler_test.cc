// The scheduler on a virtual clock with simulated runners: keep-alive, retries, cancel, memory,
// hooks, load/unload, admission, the timeout backstop and the CUDA-context charge.
#include "sched/scheduler.h"

#include <gtest/gtest.h>

#include <memory>

#include "sim/sim_cluster.h"
#include "support/sched_sim.h"

namespace steno::sched {
namespace {

using sim::kGiB;
using sim::kMiB;
using sim::SimCluster;
using sim::SimClusterOptions;

std::vector<SimCard> OneCard(int64_t bytes = 24 * kGiB) {
  return {SimCard{"cuda:0", bytes}};
}

// Two models; jobs run 1 s unless a test plans otherwise; no minimum residency.
SimClusterOptions Options(std::vector<SimCard> cards, SchedulerConfig config = {}) {
  SimClusterOptions o;
  o.cards = std::move(cards);
  o.models = {{"small", 1 * kGiB, kGiB / 2, 1000}, {"big", 3 * kGiB, 1 * kGiB, 1000}};
  config.sample_interval_ms = 0;
  config.retry_base_ms = 1000;
  config.placement.min_residency_ms = 0;
  o.config = config;
  return o;
}

struct Recorded {
  std::vector<JobUpdate> jobs;
  std::vector<RunnerUpdate> runners;
  std::vector<FootprintUpdate> footprints;

  SchedulerHooks Hooks() {
    return {[this](const JobUpdate& u) { jobs.push_back(u); },
            [this](const FootprintUpdate& u) { footprints.push_back(u); },
            [this](const RunnerUpdate& u) { runners.push_back(u); }};
  }
  std::vector<JobState> StatesOf(const std::string& id) const {
    std::vector<JobState> out;
    for (const auto& u : jobs) {
      if (u.job.id == id && u.kind == JobUpdate::Kind::kState) out.push_back(u.job.state);
    }
    return out;
  }
};

size_t Runners(SimCluster& sim) {
  return sim.scheduler->Snapshot().runners.size();
}

TEST(SchedSchedulerKeepAlive, ZeroUnloadsRightAfterTheJob) {
  SimCluster sim(Options(OneCard()));
  ASSERT_TRUE(sim.Submit("a", "small", Priority::kNormal, 0).ok());
  sim.Advance(2000 + 1000);  // load + run
  EXPECT_EQ(sim.State("a"), JobState::kCompleted);
  sim.Advance(0);
  EXPECT_EQ(Runners(sim), 0u);
  EXPECT_EQ(sim.backend.live_runners(), 0);
  EXPECT_EQ(sim.backend.used("cuda:0"), 0);
}

TEST(SchedSchedulerKeepAlive, DefaultUnloadsAfter600IdleSeconds) {
  SimCluster sim(Options(OneCard()));
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  sim.Advance(3000);
  ASSERT_EQ(sim.State("a"), JobState::kCompleted);
  const int64_t idle_since = sim.now();
  auto snap = sim.scheduler->Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u);
  ASSERT_TRUE(snap.runners[0].expires_at_ms.has_value());
  EXPECT_EQ(*snap.runners[0].expires_at_ms, idle_since + 600'000);
  sim.AdvanceTo(idle_since + 600'000 - 1);
  EXPECT_EQ(Runners(sim), 1u);
  sim.AdvanceTo(idle_since + 600'000);
  EXPECT_EQ(Runners(sim), 0u);
  EXPECT_EQ(sim.backend.live_runners(), 0);
}

TEST(SchedSchedulerKeepAlive, MinusOneNeverUnloads) {
  SimCluster sim(Options(OneCard()));
  ASSERT_TRUE(sim.Submit("a", "small", Priority::kNormal, -1).ok());
  sim.Advance(3000);
  ASSERT_EQ(sim.State("a"), JobState::kCompleted);
  sim.Advance(10LL * 24 * 3600 * 1000);
  EXPECT_EQ(Runners(sim), 1u);
  EXPECT_FALSE(sim.scheduler->Snapshot().runners[0].expires_at_ms.has_value());
}

TEST(SchedSchedulerRetry, CrashMidJobIsRetriedAndCompletes) {
  Recorded rec;
  SimClusterOptions o = Options(OneCard());
  o.hooks = rec.Hooks();
  SimCluster sim(std::move(o));
  sim.backend.SetJobPlan([](const JobRunSpec&, int run) {
    SimJobPlan p;
    p.duration_ms = 4000;
    p.crash = run == 0;
    return p;
  });
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  sim.Advance(2000 + 2000);  // load, then crash half-way
  JobInfo j = sim.Job("a");
  EXPECT_EQ(j.job.state, JobState::kPending);
  EXPECT_EQ(j.job.attempt, 2);
  ASSERT_TRUE(j.job.error.has_value());
  EXPECT_EQ(j.job.error->code, "crash");
  sim.Advance(60'000);
  j = sim.Job("a");
  EXPECT_EQ(j.job.state, JobState::kCompleted);
  EXPECT_EQ(j.job.attempt, 2);
  EXPECT_EQ(sim.backend.runners_started(), 2);
  EXPECT_LE(sim.backend.max_concurrent_runs_of_one_job(), 1);

  // Reported in order: the first run, the retry (attempt raised, backoff and reason set), the
  // second run; the crashed runner's unload says "crash".
  EXPECT_EQ(
      rec.StatesOf("a"),
      (std::vector<JobState>{JobState::kLoading, JobState::kProcessing, JobState::kPending,
                             JobState::kLoading, JobState::kProcessing, JobState::kCompleted}));
  for (const auto& u : rec.jobs) {
    if (u.job.state != JobState::kPending) continue;
    EXPECT_EQ(u.job.attempt, 2);
    EXPECT_EQ(u.job.not_before_ms, 4000 + 1000);
    ASSERT_TRUE(u.job.error.has_value());
    EXPECT_EQ(u.job.error->code, "crash");
    EXPECT_EQ(u.runner_id, -1);
  }
  ASSERT_GE(rec.runners.size(), 3u);
  EXPECT_EQ(rec.runners[0].kind, RunnerUpdate::Kind::kLoaded);
  EXPECT_EQ(rec.runners[1].kind, RunnerUpdate::Kind::kUnloaded);
  EXPECT_EQ(rec.runners[1].reason, "crash");
  EXPECT_TRUE(rec.runners[1].crashed);  // the typed field incidents key on
  EXPECT_FALSE(rec.runners[0].crashed);
}

TEST(SchedSchedulerRetry, BadInputFailsOnceWithoutRetry) {
  SimCluster sim(Options(OneCard()));
  int runs = 0;
  sim.backend.SetJobPlan([&runs](const JobRunSpec&, int) {
    ++runs;
    SimJobPlan p;
    p.fail_kind = RunnerErrorKind::kBadInput;
    return p;
  });
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  sim.Advance(600'000);
  JobInfo j = sim.Job("a");
  EXPECT_EQ(j.job.state, JobState::kFailed);
  EXPECT_EQ(j.job.attempt, 1);
  ASSERT_TRUE(j.job.error.has_value());
  EXPECT_EQ(j.job.error->kind, ErrorKind::kBadInput);
  EXPECT_EQ(runs, 1);
}

TEST(SchedSchedulerRetry, CrashesStopAfterMaxRetries) {
  SimCluster sim(Options(OneCard()));
  sim.backend.SetJobPlan([](const JobRunSpec&, int) {
    SimJobPlan p;
    p.crash = true;
    return p;
  });
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  sim.Advance(3'600'000);
  JobInfo j = sim.Job("a");
  EXPECT_EQ(j.job.state, JobState::kFailed);
  EXPECT_EQ(j.job.attempt, 4);  // the first run and 3 retries
}

TEST(SchedSchedulerCancel, WhileLoading) {
  SimCluster sim(Options(OneCard()));
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  sim.Advance(500);
  ASSERT_EQ(sim.State("a"), JobState::kLoading);
  ASSERT_TRUE(sim.scheduler->Cancel("a").ok());
  sim.Advance(0);
  EXPECT_EQ(sim.State("a"), JobState::kCancelled);
  sim.Advance(10'000);
  EXPECT_EQ(sim.State("a"), JobState::kCancelled);  // final: the ready runner does not revive it
  EXPECT_EQ(sim.backend.max_concurrent_runs_of_one_job(), 0);
  EXPECT_FALSE(sim.scheduler->Cancel("a").ok());
}

TEST(SchedSchedulerCancel, WhileProcessingAndWhilePending) {
  SimCluster sim(Options(OneCard()));
  sim.backend.SetJobPlan([](const JobRunSpec&, int) { return SimJobPlan{60'000, {}, false}; });
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  sim.Advance(3000);
  ASSERT_EQ(sim.State("a"), JobState::kProcessing);
  ASSERT_TRUE(sim.scheduler->Cancel("a").ok());
  sim.Advance(0);
  EXPECT_EQ(sim.State("a"), JobState::kCancelled);
  sim.Advance(120'000);
  EXPECT_EQ(sim.State("a"), JobState::kCancelled);
  EXPECT_EQ(sim.Job("a").job.error->kind, ErrorKind::kCancelled);
  EXPECT_EQ(sim.scheduler->Cancel("nope").error().kind, ErrorKind::kNotFound);
}

TEST(SchedSchedulerMemory, TwoModelsOnASmallCardNeverExceedIt) {
  // 6 GiB card: allocatable (6 − 0.5) × 0.9 ≈ 4.95 GiB. "big" needs 4.3 GiB (context included),
  // "small" 1.8 GiB: they cannot both be loaded, so the scheduler must take turns.
  SchedulerConfig config;
  config.default_keep_alive_s = 0;
  SimCluster sim(Options(OneCard(6 * kGiB), config));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(sim.Submit("b" + std::to_string(i), "big").ok());
    ASSERT_TRUE(sim.Submit("s" + std::to_string(i), "small").ok());
  }
  sim.Advance(3'600'000);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(sim.State("b" + std::to_string(i)), JobState::kCompleted);
    EXPECT_EQ(sim.State("s" + std::to_string(i)), JobState::kCompleted);
  }
  EXPECT_LE(sim.backend.peak("cuda:0"), 6 * kGiB);
  EXPECT_EQ(sim.backend.oom_refusals(), 0);
  EXPECT_LE(sim.backend.max_concurrent_runs_of_one_job(), 1);
}

TEST(SchedSchedulerMemory, GpuRunnersAreChargedACudaContextCpuRunnersAreNot) {
  SchedulerConfig config;
  config.allow_cpu = true;
  config.cpu_cores = 4;
  config.cuda_context_bytes = 300 * kMiB;
  SimCluster sim(Options(OneCard(), config));
  ASSERT_TRUE(sim.Submit("g", "small", Priority::kNormal, -1, "cuda:0").ok());
  ASSERT_TRUE(sim.Submit("c", "small", Priority::kNormal, -1, "cpu").ok());
  sim.Advance(3000);
  const SchedulerSnapshot snap = sim.scheduler->Snapshot();
  ASSERT_EQ(snap.runners.size(), 2u);
  for (const auto& r : snap.runners) {
    const int64_t context = r.view.device == "cpu" ? 0 : 300 * kMiB;
    EXPECT_EQ(r.view.weights_bytes, 1 * kGiB + context) << r.view.device;
  }
  for (const auto& d : snap.devices) {
    if (d.name == "cuda:0") {
      EXPECT_EQ(d.memory.allocated, 1 * kGiB + 300 * kMiB + kGiB / 2);
    }
  }
  // The simulated card was charged the context too: it holds what the ledger says.
  EXPECT_EQ(sim.backend.used("cuda:0"), 1 * kGiB + 300 * kMiB + kGiB / 2);
}

TEST(SchedSchedulerMemory, ReadyRunnersPidsKeepTheirMemoryOutOfExternal) {
  // The device lists processes (as NVML does): once a runner is ready with its pid, its memory
  // is ours, not another tenant's; counting it twice would leave a card looking full.
  SimCluster sim(Options(OneCard()));
  sim.backend.ListProcesses(true);
  sim.backend.SetExternal("cuda:0", 2 * kGiB);
  ASSERT_TRUE(sim.Submit("a", "big", Priority::kNormal, -1).ok());
  sim.Advance(2000);
  const SchedulerSnapshot snap = sim.scheduler->Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u);
  EXPECT_EQ(snap.runners[0].pids, std::vector<int>{10001});
  ASSERT_EQ(snap.devices.size(), 1u);
  EXPECT_EQ(snap.devices[0].memory.allocated, 3 * kGiB + 300 * kMiB + 1 * kGiB);
  EXPECT_EQ(snap.devices[0].memory.external, 2 * kGiB) << "only the tenant";
}

TEST(SchedSchedulerMemory, ATenantStaysExternalWhileOnePassStartsSeveralRunners) {
  // No per-process list: external = used − ours, with "ours" as of the sample. Runners started
  // later in the same pass are not in that sample's `used`; subtracting them would shrink the
  // tenant and over-commit the card.
  SchedulerConfig config;
  config.placement.max_streams_per_runner = 1;
  SimClusterOptions o = Options(OneCard(), config);
  o.models.push_back({"fill", 5 * kGiB, kGiB / 2, 1000});
  SimCluster sim(std::move(o));
  sim.backend.SetExternal("cuda:0", 14 * kGiB);  // allocatable 21.15 GiB: 7.15 GiB are ours
  ASSERT_TRUE(sim.scheduler->Load({"fill", "", -1}).ok());  // 5.8 GiB
  sim.Advance(2000);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(sim.Submit("b" + std::to_string(i), "big").ok());
  sim.Advance(0);
  EXPECT_EQ(sim.backend.runners_started(), 1) << "4.3 GiB runners wait for the filler";
  // Its exit frees 5.8 GiB in one event: the pass that follows may start one big runner only.
  ASSERT_TRUE(sim.scheduler->Unload("fill").ok());
  sim.Advance(0);
  EXPECT_EQ(sim.backend.runners_started(), 2);
  sim.Advance(600'000);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(sim.State("b" + std::to_string(i)), JobState::kCompleted);
  EXPECT_EQ(sim.backend.oom_refusals(), 0);
  EXPECT_LE(sim.backend.peak("cuda:0"), 24 * kGiB);
}

TEST(SchedSchedulerQueue, JobWaitingForMemoryDoesNotBlockLoadedModel) {
  SimCluster sim(Options(OneCard(6 * kGiB)));
  sim.backend.SetJobPlan([](const JobRunSpec&, int) { return SimJobPlan{100'000, {}, false}; });
  ASSERT_TRUE(sim.Submit("s1", "small", Priority::kNormal, -1).ok());
  sim.Advance(3000);
  ASSERT_EQ(sim.State("s1"), JobState::kProcessing);
  // "big" cannot fit beside the busy small runner: it waits. A later small job must still run.
  ASSERT_TRUE(sim.Submit("b1", "big", Priority::kHigh).ok());
  ASSERT_TRUE(sim.Submit("s2", "small").ok());
  sim.Advance(1000);
  EXPECT_EQ(sim.State("b1"), JobState::kPending);
  EXPECT_EQ(sim.State("s2"), JobState::kProcessing);
  EXPECT_EQ(sim.backend.oom_refusals(), 0);
  const SchedulerSnapshot snap = sim.scheduler->Snapshot();
  EXPECT_EQ(snap.queued, 1u);
  EXPECT_EQ(snap.queued_by_priority[static_cast<int>(Priority::kHigh)], 1u);
  EXPECT_EQ(snap.queued_by_priority[static_cast<int>(Priority::kNormal)], 0u);
  EXPECT_EQ(snap.running, 2u);
}

TEST(SchedSchedulerQueue, UnknownModelIsRejected) {
  SimCluster sim(Options(OneCard()));
  EXPECT_EQ(sim.Submit("x", "nope").error().kind, ErrorKind::kNotFound);
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  EXPECT_EQ(sim.Submit("a", "small").error().code, "duplicate_job");
}

TEST(SchedSchedulerQueue, FindJobAndJobsServeLiveAndRecentFinalJobs) {
  SchedulerConfig config;
  config.finished_jobs_kept = 2;
  SimCluster sim(Options(OneCard(), config));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(sim.Submit("j" + std::to_string(i), "small").ok());
    sim.Advance(1);  // distinct creation times
  }
  EXPECT_EQ(sim.scheduler->Jobs().size(), 4u);
  EXPECT_EQ(sim.scheduler->FindJob("j0")->job.state, JobState::kLoading);
  sim.Advance(10'000);
  // All four completed; only the two most recent final ones are kept.
  const std::vector<JobInfo> jobs = sim.scheduler->Jobs();
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].job.id, "j2");
  EXPECT_EQ(jobs[1].job.id, "j3");
  EXPECT_EQ(jobs[1].job.state, JobState::kCompleted);
  EXPECT_EQ(jobs[1].result.value("text", ""), "simulated j3");
  EXPECT_FALSE(sim.scheduler->FindJob("j0").has_value());
}

TEST(SchedSchedulerHooks, ReportEveryStateRunnerAndFootprint) {
  Recorded rec;
  SimClusterOptions o = Options(OneCard());
  o.hooks = rec.Hooks();
  SimCluster sim(std::move(o));
  sim.backend.SetFootprint("small", 900 * kMiB, 400 * kMiB);
  ASSERT_TRUE(sim.Submit("a", "small", Priority::kNormal, 0).ok());
  sim.Advance(3000);
  ASSERT_EQ(sim.State("a"), JobState::kCompleted);
  // The initial Submit (pending) is not reported.
  EXPECT_EQ(rec.StatesOf("a"), (std::vector<JobState>{JobState::kLoading, JobState::kProcessing,
                                                      JobState::kCompleted}));
  const JobUpdate& done = rec.jobs.back();
  EXPECT_EQ(done.payload.value("text", ""), "simulated a");
  EXPECT_EQ(done.runner_id, 1);
  EXPECT_EQ(done.device, "cuda:0");
  EXPECT_EQ(rec.jobs.front().runner_id, 1);
  EXPECT_EQ(rec.jobs.front().device, "cuda:0");

  // The measurement, keyed by the card's model name rather than its ordinal.
  ASSERT_EQ(rec.footprints.size(), 1u);
  EXPECT_EQ(rec.footprints[0].model, "small");
  EXPECT_EQ(rec.footprints[0].device_name, "Simulated GPU");
  EXPECT_EQ(rec.footprints[0].weights_bytes, 900 * kMiB);
  EXPECT_EQ(rec.footprints[0].stream_bytes, 400 * kMiB);

  // Loaded after the 2 s load with the measured bytes (plus the context); unloaded by keep-alive 0.
  ASSERT_EQ(rec.runners.size(), 2u);
  EXPECT_EQ(rec.runners[0].kind, RunnerUpdate::Kind::kLoaded);
  EXPECT_EQ(rec.runners[0].duration_ms, 2000);
  EXPECT_EQ(rec.runners[0].bytes, 900 * kMiB + 300 * kMiB + 400 * kMiB);
  EXPECT_EQ(rec.runners[1].kind, RunnerUpdate::Kind::kUnloaded);
  EXPECT_EQ(rec.runners[1].reason, "keep-alive expired");
  EXPECT_FALSE(rec.runners[1].crashed);
  EXPECT_EQ(rec.runners[1].model, "small");

  // Runners still loaded at shutdown are reported unloaded, reason "shutdown".
  ASSERT_TRUE(sim.scheduler->Load({"big", "", -1}).ok());
  sim.Advance(2000);
  sim.scheduler.reset();
  ASSERT_EQ(rec.runners.size(), 4u);
  EXPECT_EQ(rec.runners[3].kind, RunnerUpdate::Kind::kUnloaded);
  EXPECT_EQ(rec.runners[3].model, "big");
  EXPECT_EQ(rec.runners[3].reason, "shutdown");
  EXPECT_FALSE(rec.runners[3].crashed);
}

TEST(SchedSchedulerHooks, KnownFootprintsReplaceTheEstimate) {
  SchedulerConfig config;
  config.known_footprints[{"small", "Simulated GPU"}] = MemoryEstimate{2 * kGiB, kGiB, true};
  config.known_footprints[{"small", "Other GPU"}] = MemoryEstimate{5 * kGiB, kGiB, true};
  SimCluster sim(Options(OneCard(), config));
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  sim.Advance(100);
  const auto snap = sim.scheduler->Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u);
  EXPECT_EQ(snap.runners[0].view.weights_bytes, 2 * kGiB + 300 * kMiB);
  EXPECT_EQ(snap.runners[0].view.stream_bytes, kGiB);
}

TEST(SchedSchedulerLoad, LoadsFollowsKeepAliveAndRenews) {
  SimCluster sim(Options({SimCard{"cuda:0", 24 * kGiB}, SimCard{"cuda:1", 24 * kGiB}}));
  EXPECT_EQ(sim.scheduler->Load({"nope", "", {}}).error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(sim.scheduler->Load({"small", "cuda:7", {}}).error().code, "bad_device");
  ASSERT_TRUE(sim.scheduler->Load({"small", "cuda:1", 30}).ok());
  sim.Advance(2000);
  auto snap = sim.scheduler->Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u);
  EXPECT_EQ(snap.runners[0].view.device, "cuda:1");
  EXPECT_EQ(snap.runners[0].state, RunnerState::kReady);
  ASSERT_TRUE(snap.runners[0].expires_at_ms.has_value());
  EXPECT_EQ(*snap.runners[0].expires_at_ms, 30'000);  // idle since it was started at 0
  // Loading it again renews the period instead of starting a second runner.
  sim.AdvanceTo(20'000);
  ASSERT_TRUE(sim.scheduler->Load({"small", "", 30}).ok());
  sim.Advance(0);
  snap = sim.scheduler->Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u);
  EXPECT_EQ(*snap.runners[0].expires_at_ms, 50'000);
  EXPECT_EQ(sim.backend.runners_started(), 1);
  sim.AdvanceTo(50'000);
  EXPECT_EQ(Runners(sim), 0u);

  // −1: pinned, even after a job with keep-alive 0 ran on it.
  ASSERT_TRUE(sim.scheduler->Load({"big", "", -1}).ok());
  sim.Advance(2000);
  ASSERT_TRUE(sim.Submit("b", "big", Priority::kNormal, 0).ok());
  sim.Advance(3'600'000);
  EXPECT_EQ(sim.State("b"), JobState::kCompleted);
  EXPECT_EQ(Runners(sim), 1u);
  EXPECT_EQ(sim.backend.runners_started(), 2);
}

TEST(SchedSchedulerLoad, NoRoomEvenAfterEvictingIdleRunnersAndEvictionThenLoad) {
  SchedulerConfig config;
  config.placement.min_idle_ms = 0;
  SimClusterOptions o = Options(OneCard(6 * kGiB), config);
  o.models.push_back({"huge", 5 * kGiB, kGiB, 1000});
  SimCluster sim(std::move(o));
  const Status huge = sim.scheduler->Load({"huge", "", {}});
  EXPECT_EQ(huge.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(huge.error().code, "no_room");

  // "big" does not fit beside an idle "small": the small runner is evicted, then big loads.
  ASSERT_TRUE(sim.scheduler->Load({"small", "", {}}).ok());
  sim.Advance(2000);
  ASSERT_TRUE(sim.scheduler->Load({"big", "", {}}).ok());
  sim.Advance(3000);
  const auto snap = sim.scheduler->Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u);
  EXPECT_EQ(snap.runners[0].view.model, "big");
  EXPECT_EQ(snap.runners[0].state, RunnerState::kReady);
  EXPECT_EQ(sim.backend.oom_refusals(), 0);
}

TEST(SchedSchedulerLoad, UnloadStopsIdleNowAndBusyAfterTheirJobs) {
  Recorded rec;
  SimClusterOptions o = Options(OneCard());
  o.hooks = rec.Hooks();
  SimCluster sim(std::move(o));
  EXPECT_EQ(sim.scheduler->Unload("small").error().code, "not_loaded");
  sim.backend.SetJobPlan([](const JobRunSpec&, int) { return SimJobPlan{10'000, {}, false}; });
  ASSERT_TRUE(sim.scheduler->Load({"big", "", -1}).ok());  // pinned: unloaded anyway
  ASSERT_TRUE(sim.Submit("s1", "small").ok());
  sim.Advance(3000);
  ASSERT_EQ(sim.State("s1"), JobState::kProcessing);
  ASSERT_TRUE(sim.scheduler->Unload("big").ok());
  ASSERT_TRUE(sim.scheduler->Unload("small").ok());
  sim.Advance(0);
  auto snap = sim.scheduler->Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u) << "the idle big runner is gone at once";
  EXPECT_EQ(snap.runners[0].view.model, "small");
  // No new job goes to the draining runner: s2 gets a fresh one.
  ASSERT_TRUE(sim.Submit("s2", "small").ok());
  sim.Advance(0);
  EXPECT_EQ(sim.Job("s2").runner_id, 3);
  sim.Advance(10'000);
  EXPECT_EQ(sim.State("s1"), JobState::kCompleted);
  int unload_requested = 0;
  for (const auto& u : rec.runners) {
    if (u.kind == RunnerUpdate::Kind::kUnloaded && u.reason == "unload requested") {
      ++unload_requested;
    }
  }
  EXPECT_EQ(unload_requested, 2);
  snap = sim.scheduler->Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u);
  EXPECT_EQ(snap.runners[0].view.id, 3);
}

TEST(SchedSchedulerQueue, StopAdmittingRefusesNewWorkAndFinishesTheRest) {
  SimCluster sim(Options(OneCard()));
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  ASSERT_TRUE(sim.Submit("b", "small").ok());
  sim.Advance(500);
  sim.scheduler->StopAdmitting();
  EXPECT_FALSE(sim.scheduler->Snapshot().admitting);
  EXPECT_EQ(sim.Submit("c", "small").error().code, "shutting_down");
  EXPECT_EQ(sim.scheduler->Load({"big", "", {}}).error().code, "shutting_down");
  sim.Advance(10'000);
  EXPECT_EQ(sim.State("a"), JobState::kCompleted);
  EXPECT_EQ(sim.State("b"), JobState::kCompleted);
}

TEST(SchedSchedulerQueue, ReconfigureChangesLimitsAndKeepAliveForNewWork) {
  SchedulerConfig config;
  config.queue.max_length = 10;
  config.queue.max_running = 1;  // "b" waits in the queue while "a" runs
  config.default_keep_alive_s = 600;
  SimCluster sim(Options(OneCard(), config));
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  ASSERT_TRUE(sim.Submit("b", "small").ok());
  SchedulerConfig reloaded = config;
  reloaded.queue.max_length = 1;
  reloaded.default_keep_alive_s = 0;
  sim.scheduler->Reconfigure(reloaded);
  // The queue holds as many as the new bound: that one stays, a new one is refused.
  auto refused = sim.Submit("c", "small");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "queue_full");
  sim.Advance(10'000);
  EXPECT_EQ(sim.State("a"), JobState::kCompleted);
  EXPECT_EQ(sim.State("b"), JobState::kCompleted);
  // The runner's last jobs ended under keep-alive 0: it is gone at once, not after 600 s.
  EXPECT_EQ(Runners(sim), 0u);
  ASSERT_TRUE(sim.Submit("d", "small").ok());
}

TEST(SchedSchedulerTimeout, BackstopKillsTheRunnerAndFailsTheJob) {
  Recorded rec;
  SchedulerConfig config;
  config.timeout_grace_ms = 30'000;
  SimClusterOptions o = Options(OneCard(), config);
  o.hooks = rec.Hooks();
  SimCluster sim(std::move(o));
  sim.backend.SetJobPlan([](const JobRunSpec& job, int) {
    SimJobPlan p;
    p.hang = job.job_id == "stuck";
    p.duration_ms = 200'000;
    return p;
  });
  SubmitRequest r;
  r.job.id = "stuck";
  r.job.model = "small";
  r.job.params.timeout_s = 60;
  ASSERT_TRUE(sim.scheduler->Submit(r).ok());
  ASSERT_TRUE(sim.Submit("other", "small").ok());  // shares the runner, is lost with it
  sim.Advance(2000);
  ASSERT_EQ(sim.State("stuck"), JobState::kProcessing);
  sim.AdvanceTo(2000 + 60'000 + 30'000 - 1);
  EXPECT_EQ(sim.State("stuck"), JobState::kProcessing);
  sim.AdvanceTo(2000 + 60'000 + 30'000);
  const JobInfo j = sim.Job("stuck");
  EXPECT_EQ(j.job.state, JobState::kFailed);
  ASSERT_TRUE(j.job.error.has_value());
  EXPECT_EQ(j.job.error->kind, ErrorKind::kTimeout);
  EXPECT_EQ(j.job.error->code, "timeout");
  EXPECT_EQ(j.job.attempt, 1) << "a timeout is not retried";
  bool killed = false;
  for (const auto& u : rec.runners) {
    killed |= u.kind == RunnerUpdate::Kind::kUnloaded && u.reason == "timeout";
  }
  EXPECT_TRUE(killed);
  // The other job lost its run with the runner and completes on a new one.
  sim.Advance(600'000);
  EXPECT_EQ(sim.State("other"), JobState::kCompleted);
  EXPECT_EQ(sim.Job("other").job.attempt, 2);
}

TEST(SchedSchedulerTimeout, NoBackstopWhenTheJobEndsInTime) {
  SimCluster sim(Options(OneCard()));
  SubmitRequest r;
  r.job.id = "quick";
  r.job.model = "small";
  r.job.params.timeout_s = 5;
  ASSERT_TRUE(sim.scheduler->Submit(r).ok());
  sim.Advance(3000);
  ASSERT_EQ(sim.State("quick"), JobState::kCompleted);
  sim.Advance(100'000);
  EXPECT_EQ(sim.State("quick"), JobState::kCompleted);
  EXPECT_EQ(Runners(sim), 1u) << "its runner was not killed";
}

// A live session's input (Scheduler::Feed) reaches the runner running its job, in the order
// fed, and only while the job is processing there: before (queued, loading) and after its end it
// is dropped.
TEST(SchedSchedulerFeed, ReachesTheBackendInOrderOnlyWhileTheJobIsProcessing) {
  SimCluster sim(Options(OneCard()));
  sim.backend.SetJobPlan([](const JobRunSpec&, int) { return SimJobPlan{60'000, {}, false}; });
  auto input = [](int n) { return nlohmann::json{{"op", "audio"}, {"n", n}}; };
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  sim.scheduler->Feed("a", input(0));  // queued
  sim.Advance(500);
  ASSERT_EQ(sim.State("a"), JobState::kLoading);
  sim.scheduler->Feed("a", input(1));  // its runner is still loading
  sim.Advance(3000);
  ASSERT_EQ(sim.State("a"), JobState::kProcessing);
  for (int n = 2; n < 7; ++n) sim.scheduler->Feed("a", input(n));
  sim.scheduler->Feed("nope", input(99));  // no such job
  sim.Advance(0);
  sim.AdvanceTo(70'000);
  ASSERT_EQ(sim.State("a"), JobState::kCompleted);
  sim.scheduler->Feed("a", input(7));  // ended
  sim.Advance(0);
  const auto fed = sim.backend.fed();
  ASSERT_EQ(fed.size(), 5u);
  for (size_t i = 0; i < fed.size(); ++i) {
    EXPECT_EQ(fed[i].first, "a");
    EXPECT_EQ(fed[i].second["n"], static_cast<int>(i) + 2) << "in the order fed";
  }
}

// A live session's job has no timeout (its params say 0): neither the runner nor the scheduler's
// backstop ends it, however long it runs, whatever the server's default.
TEST(SchedSchedulerTimeout, AJobWithoutATimeoutRunsForHours) {
  SchedulerConfig config;
  config.default_timeout_s = 60;
  config.timeout_grace_ms = 1000;
  SimCluster sim(Options(OneCard(), config));
  sim.backend.SetJobPlan([](const JobRunSpec& job, int) {
    EXPECT_EQ(job.timeout_s, 0) << "the runner is given no timeout";
    SimJobPlan p;
    p.hang = true;  // only a cancel ends it
    return p;
  });
  SubmitRequest r;
  r.job.id = "live";
  r.job.model = "small";
  r.job.params.timeout_s = 0;
  ASSERT_TRUE(sim.scheduler->Submit(r).ok());
  sim.Advance(3000);
  ASSERT_EQ(sim.State("live"), JobState::kProcessing);
  sim.Advance(10 * 3600 * 1000);
  EXPECT_EQ(sim.State("live"), JobState::kProcessing);
  EXPECT_EQ(Runners(sim), 1u) << "its runner was not killed";
  ASSERT_TRUE(sim.scheduler->Cancel("live").ok());
  sim.Advance(0);
  EXPECT_EQ(sim.State("live"), JobState::kCancelled);
}

// A live session's job (params "live") gets no timeout even when its params leave it to the
// server's default: neither its runner nor the backstop ends it.
TEST(SchedSchedulerTimeout, ALiveSessionsJobHasNoTimeoutWhateverTheDefault) {
  auto params = JobParamsFromJson(R"({"live": {"language": "en", "turn_detection": null}})");
  ASSERT_TRUE(params.ok());
  ASSERT_NE(JobParamsToJson(*params).find("\"live\""), std::string::npos);
  SchedulerConfig config;
  config.default_timeout_s = 60;
  config.timeout_grace_ms = 1000;
  SimCluster sim(Options(OneCard(), config));
  sim.backend.SetJobPlan([](const JobRunSpec& job, int) {
    EXPECT_EQ(job.timeout_s, 0) << "the runner is given no timeout";
    SimJobPlan p;
    p.hang = true;
    return p;
  });
  SubmitRequest r;
  r.job.id = "live";
  r.job.model = "small";
  r.job.params = *params;
  ASSERT_FALSE(r.job.params.timeout_s.has_value());
  ASSERT_TRUE(sim.scheduler->Submit(r).ok());
  sim.Advance(3000);
  ASSERT_EQ(sim.State("live"), JobState::kProcessing);
  sim.Advance(3 * 3600 * 1000);
  EXPECT_EQ(sim.State("live"), JobState::kProcessing);
  EXPECT_EQ(Runners(sim), 1u) << "its runner was not killed";
}

}  // namespace
}  // namespace steno::sched

namespace steno::sched {
namespace {

// Placeable: what a shared store's claim loop asks before claiming a job.
TEST(SchedSchedulerPlaceable, NamesModelsThatCouldStartNowAndNothingWhileWorkWaits) {
  SchedulerConfig config;
  config.queue.max_running = 2;
  SimCluster sim(Options(OneCard(), config));
  using Models = std::vector<std::string>;
  EXPECT_EQ(sim.scheduler->Placeable({"small", "big", "nope"}), (Models{"small", "big"}))
      << "an unknown model is left out";
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  sim.Advance(100);
  EXPECT_EQ(sim.scheduler->Placeable({"small"}), (Models{"small"}));
  ASSERT_TRUE(sim.Submit("b", "small").ok());
  sim.Advance(100);
  EXPECT_EQ(sim.scheduler->Snapshot().running, 2u);
  EXPECT_TRUE(sim.scheduler->Placeable({"small", "big"}).empty()) << "at max_running";
  ASSERT_TRUE(sim.Submit("c", "small").ok());
  sim.Advance(100);
  EXPECT_EQ(sim.scheduler->Snapshot().queued, 1u);
  EXPECT_TRUE(sim.scheduler->Placeable({"small", "big"}).empty()) << "a job waits here";
  sim.Advance(60'000);
  EXPECT_EQ(sim.Job("c").job.state, JobState::kCompleted);
  EXPECT_EQ(sim.scheduler->Placeable({"big", "small"}), (Models{"big", "small"}));
  sim.scheduler->StopAdmitting();
  EXPECT_TRUE(sim.scheduler->Placeable({"small"}).empty()) << "not admitting";
}

TEST(SchedSchedulerPlaceable, AModelThatDoesNotFitTheFreeMemoryIsLeftOut) {
  // 6 GiB: planned (6 − 0.5) × 0.9 ≈ 4.95 GiB. big needs 3 + 1 GiB + the CUDA context.
  SimCluster sim(Options(OneCard(6 * kGiB)));
  using Models = std::vector<std::string>;
  EXPECT_EQ(sim.scheduler->Placeable({"big", "small"}), (Models{"big", "small"}));
  // A busy runner of small (not evictable) leaves 4.95 − 1.8 GiB: small fits, big does not.
  sim.backend.SetJobPlan([](const JobRunSpec&, int) {
    SimJobPlan p;
    p.duration_ms = 600'000;
    return p;
  });
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  sim.Advance(5'000);
  ASSERT_EQ(sim.Job("a").job.state, JobState::kProcessing);
  EXPECT_EQ(sim.scheduler->Placeable({"big", "small"}), (Models{"small"}));
}

// A live session whose runner dies is failed, not retried: its audio and open utterance lived on
// that runner, so a rerun elsewhere would silently restart it. An ordinary job beside it on the
// same runner is retried.
TEST(SchedSchedulerRetry, ALiveSessionWhoseRunnerDiesFailsAndAnOrdinaryJobIsRetried) {
  auto params = JobParamsFromJson(R"({"live": {"language": "en", "turn_detection": null}})");
  ASSERT_TRUE(params.ok());
  SchedulerConfig config;
  config.retry_base_ms = 100;
  SimCluster sim(Options(OneCard(), config));
  sim.backend.SetJobPlan([](const JobRunSpec&, int) {
    SimJobPlan p;
    p.hang = true;
    return p;
  });
  SubmitRequest live;
  live.job.id = "live";
  live.job.model = "small";
  live.job.params = *params;
  ASSERT_TRUE(sim.scheduler->Submit(live).ok());
  ASSERT_TRUE(sim.Submit("plain", "small").ok());
  sim.Advance(3000);
  ASSERT_EQ(sim.State("live"), JobState::kProcessing);
  ASSERT_EQ(sim.State("plain"), JobState::kProcessing);
  const auto snap = sim.scheduler->Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u);
  sim.backend.Crash(snap.runners[0].view.id);
  sim.Advance(0);
  EXPECT_EQ(sim.State("live"), JobState::kFailed);
  EXPECT_EQ(sim.scheduler->FindJob("live")->job.error->code, "crash");
  EXPECT_EQ(sim.State("plain"), JobState::kPending) << "an ordinary job is retried";
}

}  // namespace
}  // namespace steno::sched
