// Where a job runs: a pure decision over the devices' ledgers and our runners, in the order
//   1. a runner of the model with a free stream            → kUseStream
//   2. one more stream on such a runner, if the stream fits → kAddStream
//   3. a new runner on the best device where weights + one stream fit → kNewRunner
//   4. evicting idle runners makes 3 possible               → kEvict (then a new runner)
//   5. otherwise                                           → kWait
// An explicit device in the request limits every step to that device (no scoring); a model's
// allowed devices (PlacementRequest::allowed_devices) limit every step to those, and a device
// marked `only_if_allowed` (the CPU beside GPUs without --allow-cpu) is used only by models that
// list it. A model's `max_streams` caps its runners' streams in place of the policy's
// max_streams_per_runner. Devices are
// ranked by a score with configurable weights, plus a strong bonus for a device already holding
// the model (a second runner there shares nothing, but keeps a model's work together and its
// footprint measured). Eviction victims are chosen by ChooseVictims alone (placement's step 4 and
// the scheduler's starvation bound both call it): idle runners least recently used first; never a
// busy one, never one loaded less than `min_residency_ms` ago, never one idle for less than
// `min_idle_ms`, never one whose model has jobs waiting (`wanted`: its model would only be loaded
// again).
// Together these are the hysteresis against load/unload ping-pong: a model hands its card to
// another only once its own demand has paused; a model starved by a continuous flood of another's
// work gets its turn through the scheduler's starvation bound (SchedulerConfig::starvation_ms).
// A GPU runner also needs `gpu_overhead_bytes` (its CUDA context) on top of weights and a stream.
// Memory is the hard limit, compute the soft one: every step skips a device already running as
// many jobs as its compute limit allows (ComputeRoom), so such a job waits in the queue, where
// priorities decide who goes next once a job there ends.
// On the CPU, cores take memory's place: a job needs cores no running job uses (cpu_threads), and
// a new stream (a new runner's or one more) a core the ledger can hold (vram_ledger.h); the job
// is then given as many threads as CpuThreadsFor says, so a job alone has every core it may use
// and jobs waiting side by side share them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/job.h"
#include "sched/vram_ledger.h"

namespace steno::sched {

struct ScoreWeights {
  double free_memory = 0.4;   // available / allocatable (CPU: free threads / cores)
  double idle = 0.3;          // 1 − utilization
  double temperature = 0.2;   // headroom below max_temperature_c
  double priority = 0.1;      // × job priority (high 1, normal 0.5, low 0) × idleness: urgent
                              // jobs lean harder towards idle devices
  double holds_model = 10.0;  // bonus: the device already runs this model (dominates the rest)
};

struct PlacementPolicy {
  ScoreWeights weights;
  int max_streams_per_runner = 4;
  int64_t min_residency_ms = 60'000;
  int64_t min_idle_ms = 10'000;
  int max_temperature_c = 90;  // headroom 0 at and above this; unknown temperature counts 0.5
};

struct DeviceView {
  std::string name;  // "cuda:0" or "cpu"
  bool cpu = false;
  VramLedger memory;  // GPUs
  CpuLedger cores;    // the CPU
  // Compute, the soft limit (concurrency_limit.h): jobs holding a stream here now (live sessions
  // not counted), and the most it should run at once (0: no limit). A device at its limit takes
  // no job that needs compute.
  int running = 0;
  int compute_limit = 0;
  int utilization_percent = -1;  // −1: unknown (counts as 50%)
  int temperature_c = -1;        // −1: unknown
  bool only_if_allowed = false;  // only for requests whose allowed_devices name it
};

struct RunnerView {
  int64_t id = 0;
  std::string model;
  std::string device;
  int streams = 0;       // created (or being created)
  int busy_streams = 0;  // running a job
  int64_t weights_bytes = 0;
  int64_t stream_bytes = 0;
  int busy_threads = 0;      // the CPU: threads its running jobs were given, together
  int64_t loaded_ms = 0;     // when it was started
  int64_t last_used_ms = 0;  // when its last job ended (or loaded_ms)
  bool pinned = false;       // kept for good (--preload, keep-alive −1): never a victim
  bool wanted = false;       // never evicted: pinned, or its model has jobs waiting

