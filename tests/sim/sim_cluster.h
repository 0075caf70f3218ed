// A whole scheduler on virtual time: a VirtualClock, simulated cards (SimulatedBackend), a model
// table and the Scheduler, wired together. The deterministic simulations of the scheduler tests
// and the benchmark are built from it, so they all drive the same thing the same way.
//
// Also here: the reference workload of issue 5's acceptance (five models from tiny to large on
// cards of 24, 24 and 12 GiB) and a seeded arrival generator that gives the same jobs on every
// standard library (std:: distributions do not).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sched/clock.h"
#include "sched/scheduler.h"
#include "sim/simulated_backend.h"

namespace steno::sched::sim {

inline constexpr int64_t kMiB = 1LL << 20;
inline constexpr int64_t kGiB = 1LL << 30;

struct SimModel {
  std::string name;
  int64_t weights = 0;
  int64_t stream = 0;
  int64_t job_ms = 1000;  // how long each of its jobs runs
};

// tiny, base, small, medium, large: the big ones cannot all be loaded at once.
const std::vector<SimModel>& ReferenceModels();
// cuda:0 24 GiB, cuda:1 24 GiB, cuda:2 12 GiB.
std::vector<SimCard> ReferenceCards();

// SplitMix64: deterministic everywhere.
class SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : s_(seed) {}
  uint64_t Next();
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }  // uniform in [0, n)

 private:
  uint64_t s_;
};

struct Arrival {
  std::string id;  // "<model>/<n>": SimCluster's job plan reads the model from it
  std::string model;
  Priority priority = Priority::kNormal;
  int64_t at_ms = 0;
};

// `n` jobs over `models` (uniform), priorities 20% high / 50% normal / 30% low, gaps uniform in
// [0, 2 × mean_gap_ms].
std::vector<Arrival> MakeArrivals(const std::vector<SimModel>& models, int n, int64_t mean_gap_ms,
                                  uint64_t seed);

struct SimClusterOptions {
  std::vector<SimCard> cards = ReferenceCards();
  std::vector<SimModel> models = ReferenceModels();
  SchedulerConfig config;  // sample_interval_ms = 0 unless the test wants device samples
  int64_t load_ms = 2000;
  SchedulerHooks hooks;
  // Wraps the simulated backend (e.g. to watch what the scheduler asks of it); may be null.
  std::function<std::unique_ptr<RunnerBackend>(SimulatedBackend&)> wrap_backend;
};

class SimCluster {
 public:
  explicit SimCluster(SimClusterOptions options);
  ~SimCluster();  // the scheduler goes first: its runners' Stop calls reach a live backend

  // A job whose id is "<model>/<anything>" runs for its model's job_ms (see SetJobPlan to
  // change that).
  Status Submit(const std::string& id, const std::string& model,
                Priority priority = Priority::kNormal, std::optional<int> keep_alive_s = {},
                const std::string& device = "");
  Status Submit(const Arrival& a) { return Submit(a.id, a.model, a.priority); }
  // Fires every timer due up to `ms`, letting the scheduler settle after each.
  void AdvanceTo(int64_t ms);
  void Advance(int64_t ms) { AdvanceTo(clock.NowMs() + ms); }
  int64_t now() const { return clock.NowMs(); }

  // The job as the scheduler publishes it (a default JobInfo if unknown).
  JobInfo Job(const std::string& id) const;
  JobState State(const std::string& id) const { return Job(id).job.state; }
  int64_t JobMs(const std::string& model) const;

  VirtualClock clock;
  SimulatedBackend backend;
  std::unique_ptr<RunnerBackend> wrapper;  // when options.wrap_backend was given
  std::map<std::string, ModelSpec> specs;
  std::unique_ptr<Scheduler> scheduler;

 private:
  std::map<std::string, int64_t> job_ms_;
};

}  // namespace steno::sched::sim
