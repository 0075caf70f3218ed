// Memory as it really is: runners of a kind whose processes the test controls (the echo kind,
// support/echo_kind.h) on simulated cards whose per-process lists come from those processes.
// A runner whose process tree grows past what the ledger charges it is charged its peak, later
// admissions are planned against it, the next load of the model plans with it, and a device
// charged more than it holds fires the device_oversubscribed alert, once.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>

#include "alerts/alert_engine.h"
#include "alerts/ledger_observation.h"
#include "runners/dispatcher.h"
#include "runners/kind_registry.h"
#include "sched/scheduler.h"
#include "support/echo_kind.h"

namespace steno {
namespace {

using sched::BackendEvent;
using test::EchoBackend;

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;

// One scheduler driving echo runners on simulated cards (cuda:0, cuda:1, ... of `cards` bytes)
// that list each runner's processes with what they hold: its first process the weights, its
// second the streams, each forked worker its own bytes. No reserve, no safety margin and no
// CUDA context, so the figures are the runners' own. Idle runners are evicted at once when
// another model needs their room; keep-alive is the default 600 s.
class EchoCluster {
 public:
  EchoCluster(std::vector<int64_t> cards, test::EchoKindOptions echo,
              std::map<std::string, sched::MemoryEstimate> models)
      : cards_(std::move(cards)), models_(std::move(models)) {
    echo.hold_jobs = true;
    if (!kinds_.Add(test::kEchoKind, test::EchoKind(echo, &echo_)).ok()) std::abort();
    runners::KindContext context;
    context.sink = [sink = sink_](BackendEvent e) { (*sink)(std::move(e)); };
    dispatcher_ = std::move(runners::Dispatcher::Create(kinds_, context)).value();
    sched::SchedulerConfig config;
    config.sample_interval_ms = 0;  // sampled after each change of our runners
    config.cuda_context_bytes = 0;
    config.reserve.default_bytes = 0;
    config.safety_factor = 1.0;
    config.placement.min_residency_ms = 0;
    config.placement.min_idle_ms = 0;
    config.placement.max_streams_per_runner = 1;
    // Growth here is a server loading under work, not a leak: no replacement by the recycle
    // policy (its growth bound is tested in sched_recycle_test).
    config.recycle.max_growth_ratio = 0;
    sched::SchedulerHooks hooks;
    hooks.on_footprint = [this](const sched::FootprintUpdate& f) { footprints.push_back(f); };
    hooks.on_runner = [this](const sched::RunnerUpdate& u) {
      if (u.kind == sched::RunnerUpdate::Kind::kLoaded) loaded.push_back(u);
    };
    scheduler = std::make_unique<sched::Scheduler>(
        config, clock, *dispatcher_, Devices(),
        [this](const std::string& m) -> Result<sched::ModelSpec> {
          auto it = models_.find(m);
          if (it == models_.end()) return Error(ErrorKind::kNotFound, "model_not_found", m);
          return sched::ModelSpec{"", it->second, test::kEchoKind};
        },
        hooks);
    *sink_ = scheduler->Sink();
  }
  ~EchoCluster() { scheduler.reset(); }

  void Submit(const std::string& id, const std::string& model) {
    sched::SubmitRequest r;
    r.job.id = id;
    r.job.model = model;
    r.input = {"", "digest-" + id, id + ".wav"};
    ASSERT_TRUE(scheduler->Submit(std::move(r)).ok()) << id;
    scheduler->WaitIdle();
  }
  JobState State(const std::string& id) const {
    auto j = scheduler->FindJob(id);
    return j ? j->job.state : JobState::kPending;
  }
  // The live runner of `model` (id 0: none).
  int64_t RunnerOf(const std::string& model) const {
    for (const auto& r : echo_->live()) {
      if (r.spec.model == model) return r.id;
    }
    return 0;
  }
  // Forks a worker holding `bytes` in the runner's tree and lets the scheduler sample it.
  void Fork(int64_t runner_id, int64_t bytes) {
    ASSERT_NE(echo_->Fork(runner_id, bytes), 0);
    scheduler->WaitIdle();
  }
  void FinishHeld() {
    echo_->FinishHeld();
    scheduler->WaitIdle();
  }
  // What the runners' processes hold on a card now.
  int64_t Held(const std::string& device) const {
    int64_t sum = 0;
    for (const auto& r : echo_->live()) sum += r.spec.device == device ? r.bytes() : 0;
    return sum;
  }
  std::vector<EchoBackend::Runner> Live() const { return echo_->live(); }
  const sched::RunnerInfo* Info(const sched::SchedulerSnapshot& snap, int64_t id) const {
    for (const auto& r : snap.runners) {
      if (r.view.id == id) return &r;
    }
    return nullptr;
  }

  sched::VirtualClock clock;
  std::unique_ptr<sched::Scheduler> scheduler;
  // Written on the scheduler's worker, read by the test once it is idle.
  std::vector<sched::FootprintUpdate> footprints;
  std::vector<sched::RunnerUpdate> loaded;

