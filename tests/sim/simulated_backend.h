// Runners that exist only on a virtual clock, for the scheduler's deterministic simulations
// (tests and bench/sched_bench; `--simulate-gpus` does not use it: it runs real runners against
// simulated cards, gpu/simulated_devices.h). A runner loads in `load_ms`, runs each job for its
// planned virtual duration and holds memory on a fake per-device ledger that, like a real card,
// refuses what does not fit (the runner then reports kOom). Tests read the ledger's peak to
// prove no over-commit.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gpu/device.h"
#include "sched/clock.h"
#include "sched/runner_backend.h"

namespace steno::sched {

struct SimCard {
  std::string name;  // "cuda:0", "cuda:1", ... in ordinal order
  int64_t total_bytes = 0;
};

// What one run of a job does. `run_index` counts this job's runs on the backend (0 first).
struct SimJobPlan {
  int64_t duration_ms = 1000;
  std::optional<RunnerErrorKind> fail_kind;  // unset: done; else an error of this kind
  bool crash = false;  // the runner dies half-way through (its jobs fail with kCrash)
  bool hang = false;   // never ends and ignores its timeout (a runner stuck in a call its
                       // abort hook cannot reach): only the scheduler's backstop ends it
  double audio_s = 0;  // > 0: the result covers this much audio (its "duration", as a transcript's)
};
using SimJobPlanFn = std::function<SimJobPlan(const JobRunSpec& job, int run_index)>;

class SimulatedBackend final : public RunnerBackend {
 public:
  SimulatedBackend(Clock& clock, std::vector<SimCard> cards, int64_t load_ms = 2000);

  // Set before the first Start (the scheduler's Sink()).
  void SetSink(BackendSink sink);
  void SetJobPlan(SimJobPlanFn plan);

  Status Start(const RunnerStartSpec& spec) override;
  Status SendJob(int64_t runner_id, const JobRunSpec& job) override;
  void Cancel(int64_t runner_id, const std::string& job_id) override;
  // Records a live session's input for a job running on the runner (fed()); kNotFound
  // "job_not_running" otherwise.
  Status Feed(int64_t runner_id, const std::string& job_id, const nlohmann::json& input) override;
  Status SetStreams(int64_t runner_id, int streams) override;
  void Stop(int64_t runner_id) override;

  // What a runner of `model` reports as measured when ready (default: nothing measured).
  void SetFootprint(const std::string& model, int64_t weights_bytes, int64_t stream_bytes);
  // Like NVML: devices list each runner's process (pid 10000 + runner id) with what it holds,
  // and ready runners report it as theirs. Off: the list is unknown (processes_known = false).
  void ListProcesses(bool on);
  // Kills a runner now, as a crash would.
  void Crash(int64_t runner_id);
  // Memory another tenant holds on a card.
  void SetExternal(const std::string& card, int64_t bytes);

  // The devices as a DevicesFn (the scheduler's getGpuFn seam).
  gpu::DevicesFn Devices();
  int64_t used(const std::string& card) const;
  int64_t peak(const std::string& card) const;
  int oom_refusals() const;
  int live_runners() const;
  int runners_started() const;
  // Every input Feed accepted, in order: (job id, input).
  std::vector<std::pair<std::string, nlohmann::json>> fed() const;
  // Highest number of simultaneously running copies of one job id ever seen (must stay ≤ 1).
  int max_concurrent_runs_of_one_job() const;

 private:
  struct Run {
    Clock::TimerId timer = 0;
  };
  struct SimRunner {
    std::string card;
    std::string model;
    int64_t held = 0;
    int64_t stream_bytes = 0;
    int streams = 0;
    std::map<std::string, Run> jobs;
    Clock::TimerId load_timer = 0;
    bool exiting = false;
  };
  struct Card {
    int64_t total = 0;
    int64_t ours = 0;
    int64_t external = 0;
    int64_t peak = 0;
  };

  // All under mu_; events are emitted after unlocking.
  bool ChargeLocked(const std::string& card, int64_t bytes);
  void ExitLocked(int64_t id, const std::string& why, RunnerErrorKind job_kind,
                  std::vector<BackendEvent>& out);
  void Emit(std::vector<BackendEvent> events);
  void Later(int64_t delay_ms, std::function<void()> fn);

  Clock& clock_;
  const int64_t load_ms_;
  mutable std::mutex mu_;
  BackendSink sink_;
  SimJobPlanFn plan_;
  std::vector<std::string> card_order_;
  std::map<std::string, Card> cards_;
  std::map<int64_t, SimRunner> runners_;
  std::map<std::string, std::pair<int64_t, int64_t>> footprints_;  // model → measured
  std::map<std::string, int> runs_;                                // job id → runs started
  std::map<std::string, int> running_;                             // job id → runs in flight now
  std::vector<std::pair<std::string, nlohmann::json>> fed_;
  bool list_processes_ = false;
  int oom_refusals_ = 0;
  int started_ = 0;
  int max_concurrent_ = 0;
};

}  // namespace steno::sched
