// The scheduler's state machine: jobs, runners, timers and ledgers, changed only by Handle().
// Not thread-safe by design: exactly one thread (the Scheduler's worker) calls it. Timers it arms
// on the clock post events back through `post`; they never touch the state themselves.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sched/clock.h"
#include "sched/keep_alive.h"
#include "sched/scheduler_types.h"

namespace steno::sched {

class SchedulerState {
 public:
  using PostFn = std::function<void(Event)>;
  SchedulerState(SchedulerConfig config, Clock& clock, RunnerBackend& backend,
                 gpu::DevicesFn devices, ModelInfoFn models, PostFn post);

  void Handle(Event event);
  // Stops every runner (shutdown).
  void StopAll();
  SchedulerSnapshot Snapshot() const;

 private:
  struct JobEntry {
    JobInfo info;
    std::string audio_path;
    bool cancel_requested = false;
  };
  struct RunnerEntry {
    RunnerInfo info;
    KeepAlive keep_alive{0};
    std::vector<std::string> waiting;  // assigned while loading: sent once ready
    std::set<std::string> sent;        // sent to the runner, no outcome yet
    Clock::TimerId expiry_timer = 0;
    uint64_t generation = 0;
  };

  void OnSubmit(event::Submit& e);
  void OnCancel(event::Cancel& e);
  void OnRunner(const BackendEvent& e);
  void OnExpired(const event::KeepAliveExpired& e);

  // Starts every queued job that can be placed now; jobs that must wait do not stop the others.
  void Pass();
  std::vector<DeviceView> BuildDevices() const;
  std::vector<RunnerView> Views() const;
  PlacementRequest RequestFor(const JobEntry& job) const;
  void Assign(JobEntry& job, RunnerEntry& runner);
  void SendJob(JobEntry& job, RunnerEntry& runner);
  void StartRunner(const std::string& model, const std::string& device, int64_t weights,
                   int64_t stream, std::optional<int> keep_alive_s, RunnerEntry** out);
  void StopRunner(RunnerEntry& runner, const std::string& why);

  // A run of `job` ended on `runner` (or before one): frees its stream and rearms keep-alive.
  void Release(JobEntry& job);
  void Finish(JobEntry& job, JobState state, std::optional<Error> error);
  // A failed run: retried with backoff when `kind` is transient and retries are left.
  void RunFailed(JobEntry& job, const std::string& kind, const std::string& message);
  void ArmKeepAlive(RunnerEntry& runner);
  void Resample();
  void Prune();

  SchedulerConfig config_;
  Clock& clock_;
  RunnerBackend& backend_;
  gpu::DevicesFn devices_fn_;
  ModelInfoFn models_;
  PostFn post_;

  JobQueue queue_;
  std::unordered_map<std::string, JobEntry> jobs_;
  std::deque<std::string> finished_order_;
  std::map<int64_t, RunnerEntry> runners_;
  int64_t next_runner_id_ = 1;
  std::map<std::string, ModelSpec> model_specs_;  // resolved, with oom raises applied
  std::map<std::pair<std::string, std::string>, MemoryEstimate> measured_;  // (model, device)
  std::vector<gpu::DeviceSample> samples_;
  bool samples_stale_ = true;
  uint64_t events_handled_ = 0;
};

}  // namespace steno::sched