 private:
  gpu::DevicesFn Devices() {
    return [this]() -> Result<std::vector<gpu::DeviceSample>> {
      std::vector<gpu::DeviceSample> out;
      const auto live = echo_ ? echo_->live() : std::vector<EchoBackend::Runner>{};
      for (size_t i = 0; i < cards_.size(); ++i) {
        gpu::DeviceSample s;
        s.index = s.physical_index = static_cast<int>(i);
        s.name = "Echo GPU";
        s.simulated = true;
        s.total_bytes = cards_[i];
        s.processes_known = true;
        for (const auto& r : live) {
          if (r.spec.device != "cuda:" + std::to_string(i)) continue;
          s.processes.push_back({r.pids.at(0), r.weights_bytes});
          s.processes.push_back({r.pids.at(1), r.streams * r.stream_bytes});
          for (const auto& [pid, held] : r.workers) s.processes.push_back({pid, held});
          s.used_bytes += r.bytes();
        }
        s.free_bytes = s.total_bytes - s.used_bytes;
        out.push_back(std::move(s));
      }
      return out;
    };
  }

  std::vector<int64_t> cards_;
  std::map<std::string, sched::MemoryEstimate> models_;
  EchoBackend* echo_ = nullptr;
  runners::KindRegistry kinds_;
  std::shared_ptr<sched::BackendSink> sink_ = std::make_shared<sched::BackendSink>();
  std::unique_ptr<runners::Dispatcher> dispatcher_;
};

// Each server answers its health check holding 1 GiB (+ 256 MiB for its one request), then forks
// a worker that loads the rest: 5 GiB in all, as declared.
test::EchoKindOptions LazyServer() {
  test::EchoKindOptions o;
  o.weights_bytes = 1 * kGiB;
  o.stream_bytes = 256 * kMiB;
  return o;
}
constexpr int64_t kWorker = 3 * kGiB + 3 * kGiB / 4;

TEST(SchedMeasuredMemory, TwoModelsDeclaredAt5GiBOnAn8GiBCardAreNeverLoadedTogether) {
  const sched::MemoryEstimate declared{4 * kGiB + 3 * kGiB / 4, 256 * kMiB, false};
  EchoCluster c({8 * kGiB}, LazyServer(), {{"a", declared}, {"b", declared}});
  int together = 0;  // checked at every step below
  int64_t peak = 0;
  auto check = [&] {
    together += c.RunnerOf("a") != 0 && c.RunnerOf("b") != 0;
    peak = std::max(peak, c.Held("cuda:0"));
  };
  // Rounds: a job of one model runs (its runner forks its worker once loaded) while a job of
  // the other arrives; that one waits, then evicts the idle runner and runs in turn.
  std::string busy = "a";
  c.Submit("a/0", "a");
  for (int round = 1; round <= 6; ++round) {
    const std::string other = busy == "a" ? "b" : "a";
    const int64_t runner = c.RunnerOf(busy);
    ASSERT_NE(runner, 0) << "round " << round;
    ASSERT_EQ(c.State(busy + "/" + std::to_string(round - 1)), JobState::kProcessing);
    c.Fork(runner, kWorker);
    check();
    c.Submit(other + "/" + std::to_string(round), other);
    check();
    EXPECT_EQ(c.State(other + "/" + std::to_string(round)), JobState::kPending)
        << "round " << round << ": " << other << " must wait while " << busy << " holds 5 GiB";
    c.FinishHeld();  // the busy job ends; its idle runner is evicted for the waiting one
    check();
    EXPECT_EQ(c.State(other + "/" + std::to_string(round)), JobState::kProcessing);
    busy = other;
  }
  c.FinishHeld();
  EXPECT_EQ(together, 0);
  EXPECT_LE(peak, 8 * kGiB);
  EXPECT_EQ(c.loaded.size(), 7u) << "one load per round, each after the other's unload";
}

TEST(SchedMeasuredMemory, ARunnerThatGrowsIsChargedItsPeakAndTheNextModelWaits) {
  // "srv" is declared (and measured at ready) at 2 GiB + 512 MiB per request; "other" at 3 GiB.
  test::EchoKindOptions echo;
  echo.weights_bytes = 2 * kGiB;
  echo.stream_bytes = 512 * kMiB;
  EchoCluster c(
      {8 * kGiB}, echo,
      {{"srv", {2 * kGiB, 512 * kMiB, false}}, {"other", {2560 * kMiB, 512 * kMiB, false}}});
  c.Submit("s/1", "srv");
  const int64_t srv = c.RunnerOf("srv");
  ASSERT_NE(srv, 0);
  sched::SchedulerSnapshot snap = c.scheduler->Snapshot();
  ASSERT_EQ(snap.devices.at(0).memory.allocated, 2560 * kMiB);
  ASSERT_EQ(c.footprints.size(), 1u);

  // Under load it forks a worker holding 3.5 GiB: its tree holds 6 GiB.
  c.Fork(srv, 3 * kGiB + kGiB / 2);
  snap = c.scheduler->Snapshot();
  const sched::RunnerInfo* info = c.Info(snap, srv);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->pids.size(), 3u) << "its new process set";
  EXPECT_EQ(info->measured_bytes, 6 * kGiB);
  EXPECT_EQ(info->grown_bytes, 3 * kGiB + kGiB / 2);
  EXPECT_EQ(info->view.weights_bytes, 5 * kGiB + kGiB / 2) << "charged its peak";
  EXPECT_EQ(snap.devices.at(0).memory.allocated, 6 * kGiB);
  EXPECT_EQ(snap.devices.at(0).memory.external, 0) << "its worker is not another tenant";
  ASSERT_EQ(c.footprints.size(), 2u);
  EXPECT_EQ(c.footprints[1].model, "srv");
  EXPECT_EQ(c.footprints[1].device_name, "Echo GPU");
  EXPECT_EQ(c.footprints[1].weights_bytes, 5 * kGiB + kGiB / 2) << "the remembered footprint";
  EXPECT_EQ(c.footprints[1].stream_bytes, 512 * kMiB);

