// What the scheduler is configured with, what it is fed, and what it publishes.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"
#include "core/result.h"
#include "gpu/device.h"
#include "gpu/gpu_config.h"
#include "sched/estimator.h"
#include "sched/job_queue.h"
#include "sched/placement.h"
#include "sched/runner_backend.h"
#include "sched/vram_ledger.h"

namespace steno::sched {

// A model as the scheduler needs it: the file a runner loads and the memory it will take.
struct ModelSpec {
  std::string path;
  MemoryEstimate estimate;
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
  int threads_per_stream = 1;          // CPU runners
  int64_t sample_interval_ms = 1000;   // device samples (0: only when our runners change)
  size_t finished_jobs_kept = 10'000;  // final jobs kept in snapshots, oldest dropped first
};

// The submitted work: the job (id, model, priority, params) and where its audio is.
struct SubmitRequest {
  Job job;
  std::string audio_path;
};

enum class RunnerState { kLoading, kReady, kStopping };
const char* RunnerStateName(RunnerState state);

struct RunnerInfo {
  RunnerView view;
  RunnerState state = RunnerState::kLoading;
  std::optional<int64_t> expires_at_ms;  // unset: busy, or kept forever
  int keep_alive_s = 0;
  int64_t jobs_done = 0;
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
};

// A copy of the scheduler's state after one event, for readers (`steno ps`, the API).
struct SchedulerSnapshot {
  int64_t now_ms = 0;
  uint64_t events_handled = 0;
  std::vector<RunnerInfo> runners;
  std::vector<JobInfo> jobs;  // live jobs and the most recent final ones
  std::vector<DeviceLedger> devices;
  size_t queued = 0;

  const JobInfo* FindJob(const std::string& id) const;
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
};
struct Preload {
  std::string model;
};
}  // namespace event

using Event = std::variant<event::Submit, event::Cancel, event::Runner, event::KeepAliveExpired,
                           event::RetryDue, event::DeviceSampleReady, event::Preload>;

}  // namespace steno::sched
