// Eviction has one home: ChooseVictims picks the victims for placement (step 4) and for the
// starvation bound alike, and one scheduler function executes them. What a bug would break: the
// two callers ordering victims differently, the fit arithmetic drifting from VramLedger::Fits, a
// runner start that fails after an eviction dropping its job or load without a word.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>

#include "sched/placement.h"
#include "sim/sim_cluster.h"

namespace steno::sched {
namespace {

using sim::kGiB;
using sim::kMiB;

constexpr int64_t kNow = 1'000'000;

DeviceView Gpu(int64_t allocatable, int64_t allocated) {
  DeviceView d;
  d.name = "cuda:0";
  d.memory.allocatable = allocatable;
  d.memory.allocated = allocated;
  d.memory.available = allocatable - allocated;
  return d;
}

RunnerView Idle(int64_t id, std::string model, int64_t last_used, int busy = 0) {
  return {.id = id,
          .model = std::move(model),
          .device = "cuda:0",
          .streams = 1,
          .busy_streams = busy,
          .weights_bytes = 3 * kGiB,
          .stream_bytes = kGiB,
          .loaded_ms = 0,
          .last_used_ms = last_used};
}

PlacementRequest Need(int64_t weights) {
  PlacementRequest r;
  r.model = "new";
  r.weights_bytes = weights;
  r.stream_bytes = kGiB;
  return r;
}

PlacementPolicy NoHysteresis() {
  PlacementPolicy p;
  p.min_residency_ms = 0;
  p.min_idle_ms = 0;
  return p;
}

TEST(SchedEvictionTest, PlacementAndStarvationGetTheSameVictimsFromTheOneChooser) {
  // 16 GiB, three idle runners of 4 GiB each: 4 GiB free. A 9 GiB runner needs two of them gone.
  const DeviceView dev = Gpu(16 * kGiB, 12 * kGiB);
  const std::vector<RunnerView> runners{Idle(1, "a", 500), Idle(2, "b", 100), Idle(3, "c", 300)};
  const PlacementRequest req = Need(8 * kGiB);
  const PlacementDecision d = Place(req, {dev}, runners, NoHysteresis(), kNow);
  ASSERT_EQ(d.action, PlacementAction::kEvict);
  const std::vector<int64_t> lru{2, 3};  // least recently used first, only as many as needed
  EXPECT_EQ(d.evict, lru);
  EXPECT_EQ(ChooseVictims(req, dev, runners, EvictionScope::kIdle, NoHysteresis(), kNow), lru);
  EXPECT_EQ(ChooseVictims(req, dev, runners, EvictionScope::kDrain, NoHysteresis(), kNow), lru);
}

TEST(SchedEvictionTest, DrainScopeTakesIdleRunnersBeforeBusyOnesAndNeverPinned) {
  const DeviceView dev = Gpu(16 * kGiB, 12 * kGiB);
  std::vector<RunnerView> runners{Idle(1, "a", 100, /*busy=*/1), Idle(2, "b", 900),
                                  Idle(3, "c", 50)};
  runners[2].pinned = true;
  const PlacementRequest req = Need(8 * kGiB);
  // Placement may not touch the busy runner nor the pinned one: one idle runner is not enough.
  EXPECT_TRUE(ChooseVictims(req, dev, runners, EvictionScope::kIdle, NoHysteresis(), kNow).empty());
  EXPECT_EQ(Place(req, {dev}, runners, NoHysteresis(), kNow).action, PlacementAction::kWait);
  // Starvation drains: the idle one first although it was used more recently, then the busy one.
  EXPECT_EQ(ChooseVictims(req, dev, runners, EvictionScope::kDrain, NoHysteresis(), kNow),
            (std::vector<int64_t>{2, 1}));
}

TEST(SchedEvictionTest, VictimsMakeRoomExactlyToTheByteAsTheLedgerSays) {
  // After evicting runner 1 (4 GiB) the ledger has 8 GiB available: a need of 8 GiB fits, one
  // byte more needs runner 2 as well.
  const DeviceView dev = Gpu(16 * kGiB, 12 * kGiB);
  const std::vector<RunnerView> runners{Idle(1, "a", 100), Idle(2, "b", 200), Idle(3, "c", 300)};
  EXPECT_EQ(ChooseVictims(Need(7 * kGiB), dev, runners, EvictionScope::kIdle, NoHysteresis(), kNow),
            (std::vector<int64_t>{1}));
  EXPECT_EQ(
      ChooseVictims(Need(7 * kGiB + 1), dev, runners, EvictionScope::kIdle, NoHysteresis(), kNow),
      (std::vector<int64_t>{1, 2}));
  // The new runner's CUDA context counts on a GPU.
  PlacementRequest with_context = Need(7 * kGiB);
  with_context.gpu_overhead_bytes = 1;
  EXPECT_EQ(ChooseVictims(with_context, dev, runners, EvictionScope::kIdle, NoHysteresis(), kNow),
            (std::vector<int64_t>{1, 2}));
}

// Forwards to the simulated backend; fails the next `fail_starts` runner starts.
class FailingStarts final : public RunnerBackend {
 public:
  explicit FailingStarts(SimulatedBackend& sim) : sim_(sim) {}
  Status Start(const RunnerStartSpec& spec) override {
    if (fail_starts > 0) {
      --fail_starts;
      return Error(ErrorKind::kUnavailable, "spawn_failed", "no process for you");
    }
    return sim_.Start(spec);
  }
  Status SendJob(int64_t id, const JobRunSpec& job) override { return sim_.SendJob(id, job); }
  void Cancel(int64_t id, const std::string& job) override { sim_.Cancel(id, job); }
  Status SetStreams(int64_t id, int streams) override { return sim_.SetStreams(id, streams); }
  void Stop(int64_t id) override { sim_.Stop(id); }
  int fail_starts = 0;

