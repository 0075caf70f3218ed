// What the scheduler is configured with, what it is fed, and what it publishes.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"
#include "core/result.h"
#include "gpu/device.h"
#include "gpu/gpu_config.h"
#include "runner/recycle_policy.h"
#include "sched/calibration.h"
#include "sched/concurrency_limit.h"
#include "sched/estimator.h"
#include "sched/job_queue.h"
#include "sched/placement.h"
#include "sched/runner_backend.h"
#include "sched/vram_ledger.h"

namespace steno::sched {

// A model as the scheduler needs it: the runner kind that serves it, the file a runner of that
// kind loads ("" for kinds that need none) and the memory it will take before it is measured.
struct ModelSpec {
  std::string path;
  MemoryEstimate estimate;  // from the file (at the beam size jobs decode with), or declared
  std::string kind;  // models::ModelEntry::kind ("whisper", ...): passed on to RunnerStartSpec
  RunnerLoadOptions load{};  // how its runners load it: passed on to RunnerStartSpec and RunnerInfo
  // Added to a runner's measured stream before it is planned with or charged: for whisper.cpp,
  // BeamExtraStreamBytes at that beam size (its warm-up measures a greedy state; estimator.h).
  int64_t measured_stream_extra_bytes = 0;
  // Per-model settings a catalog entry may declare (a managed model server's [[models]] table):
  // - allowed_devices: its runners run only there (placement.h); a job naming another device
  //   fails at once (kBadInput "device_not_allowed"), and so does one when none of them is in
  //   use here (kUnavailable "no_allowed_device"). "cpu" here makes the CPU a device for this
  //   model even without allow_cpu.
  // - max_streams: the most streams one of its runners has, in place of
  //   PlacementPolicy::max_streams_per_runner (the memory may allow more).
  // - keep_alive_s: its runners' keep-alive when the job (or load) asks for none, in place of
  //   SchedulerConfig::default_keep_alive_s.
  // - recycle_on_growth: false when growing is how the model works (a managed server that loads
  //   lazily or forks workers): its growth is charged (the measured peak), never a reason to
  //   replace the runner (RecyclePolicy::max_growth_ratio).
  std::vector<std::string> allowed_devices{};  // "cpu", "cuda:N"; empty: any device
  int max_streams = 0;                         // requests a runner takes at once; 0: memory decides
  std::optional<int> keep_alive_s{};           // unset: the job's or the server's default
  bool recycle_on_growth = true;
};
// The loader seam (Ollama's loadFn): resolves a model name. An error fails the job (bad input).
using ModelInfoFn = std::function<Result<ModelSpec>(const std::string& model)>;

struct SchedulerConfig {
  QueueConfig queue;
  PlacementPolicy placement;
  gpu::ReserveConfig reserve;
  double safety_factor = gpu::kDefaultSafetyFactor;
  int default_keep_alive_s = 600;
  int default_timeout_s = 3600;
  int max_retries = 3;                 // runs after the first, for transient failures only
  int64_t retry_base_ms = 1000;        // backoff before retry n: base × 2^(n−1)
  double oom_raise = 1.5;              // an `oom` multiplies the model's stream estimate by this
  bool allow_cpu = false;              // the CPU is a device even when GPUs exist
  int cpu_cores = 0;                   // given to steno (0: hardware concurrency)
  int max_threads_per_job = 1;         // the most threads one CPU job uses (CpuThreadsFor)
  int min_threads_per_job = 1;         // the fewest (up to max_threads_per_job and the cores)
  int64_t sample_interval_ms = 1000;   // device samples (0: only when our runners change)
  size_t finished_jobs_kept = 10'000;  // final jobs kept for FindJob/Jobs, oldest dropped first
  // (model, device name) → measured footprint, e.g. loaded from the store. The device name is the
  // sample's model name ("NVIDIA H100 80GB HBM3"; "cpu" for the CPU), not "cuda:0": one
  // measurement serves every card of that kind. Runners' new measurements are reported through
  // SchedulerHooks::on_footprint.
  std::map<std::pair<std::string, std::string>, MemoryEstimate> known_footprints;
  // The CUDA context every GPU runner holds beside its weights and streams (calibration.h says
  // what it is and how it is measured). Charged once per GPU runner, on top of its weights; 0 on
  // the CPU.
  int64_t cuda_context_bytes = calibration::kCudaContextBytes;
  // Anti-thrash. A job of a model with no runner that has waited this long (while other models'
  // work keeps every card busy) makes the scheduler drain a runner of another model on a device
  // where it would fit: no new jobs go to that runner, and once idle it is unloaded. 0: off.
  int64_t starvation_ms = 60'000;
  // (Hysteresis against load/unload ping-pong is placement's: PlacementPolicy::min_residency_ms,
  // min_idle_ms, and runners wanted by queued jobs are not evicted.)
  // The scheduler's backstop for a job's timeout (the runner enforces it first, through its
  // abort hook): a job still without an outcome this long after its timeout is failed with kind
  // "timeout" and its runner killed.
  int64_t timeout_grace_ms = 30'000;
  // Compute, the soft limit beside memory's hard one: how many jobs each device runs at once
  // (concurrency_limit.h). kOff (the default here; `steno serve`'s --max-concurrency-per-device
  // 0): memory alone decides. kFixed: at most `fixed` jobs per device. kAuto (`steno serve`'s
  // default): a limit per device learned from the audio seconds per second it delivers. A
  // job that fits in memory but finds its device at the limit waits in the queue. On the CPU the
  // cores (CpuLedger) stay the hard bound and the limit applies on top of them: the fewer of the
  // two wins (a learned one starts at the cores' bound and never goes above it).
  ConcurrencyConfig concurrency;
  // When a runner is replaced by a fresh one (after max_jobs jobs, or when the device's reading
  // of its process grew past max_growth_ratio × its size at ready; the latter only where the
  // device lists processes). The replacement starts where it fits beside the old runner; the
  // old one takes no new jobs and is unloaded (reason "recycled") once its jobs end.
  runner::RecyclePolicy recycle;
};

// The submitted work: the job (id, model, priority, params) and its input. An input without a
// name is shown by the job's params.filename.
struct SubmitRequest {
  Job job;
  BlobRef input;
};

enum class RunnerState { kLoading, kReady, kStopping };
const char* RunnerStateName(RunnerState state);

struct RunnerInfo {
  RunnerView view;
  std::string kind;          // its model's runner kind ("whisper", "server", ...)
  RunnerLoadOptions load{};  // how it loaded its model (ModelSpec::load)
  RunnerState state = RunnerState::kLoading;
  std::optional<int64_t> expires_at_ms;  // unset: busy, or kept forever
  int keep_alive_s = 0;
  int64_t jobs_done = 0;
  std::vector<int> pids;  // once ready: the processes its kind says hold its memory
  bool draining = false;  // no new jobs; unloaded once its jobs end (Unload, starvation)
  // What the device listed for its processes at the latest sample (−1: not listed), and how
  // much its charge (view.weights_bytes) was raised because they held more than it was charged
  // (0: never). A raise is never taken back while it is loaded.
  int64_t measured_bytes = -1;
  int64_t grown_bytes = 0;
};

struct JobInfo {
  Job job;
  int64_t runner_id = -1;  // while loading or processing
  nlohmann::json result;   // once completed
  int progress_percent = 0;
};

struct DeviceLedger {
  std::string name;
  bool cpu = false;
  VramLedger memory;
  CpuLedger cores;
  ConcurrencyView compute;  // the compute limit, the jobs running and what they deliver
};

// A copy of the scheduler's runners and devices after one event, for readers (`steno ps`, the
// API). Jobs are not in it (thousands of them): Scheduler::FindJob / Jobs serve those.
struct SchedulerSnapshot {
  int64_t now_ms = 0;
  uint64_t events_handled = 0;
  std::vector<RunnerInfo> runners;
  std::vector<DeviceLedger> devices;
  std::array<size_t, 3> queued_by_priority{};  // index: static_cast<int>(Priority)
  size_t queued = 0;
  size_t running = 0;  // loading + processing
  bool admitting = true;
};

// One change to a job, reported on the worker thread right after it happened, in order.
// kState is reported for: pending→loading (assigned to a runner), loading→processing (sent to a
// ready runner), →completed, →failed, →cancelled, and →pending again on a retry (attempt already
// increased, not_before_ms set, job.error = why the run was lost). Not for the initial Submit.
struct JobUpdate {
  enum class Kind { kState, kProgress, kSegment };
  Kind kind = Kind::kState;
  Job job;                 // the job as it is now (state, attempt, error, not_before_ms, times)
  int64_t runner_id = -1;  // while loading/processing; on →completed/failed/cancelled after a
                           // run, the runner it ran on
  std::string device;      // the runner's device ("cpu", "cuda:0") where runner_id is set
  int percent = 0;         // kProgress
  nlohmann::json payload;  // kSegment: the segment; kState to completed: the runner's result
};

// A runner measured a model on a kind of device (store it; give it back as known_footprints):
// at ready, and again whenever its processes were sampled holding more than it was charged (the
// weights figure raised by the difference).
struct FootprintUpdate {
  std::string model;
  std::string device_name;  // the device's model name from its sample (e.g. "NVIDIA H100 80GB
                            // HBM3"), "cpu" for the CPU
  int64_t weights_bytes = 0;
  int64_t stream_bytes = 0;
};

struct RunnerUpdate {
  enum class Kind { kLoaded, kUnloaded };
  Kind kind = Kind::kLoaded;
  int64_t runner_id = 0;
  std::string model, device;
  int64_t bytes = 0;        // weights + streams × stream bytes as the ledger holds it
  int64_t duration_ms = 0;  // kLoaded: Start→ready; kUnloaded: Stop→exited (0: not asked to
                            // stop, or "shutdown", whose exits are not awaited)
  std::string reason;       // kUnloaded: "keep-alive expired", "unload requested", "evicted" (for
                            // another model, starvation drains included), "recycled" (replaced
                            // by a fresh runner), "redeclared" (its model's declaration
                            // changed or was removed: Scheduler::Redeclare), "shutdown", "timeout"
                            // (killed by the backstop), "crash", "load failed"
  bool crashed = false;     // kUnloaded: it exited without being asked to (reason "crash")
};

// Each may be empty; called on the worker thread; must not block or call back into the
// Scheduler synchronously (Submit, Load, ...). FindJob/Jobs/Snapshot called from a hook see the
// state before the event being handled.
struct SchedulerHooks {
  std::function<void(const JobUpdate&)> on_job;
  std::function<void(const FootprintUpdate&)> on_footprint;
  std::function<void(const RunnerUpdate&)> on_runner;
};

// Load a model without a job (the API's load, --preload).
struct LoadRequest {
  std::string model;
  std::string device;               // "" = best device
  std::optional<int> keep_alive_s;  // unset: default; -1 forever (pinned like --preload)
};

// The events the scheduler thread consumes.
namespace event {
struct Submit {
  SubmitRequest request;
  std::function<void(Status)> reply;
};
struct Cancel {
  std::string job_id;
  std::function<void(Status)> reply;
};
struct Feed {  // more input for a running job (Scheduler::Feed)
  std::string job_id;
  nlohmann::json input;
};
struct Runner {
  BackendEvent event;
};
struct KeepAliveExpired {
  int64_t runner_id;
  uint64_t generation;  // stale timers (the runner got work since) are ignored
};
struct RetryDue {};  // a backoff ended: run a pass
struct DeviceSampleReady {
  Result<std::vector<gpu::DeviceSample>> samples;
  // Device name → what our runners were charged there when the samples were taken (the
  // sampler reads it from the snapshot of that moment); unset: what they are charged now.
  std::optional<std::map<std::string, int64_t>> charged;
};
struct Load {
  LoadRequest request;
  std::function<void(Status)> reply;  // may be empty (--preload does not wait)
};
struct Unload {
  std::string model;
  std::function<void(Status)> reply;
};
struct StopAdmitting {
  std::function<void()> done;
};
struct Reconfigure {
  SchedulerConfig config;
  std::function<void()> done;
};
struct Redeclare {  // these models' declarations changed (Scheduler::Redeclare)
  std::vector<std::string> models;
  std::function<void()> done;
};
struct JobTimeout {  // a job's timeout + grace passed: fail it unless it ended or ran again
  std::string job_id;
  int64_t runner_id;
  int attempt;
};
struct StarvationCheck {};  // a waiting job may have passed starvation_ms: run a pass
struct Placeable {          // which of `models` a job could start on now (Scheduler::Placeable)
  std::vector<std::string> models;
  std::function<void(std::vector<std::string>)> reply;
};
}  // namespace event

using Event =
    std::variant<event::Submit, event::Cancel, event::Feed, event::Runner, event::KeepAliveExpired,
                 event::RetryDue, event::DeviceSampleReady, event::Load, event::Unload,
                 event::StopAdmitting, event::Reconfigure, event::Redeclare, event::JobTimeout,
                 event::StarvationCheck, event::Placeable>;

}  // namespace steno::sched
