// The scheduler's state machine: jobs, runners, timers and ledgers, changed only by Handle().
// Not thread-safe by design: exactly one thread (the Scheduler's worker) calls it. Timers it arms
// on the clock post events back through `post`; they never touch the state themselves.
//
// Files: scheduler_state.cc (events, job outcomes, retries), scheduler_pass.cc (admission: the
// pass over the queue, starvation, executing evictions), scheduler_runners.cc (runner lifecycle,
// load/unload, ledgers, snapshots), scheduler_recycle.cc (replacing runners the recycle policy
// names), scheduler_models.cc (per-model settings: devices, keep-alive; charging what runners
// are measured to hold).
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sched/clock.h"
#include "sched/keep_alive.h"
#include "sched/scheduler_types.h"

namespace steno::sched {

class SchedulerState {
 public:
  using PostFn = std::function<void(Event)>;
  SchedulerState(SchedulerConfig config, Clock& clock, RunnerBackend& backend, ModelInfoFn models,
                 PostFn post, SchedulerHooks hooks = {});

  void Handle(Event event);
  // Stops every runner (shutdown).
  void StopAll();
  SchedulerSnapshot Snapshot() const;
  // Every job changed since the last call, once each: its info, or nullptr for a job dropped
  // (finished_jobs_kept). The cost is the number of changes, not of jobs.
  void TakeJobChanges(const std::function<void(const std::string& id, const JobInfo* info)>& fn);
  // True once after our runners changed (started, ready, streams, exited): the devices should be
  // sampled again. The state never samples them itself (no driver call on the worker thread);
  // the samples come back as event::DeviceSampleReady.
  bool TakeSampleRequest();

 private:
  struct JobEntry {
    JobInfo info;
    BlobRef input;
    bool cancel_requested = false;
    int64_t enqueued_ms = 0;   // on the scheduler's clock: its place in the queue, kept on retry
    int64_t last_runner = -1;  // the runner of its current or last run
    std::string last_device;
    bool ran = false;  // its current attempt reached a runner (reported with its final state)
    int64_t computing_since_ms = -1;   // sent to its runner (the device's limiter counts it)
    int threads = 0;                   // on the CPU: the threads it was given (CpuThreadsFor)
    Clock::TimerId timeout_timer = 0;  // the backstop while processing
    // A live session (its params carry `live`, core/live_items.h): it holds its stream for as
    // long as its client keeps it, decoding in real time. It has no timeout, and neither the
    // device's limiter nor the mean job duration (queue hints) learns from it.
    bool live() const { return info.job.params.live.has_value(); }
  };
  struct RunnerEntry {
    RunnerInfo info;
    KeepAlive keep_alive{0};
    std::string device_name;           // the device's model name (footprints are keyed by it)
    std::vector<std::string> waiting;  // assigned while loading: sent once ready
    std::set<std::string> sent;        // sent to the runner, no outcome yet
    int live_streams = 0;              // of its busy streams, those held by live sessions
    Clock::TimerId expiry_timer = 0;
    uint64_t generation = 0;
    // Draining: no new jobs; stopped with `drain_reason` once its jobs end.
    bool draining = false;
    std::string drain_reason;
    std::string stop_reason;  // why Stop was asked ("" until then)
    int64_t stop_ms = 0;
    bool load_failed = false;
    // Recycling: the device's first reading of its processes once ready (−1: none yet), and
    // what it was charged at that reading.
    int64_t first_reading = -1;
    int64_t charged_at_first_reading = 0;
    // The stream its kind measured at ready, as reported (−1: none), for FootprintUpdate.
    int64_t reported_stream = -1;
  };

  void OnSubmit(event::Submit& e);
  void OnCancel(event::Cancel& e);
  void OnFeed(const event::Feed& e);
  void OnRunner(const BackendEvent& e);
  void OnReady(RunnerEntry& runner, const BackendEvent& e);
  void OnExpired(const event::KeepAliveExpired& e);
  void OnLoad(event::Load& e);
  void OnUnload(event::Unload& e);
  void OnReconfigure(const SchedulerConfig& config);
  void OnRedeclare(const std::vector<std::string>& models);
  void OnTimeout(const event::JobTimeout& e);

