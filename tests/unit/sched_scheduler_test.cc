// The scheduler on a virtual clock with simulated runners: keep-alive, retries, cancel, memory.
#include "sched/scheduler.h"

#include <gtest/gtest.h>

#include <memory>

#include "sched/simulated_backend.h"

namespace steno::sched {
namespace {

constexpr int64_t kGiB = 1LL << 30;

struct Sim {
  explicit Sim(std::vector<SimCard> cards, SchedulerConfig config = {}) : backend(clock, cards) {
    config.sample_interval_ms = 0;
    config.retry_base_ms = 1000;
    config.placement.min_residency_ms = 0;
    models["small"] = ModelSpec{"/m/small.bin", MemoryEstimate{1 * kGiB, kGiB / 2, false}};
    models["big"] = ModelSpec{"/m/big.bin", MemoryEstimate{3 * kGiB, 1 * kGiB, false}};
    scheduler =
        std::make_unique<Scheduler>(config, clock, backend, backend.Devices(),
                                    [this](const std::string& m) -> Result<ModelSpec> {
                                      auto it = models.find(m);
                                      if (it == models.end())
                                        return Error(ErrorKind::kNotFound, "model_not_found", m);
                                      return it->second;
                                    });
    backend.SetSink(scheduler->Sink());
  }
  ~Sim() { scheduler.reset(); }

  Status Submit(const std::string& id, const std::string& model, std::optional<int> keep_alive = {},
                Priority priority = Priority::kNormal) {
    SubmitRequest r;
    r.job.id = id;
    r.job.model = model;
    r.job.priority = priority;
    r.job.params.keep_alive_s = keep_alive;
    r.audio_path = "/audio/" + id + ".wav";
    return scheduler->Submit(std::move(r));
  }
  void Advance(int64_t ms) { AdvanceTo(*scheduler, clock, clock.NowMs() + ms); }
  JobInfo Job(const std::string& id) {
    auto snap = scheduler->Snapshot();
    const JobInfo* j = snap.FindJob(id);
    EXPECT_NE(j, nullptr) << id;
    return j ? *j : JobInfo{};
  }
  JobState State(const std::string& id) { return Job(id).job.state; }
  size_t Runners() { return scheduler->Snapshot().runners.size(); }

  VirtualClock clock;
  SimulatedBackend backend;
  std::map<std::string, ModelSpec> models;
  std::unique_ptr<Scheduler> scheduler;
};

std::vector<SimCard> OneCard(int64_t bytes = 24 * kGiB) {
  return {SimCard{"cuda:0", bytes}};
}

TEST(SchedSchedulerKeepAlive, ZeroUnloadsRightAfterTheJob) {
  Sim sim(OneCard());
  ASSERT_TRUE(sim.Submit("a", "small", 0).ok());
  sim.Advance(2000 + 1000);  // load + run
  EXPECT_EQ(sim.State("a"), JobState::kCompleted);
  sim.Advance(0);
  EXPECT_EQ(sim.Runners(), 0u);
  EXPECT_EQ(sim.backend.live_runners(), 0);
  EXPECT_EQ(sim.backend.used("cuda:0"), 0);
}

TEST(SchedSchedulerKeepAlive, DefaultUnloadsAfter600IdleSeconds) {
  Sim sim(OneCard());
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  sim.Advance(3000);
  ASSERT_EQ(sim.State("a"), JobState::kCompleted);
  const int64_t idle_since = sim.clock.NowMs();
  auto snap = sim.scheduler->Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u);
  ASSERT_TRUE(snap.runners[0].expires_at_ms.has_value());
  EXPECT_EQ(*snap.runners[0].expires_at_ms, idle_since + 600'000);
  AdvanceTo(*sim.scheduler, sim.clock, idle_since + 600'000 - 1);
  EXPECT_EQ(sim.Runners(), 1u);
  AdvanceTo(*sim.scheduler, sim.clock, idle_since + 600'000);
  EXPECT_EQ(sim.Runners(), 0u);
  EXPECT_EQ(sim.backend.live_runners(), 0);
}

TEST(SchedSchedulerKeepAlive, MinusOneNeverUnloads) {
  Sim sim(OneCard());
  ASSERT_TRUE(sim.Submit("a", "small", -1).ok());
  sim.Advance(3000);
  ASSERT_EQ(sim.State("a"), JobState::kCompleted);
  sim.Advance(10LL * 24 * 3600 * 1000);
  EXPECT_EQ(sim.Runners(), 1u);
  EXPECT_FALSE(sim.scheduler->Snapshot().runners[0].expires_at_ms.has_value());
}

TEST(SchedSchedulerRetry, CrashMidJobIsRetriedAndCompletes) {
  Sim sim(OneCard());
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
}

TEST(SchedSchedulerRetry, BadInputFailsOnceWithoutRetry) {
  Sim sim(OneCard());
  int runs = 0;
  sim.backend.SetJobPlan([&runs](const JobRunSpec&, int) {
    ++runs;
    SimJobPlan p;
    p.fail_kind = "bad_input";
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
  Sim sim(OneCard());
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
  Sim sim(OneCard());
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
  Sim sim(OneCard());
  sim.backend.SetJobPlan([](const JobRunSpec&, int) { return SimJobPlan{60'000, "", false}; });
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
  // 6 GiB card: allocatable (6 − 0.5) × 0.9 ≈ 4.95 GiB. "big" needs 4 GiB, "small" 1.5 GiB:
  // they cannot both be loaded, so the scheduler must take turns.
  SchedulerConfig config;
  config.default_keep_alive_s = 0;
  Sim sim(OneCard(6 * kGiB), config);
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

TEST(SchedSchedulerQueue, JobWaitingForMemoryDoesNotBlockLoadedModel) {
  Sim sim(OneCard(6 * kGiB));
  sim.backend.SetJobPlan([](const JobRunSpec&, int) { return SimJobPlan{100'000, "", false}; });
  ASSERT_TRUE(sim.Submit("s1", "small", -1).ok());
  sim.Advance(3000);
  ASSERT_EQ(sim.State("s1"), JobState::kProcessing);
  // "big" cannot fit beside the busy small runner: it waits. A later small job must still run.
  ASSERT_TRUE(sim.Submit("b1", "big", {}, Priority::kHigh).ok());
  ASSERT_TRUE(sim.Submit("s2", "small").ok());
  sim.Advance(1000);
  EXPECT_EQ(sim.State("b1"), JobState::kPending);
  EXPECT_EQ(sim.State("s2"), JobState::kProcessing);
  EXPECT_EQ(sim.backend.oom_refusals(), 0);
}

TEST(SchedSchedulerQueue, UnknownModelIsRejected) {
  Sim sim(OneCard());
  EXPECT_EQ(sim.Submit("x", "nope").error().kind, ErrorKind::kNotFound);
  ASSERT_TRUE(sim.Submit("a", "small").ok());
  EXPECT_EQ(sim.Submit("a", "small").error().code, "duplicate_job");
}

}  // namespace
}  // namespace steno::sched