 private:
  SimulatedBackend& sim_;
};

// Captures everything spdlog writes while it lives.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()), previous_level_(spdlog::get_level()) {
    auto logger = std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::info);
  }
  ~LogCapture() {
    spdlog::set_default_logger(previous_);
    spdlog::set_level(previous_level_);
  }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
  spdlog::level::level_enum previous_level_;
};

struct Evicting {
  std::vector<RunnerUpdate> runners;
  std::unique_ptr<sim::SimCluster> sim;
  FailingStarts* backend = nullptr;

  // One 6 GiB card (allocatable ≈ 4.95 GiB): "big" (4.3 GiB with its context) and "small"
  // (1.8 GiB) cannot be loaded together. A big job runs and leaves its runner idle.
  Evicting() {
    sim::SimClusterOptions o;
    o.cards = {SimCard{"cuda:0", 6 * kGiB}};
    o.models = {{"small", 1 * kGiB, kGiB / 2, 1000}, {"big", 3 * kGiB, 1 * kGiB, 1000}};
    o.config.sample_interval_ms = 0;
    o.config.retry_base_ms = 1000;
    o.config.cuda_context_bytes = 300 * kMiB;
    o.config.placement.min_residency_ms = 0;
    o.config.placement.min_idle_ms = 0;
    o.hooks.on_runner = [this](const RunnerUpdate& u) { runners.push_back(u); };
    o.wrap_backend = [this](SimulatedBackend& s) {
      auto b = std::make_unique<FailingStarts>(s);
      backend = b.get();
      return b;
    };
    sim = std::make_unique<sim::SimCluster>(std::move(o));
    EXPECT_TRUE(sim->Submit("b", "big").ok());
    sim->Advance(3000);
    EXPECT_EQ(sim->State("b"), JobState::kCompleted);
  }
  bool Evicted() const {
    for (const auto& u : runners) {
      if (u.kind == RunnerUpdate::Kind::kUnloaded && u.model == "big" && u.reason == "evicted") {
        return true;
      }
    }
    return false;
  }
};

TEST(SchedEvictionTest, AJobWhoseRunnerFailsToStartAfterAnEvictionIsLoggedAndRetried) {
  Evicting e;
  LogCapture log;
  e.backend->fail_starts = 1;
  ASSERT_TRUE(e.sim->Submit("s", "small").ok());
  e.sim->Advance(0);  // the idle big runner is evicted; its exit lets the pass start "small"
  EXPECT_TRUE(e.Evicted());
  EXPECT_EQ(e.backend->fail_starts, 0) << "the start after the eviction was tried";
  JobInfo j = e.sim->Job("s");
  EXPECT_EQ(j.job.state, JobState::kPending) << "not dropped: waiting for its retry";
  EXPECT_EQ(j.job.attempt, 2);
  ASSERT_TRUE(j.job.error.has_value());
  EXPECT_NE(j.job.error->message.find("could not start a runner for small on cuda:0"),
            std::string::npos)
      << j.job.error->message;
  EXPECT_NE(log.text().find("evicting 1 runner(s) on cuda:0 for small"), std::string::npos)
      << log.text();
  EXPECT_NE(log.text().find("could not start a runner for small on cuda:0: no process for you"),
            std::string::npos)
      << log.text();
  e.sim->Advance(60'000);
  EXPECT_EQ(e.sim->State("s"), JobState::kCompleted);
  EXPECT_EQ(e.sim->Job("s").job.attempt, 2);
  EXPECT_EQ(e.sim->backend.oom_refusals(), 0);
}

TEST(SchedEvictionTest, ALoadWhoseRunnerFailsToStartAfterAnEvictionIsLogged) {
  Evicting e;
  LogCapture log;
  e.backend->fail_starts = 1;
  // Load evicts the idle big runner and waits for its memory (OnLoad's eviction is the same
  // executed decision: logged, the device marked as evicting).
  ASSERT_TRUE(e.sim->scheduler->Load({"small", "", {}}).ok());
  e.sim->Advance(0);
  EXPECT_TRUE(e.Evicted());
  EXPECT_EQ(e.backend->fail_starts, 0);
  EXPECT_NE(log.text().find("evicting 1 runner(s) on cuda:0 for small (to load it)"),
            std::string::npos)
      << log.text();
  EXPECT_NE(log.text().find("load of small dropped: could not start a runner for small on cuda:0"),
            std::string::npos)
      << log.text();
  EXPECT_TRUE(e.sim->scheduler->Snapshot().runners.empty());
  // A later load starts it.
  ASSERT_TRUE(e.sim->scheduler->Load({"small", "", {}}).ok());
  e.sim->Advance(3000);
  ASSERT_EQ(e.sim->scheduler->Snapshot().runners.size(), 1u);
  EXPECT_EQ(e.sim->scheduler->Snapshot().runners[0].view.model, "small");
}

}  // namespace
}  // namespace steno::sched