  // scheduler_models.cc. The model's spec, resolved through `models_` once and kept; the error is
  // the resolver's.
  Result<const ModelSpec*> SpecOf(const std::string& model);
  // Whether work of `model` (resolved) asking for `device` ("" or "auto": any) can ever be
  // placed by its allowed devices: kBadInput "device_not_allowed", kUnavailable
  // "no_allowed_device" (none of them is in use here).
  Status CheckDevices(const std::string& model, const std::string& device) const;
  // Whether the CPU is a device here: allow_cpu, no GPU, or a model that lists it.
  bool CpuInUse() const;
  // The keep-alive of a runner of `model` whose work asks for none.
  int KeepAliveOf(const std::string& model) const;
  // After a sample: each ready runner whose processes the device lists as holding more than it
  // is charged is charged that reading from now on (its ledger entry and the model's
  // remembered footprint on that kind of device raised, reported through on_footprint).
  void ChargeMeasured();
  // What a device could hold at most for us and other tenants (total − reserve), and whether
  // its ledger charges more than that.
  bool Oversubscribed(const DeviceView& device) const;

  // Scheduler::Placeable.
  std::vector<std::string> PlaceableModels(const std::vector<std::string>& models);
  // Starts every queued job that can be placed now; jobs that must wait do not stop the others.
  void Pass();
  // Pending loads (Load after an eviction) first: those still waiting for memory stay; one that
  // no longer fits, or whose runner could not start, is dropped with a warning.
  void TryPendingLoads(std::set<std::string>& evicting);
  // Where a load (OnLoad, a pending one) stands after one placement attempt.
  struct LoadOutcome {
    enum Kind { kDone, kWaiting, kNoRoom, kStartFailed } kind;
    std::string message;  // kNoRoom, kStartFailed: why
  };
  LoadOutcome PlaceLoad(const LoadRequest& load, std::set<std::string>& evicting);
  // A job of a model without a runner waited past starvation_ms: drain runners in its way.
  void CheckStarvation(std::set<std::string>& evicting);
  // Executes an eviction (victims from ChooseVictims): each victim is drained with reason
  // "evicted" (stopped now when idle, else once its jobs end), logged once with `model` and
  // `why`; the device joins `evicting` when a victim stopped now. Does nothing, returning false,
  // when the device is already evicting or there are no victims.
  bool Evict(const std::string& device, const std::vector<int64_t>& victims,
             const std::string& model, const std::string& why, std::set<std::string>& evicting);
  std::vector<DeviceView> BuildDevices() const;
  std::vector<RunnerView> Views() const;  // runners that may take jobs (not stopping/draining)
  PlacementRequest RequestFor(const std::string& model, const std::string& device,
                              Priority priority) const;
  PlacementRequest RequestFor(const JobEntry& job) const;
  MemoryEstimate EstimateOn(const std::string& model, const std::string& device) const;
  std::string DeviceNameOf(const std::string& device) const;  // "cuda:0" → its model name
  void Assign(JobEntry& job, RunnerEntry& runner);
  // The threads a job placed on the CPU by `req` is given there (placement.h, CpuThreadsFor),
  // while it is still queued.
  int CpuThreadsOn(const PlacementRequest& req, const std::vector<DeviceView>& devices) const;
  void SendJob(JobEntry& job, RunnerEntry& runner);
  // `weights` and `stream` are the model's own; a GPU runner is charged cuda_context_bytes more.
  // The backend's refusal is logged and returned.
  Result<RunnerEntry*> StartRunner(const std::string& model, const std::string& device,
                                   int64_t weights, int64_t stream,
                                   std::optional<int> keep_alive_s);
  void StopRunner(RunnerEntry& runner, const std::string& why);
  void Drain(RunnerEntry& runner, const std::string& why);
  // Replaces `runner` when the recycle policy says so (scheduler_recycle.cc).
  void MaybeRecycle(RunnerEntry& runner);
  // After a sample: each ready runner's reading of its processes, against its size at ready.
  void CheckGrowth();
  // What the latest samples list for the runner's processes on its device (−1: not listed).
  int64_t ReadingOf(const RunnerEntry& runner) const;