  bool idle() const { return busy_streams == 0; }
};

struct PlacementRequest {
  std::string model;
  std::string device;  // "" = any; else only this device
  Priority priority = Priority::kNormal;
  int64_t weights_bytes = 0;  // the model's estimate (estimator.h)
  int64_t stream_bytes = 0;
  int cpu_threads = 1;             // the fewest CPU threads a job runs with (CpuThreadsFor)
  int64_t gpu_overhead_bytes = 0;  // per new runner on a GPU (the CUDA context)
  // The model's own settings (ModelSpec): the devices its runners may use (empty: any) and the
  // most streams one of its runners takes (0: the policy's max_streams_per_runner).
  std::vector<std::string> allowed_devices{};
  int max_streams = 0;
  // A job computes; a load without one (Scheduler::Load, --preload) does not, so a device at its
  // compute limit (DeviceView::compute_limit) may still take it; nor does a live session count
  // (it computes at the pace of speech: memory alone admits it).
  bool needs_compute = true;
};

// Whether `request` may use `device` (DeviceView::name): its explicit device, its model's
// allowed devices, and the device's only_if_allowed mark all agree.
bool DeviceAllowed(const PlacementRequest& request, const DeviceView& device);
// Whether `device` may start one more of `request`'s jobs: it needs no compute, or the device runs
// fewer jobs than its compute limit.
bool ComputeRoom(const PlacementRequest& request, const DeviceView& device);

// The threads a job starting on the CPU is given, from the `free` ones (CpuLedger::idle_threads),
// `least` and `most` per job (--min-threads, --threads), and the jobs that could start beside it
// now (`waiting`, itself included): the free threads shared evenly among those that can start (no
// more than the free threads allow `least` each, nor than the device's compute limit leaves room
// for: `room`, < 0 for no limit), at least `least`, at most `most`. A job alone gets `most`: its
// lowest latency. Jobs waiting together each get fewer: on 2 cores, two one-thread whisper.cpp
// streams decode about 15 % more audio per second than one stream of two threads (its
// single-threaded steps and its threads' waits on each other leave cores idle), and a job that
// started cannot take more threads later.
int CpuThreadsFor(int free, int least, int most, int waiting, int room);

enum class PlacementAction { kUseStream, kAddStream, kNewRunner, kEvict, kWait };
const char* PlacementActionName(PlacementAction action);

struct PlacementDecision {
  PlacementAction action = PlacementAction::kWait;
  int64_t runner_id = -1;      // kUseStream, kAddStream
  std::string device;          // kNewRunner, kEvict: where the new runner goes
  std::vector<int64_t> evict;  // kEvict: runners to unload first, in order
  std::string reason;          // kWait: why, for logs and `steno ps`
};

// The device's score for this request (higher is better), holds-model bonus included.
double ScoreDevice(const DeviceView& device, const PlacementRequest& request, bool holds_model,
                   const PlacementPolicy& policy);

PlacementDecision Place(const PlacementRequest& request, const std::vector<DeviceView>& devices,
                        const std::vector<RunnerView>& runners, const PlacementPolicy& policy,
                        int64_t now_ms);

// Which runners may be unloaded to make room.
enum class EvictionScope {
  // Placement (step 4): idle runners only, not wanted, loaded at least min_residency_ms ago and
  // idle at least min_idle_ms. They are stopped at once.
  kIdle,
  // The starvation bound: busy runners too (drained: unloaded once their jobs end) and runners
  // of models with jobs waiting, but never a pinned one, nor one loaded less than
  // min_residency_ms ago.
  kDrain,
};

// Bytes (a GPU: weights + one stream + gpu_overhead_bytes) or threads (the CPU) a new runner of
// `request` needs on `device`.
int64_t NewRunnerBytes(const PlacementRequest& request, const DeviceView& device);

// The one choice of eviction victims: the runners on `device` that `scope` allows, in the order
// idle before busy, fewer busy streams first, least recently used first, lowest id, taken one by
// one until a new runner of `request` fits the device's ledger without them (VramLedger::Fits,
// CpuLedger::Fits). Empty when all of them together do not make room (or none is needed to).
std::vector<int64_t> ChooseVictims(const PlacementRequest& request, const DeviceView& device,
                                   const std::vector<RunnerView>& runners, EvictionScope scope,
                                   const PlacementPolicy& policy, int64_t now_ms);

}  // namespace steno::sched