  // 6 GiB charged + 3 GiB > 8 GiB: "other" waits instead of being admitted beside it.
  c.Submit("o/1", "other");
  EXPECT_EQ(c.State("o/1"), JobState::kPending);
  EXPECT_EQ(c.RunnerOf("other"), 0);
  c.FinishHeld();  // s/1 ends; srv is idle: "other" evicts it and runs
  EXPECT_EQ(c.State("s/1"), JobState::kCompleted);
  EXPECT_EQ(c.State("o/1"), JobState::kProcessing);
  EXPECT_EQ(c.RunnerOf("srv"), 0);

  // The next load of srv plans with 6 GiB: it does not fit beside "other" (2.5 GiB measured).
  c.Submit("s/2", "srv");
  EXPECT_EQ(c.State("s/2"), JobState::kPending);
  c.FinishHeld();  // o/1 ends; s/2 evicts "other"
  ASSERT_EQ(c.State("s/2"), JobState::kProcessing);
  snap = c.scheduler->Snapshot();
  info = c.Info(snap, c.RunnerOf("srv"));
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->view.weights_bytes, 5 * kGiB + kGiB / 2)
      << "charged the grown footprint at ready, though it measured 2 GiB again";
  EXPECT_EQ(info->grown_bytes, 0);
  EXPECT_EQ(info->measured_bytes, 2560 * kMiB) << "a lower reading does not lower the charge";
  EXPECT_EQ(c.footprints.back().weights_bytes, 5 * kGiB + kGiB / 2) << "not lowered in the store";
  c.FinishHeld();
}

TEST(SchedMeasuredMemory, AnOversubscribedDeviceFiresItsAlertOnceNamingModelAndDevice) {
  test::EchoKindOptions echo;
  echo.weights_bytes = 2 * kGiB;
  echo.stream_bytes = 512 * kMiB;
  EchoCluster c({8 * kGiB, 8 * kGiB}, echo, {{"whisperx", {2 * kGiB, 512 * kMiB, false}}});
  alerts::AlertEngine engine;
  ASSERT_TRUE(engine.SetRules(alerts::DefaultRules(), 0).ok());
  std::vector<alerts::AlertTransition> seen;
  int64_t t = 0;
  auto evaluate = [&](int times) {
    for (int i = 0; i < times; ++i, t += 15'000) {
      alerts::Observation obs;
      obs.ledgers = alerts::ObserveLedgers(c.scheduler->Snapshot());
      for (auto& tr : engine.Evaluate(t, obs)) {
        if (tr.kind == alerts::RuleKind::kDeviceOversubscribed) seen.push_back(tr);
      }
    }
  };
  c.Submit("w/1", "whisperx");
  const int64_t runner = c.RunnerOf("whisperx");
  ASSERT_NE(runner, 0);
  evaluate(2);
  EXPECT_TRUE(seen.empty()) << "2.5 GiB on an 8 GiB card";
  c.Fork(runner, 4 * kGiB);  // 6.5 GiB: charged more, still within the card
  evaluate(2);
  EXPECT_TRUE(seen.empty());
  c.Fork(runner, 2 * kGiB);  // 8.5 GiB
  EXPECT_EQ(c.scheduler->Snapshot().devices.at(0).memory.allocated, 8 * kGiB + kGiB / 2);
  evaluate(4);
  c.Fork(runner, 256 * kMiB);  // grows again while firing: still one alert
  evaluate(4);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].state, alerts::AlertState::kFiring);
  EXPECT_EQ(seen[0].rule, "device_oversubscribed");
  EXPECT_EQ(seen[0].labels, (alerts::Labels{{"device", "cuda:0"}}));
  EXPECT_EQ(seen[0].value, static_cast<double>(kGiB / 2)) << "0.5 GiB over the card";
  EXPECT_NE(seen[0].message.find("cuda:0"), std::string::npos) << seen[0].message;
  EXPECT_NE(seen[0].message.find("whisperx"), std::string::npos) << seen[0].message;

  // Unloaded: the charge is gone and the alert resolves (after its quiet minute), once.
  c.FinishHeld();
  ASSERT_TRUE(c.scheduler->Unload("whisperx").ok());
  c.scheduler->WaitIdle();
  evaluate(8);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].state, alerts::AlertState::kResolved);
}

}  // namespace
}  // namespace steno