  // A run of `job` ended on `runner` (or before one): frees its stream and rearms keep-alive.
  // `audio_s`: the audio it decoded, for its device's limiter (0: none or unknown).
  void Release(JobEntry& job, double audio_s = 0);
  // The compute limiter of a device (created on first use), its settings, and what it shows.
  // On the CPU a learned limit starts at the streams the cores allow (cpu_cores / threads per
  // stream); on a GPU at ConcurrencyConfig::initial_limit.
  ConcurrencyConfig ConcurrencyFor(const std::string& device) const;
  ConcurrencyLimiter& LimiterOn(const std::string& device);
  ConcurrencyView ComputeOn(const std::string& device, int running) const;
  void Finish(JobEntry& job, JobState state, std::optional<Error> error);
  // A failed run: retried with backoff when `kind` is transient and retries are left.
  void RunFailed(JobEntry& job, RunnerErrorKind kind, const std::string& message);
  // Moves a job to `state`, keeping the running counts, and reports it (kState).
  void SetState(JobEntry& job, JobState state);
  void Report(const JobEntry& job, JobUpdate::Kind kind, int percent = 0,
              const nlohmann::json* payload = nullptr);
  void ReportRunner(const RunnerEntry& runner, RunnerUpdate::Kind kind, int64_t duration_ms,
                    const std::string& reason);
  void ArmKeepAlive(RunnerEntry& runner);
  void Prune();

  SchedulerConfig config_;
  Clock& clock_;
  RunnerBackend& backend_;
  ModelInfoFn models_;
  PostFn post_;
  SchedulerHooks hooks_;

  JobQueue queue_;
  std::unordered_map<std::string, JobEntry> jobs_;
  std::unordered_set<std::string> changed_;  // jobs changed since TakeJobChanges
  std::deque<std::string> finished_order_;
  RunningCounts running_;  // loading + processing, kept by SetState
  std::map<int64_t, RunnerEntry> runners_;
  int64_t next_runner_id_ = 1;
  std::vector<LoadRequest> pending_loads_;        // waiting for an eviction to free memory
  std::map<std::string, ModelSpec> model_specs_;  // resolved, with oom raises applied
  // (model, device name) → measured, with oom raises applied.
  std::map<std::pair<std::string, std::string>, MemoryEstimate> measured_;
  // Per model: the product of the out-of-memory raises its runs earned (absent: none), applied to
  // each new measurement so a later load cannot lower the stream figure again.
  std::map<std::string, double> oom_factor_;
  // (model, device name) → the weights figure its runners' processes were measured to need
  // while loaded (ChargeMeasured): a floor for later measurements at ready, like oom_factor_.
  std::map<std::pair<std::string, std::string>, int64_t> grown_weights_;
  bool cpu_wanted_ = false;  // a model resolved here listed "cpu" among its allowed devices
  std::vector<gpu::DeviceSample> samples_;
  std::map<std::string, ConcurrencyLimiter> limiters_;  // device name → its compute limit
  // Per sample: what our runners were charged on its device when it was taken. Where the device
  // cannot attribute memory to processes, external = used − ours must use the charges of that
  // moment, not later ones (a runner started since is in our charges but not in `used` yet).
  std::vector<int64_t> sample_charged_;
  // `charged`: device name → bytes charged when the samples were taken (unset: as now).
  void SetSamples(std::vector<gpu::DeviceSample> samples,
                  const std::optional<std::map<std::string, int64_t>>& charged);
  int64_t ChargedOn(const std::string& device) const;
  bool samples_stale_ = false;  // our runners changed since the last sample was asked for
  bool admitting_ = true;
  uint64_t events_handled_ = 0;
  Clock::TimerId starvation_timer_ = 0;
  int64_t starvation_timer_at_ = 0;
};

}  // namespace steno::sched
