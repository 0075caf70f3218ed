// The scheduler: one worker thread owns every job, runner, timer and ledger, and is fed by an
// event queue (jobs submitted and cancelled, runner events, timers, device samples). Nothing else
// touches that state: callers post events and read published snapshots.
//
// Seams (Ollama's getGpuFn / loadFn / newServerFn): the clock (RealClock or a VirtualClock that
// simulations advance), the devices (gpu::DevicesFn), the model resolver (ModelInfoFn) and the
// runner factory (RunnerBackend, runner_backend.h: every runner kind through the dispatcher,
// or the simulations' backend in tests).
//
// Policies are the pure functions in this directory: placement.h (where a job runs, eviction,
// hysteresis), keep_alive.h (when an idle runner unloads, with an exact timer), job_queue.h
// (order, aging, limits, the groups a pass walks), vram_ledger.h (what fits), and one stateful
// policy, concurrency_limit.h (how many jobs a device computes at once, learned from what it
// delivers: fed each job's start and end on the scheduler's clock by the worker thread). A pass
// tries the best job of each group (same model and requested device) and skips a group whose best
// job cannot be placed, so a job waiting for memory never blocks a job whose model is loaded, and a
// pass costs O(groups), not O(queued jobs).
//
// Anti-thrash: eviction spares runners that are young (min_residency_ms), recently used
// (min_idle_ms) or wanted by queued jobs; a job whose model has no runner and that waited
// starvation_ms drains a runner of another model to get its turn (scheduler_pass.cc).
// Failures: transient kinds (`oom`, with a raised estimate; runner `crash`) are retried with
// exponential backoff up to max_retries; `bad_input` and `timeout` fail at once. A job's timeout
// goes to its runner (abort hook); timeout + timeout_grace_ms later the scheduler fails the job
// itself and kills the runner. Cancel works in every state. Memory: estimates until a runner
// measures the model (then remembered per device model name, reported through on_footprint),
// plus cuda_context_bytes for each GPU runner. While loaded, each sample that lists a runner's
// processes (RunnerInfo::pids, updated by kProcesses) credits it their memory; one holding more
// than it is charged is charged that peak from then on (never less), later work is planned
// against it, and the model's remembered footprint is raised with it.
// Per model (ModelSpec): allowed devices, a cap on a runner's streams, a default keep-alive.
//
// Devices: the constructor samples them once, on the constructing thread, so the first snapshot
// already has every device's ledger and a server that starts answering after constructing it
// never shows a machine without its GPUs. From then on a sampler thread owns every driver call:
// it samples every sample_interval_ms and after each event that changed our runners (a request
// is only a signal to it), and posts each sample as an event. The worker thread never calls the
// driver, and no lock that posting takes is held across a driver call, so a slow or hung driver
// delays samples, never events, snapshots or callers. The sampler takes a sample while the
// worker is between events and sends with it what our runners were charged at that moment
// (retrying a few times when an event ran meanwhile), so the ledger's `used − ours` matches.
//
// Readers: Snapshot() (runners, ledgers, counts) is replaced after every event.
// FindJob/Jobs read a job map the worker updates after every event with only the jobs that event
// changed, so an event costs the same with 10 or 10,000 jobs queued. Hooks (SchedulerHooks)
// report every job, runner and footprint change as it happens, on the worker thread, for the
// store and streams.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "sched/clock.h"
#include "sched/runner_backend.h"
#include "sched/scheduler_types.h"

namespace steno::sched {

class SchedulerState;

class Scheduler {
 public:
  // `clock` and `backend` must outlive the scheduler. The backend's events go to Sink().
  Scheduler(SchedulerConfig config, Clock& clock, RunnerBackend& backend, gpu::DevicesFn devices,
            ModelInfoFn models, SchedulerHooks hooks = {});
  // Stops every runner (their exits are not awaited) and joins the worker.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Where a backend delivers runner events: posts them to the queue. Safe from any thread.
  BackendSink Sink();

  // Queues a job (state pending). Errors: kBadInput "duplicate_job"; the model resolver's error;
  // kBadInput "device_not_allowed" (a device its model does not allow) and kUnavailable
  // "no_allowed_device" (none of its model's devices is in use); kUnavailable "queue_full" (with
  // Error::retry_after_s); kUnavailable "shutting_down" after StopAdmitting. Blocks until the
  // worker has decided; never call it from the worker (a backend or clock callback, a hook).
  Status Submit(SubmitRequest request);
  // Cancels a job in any state: pending and loading ones end `cancelled` at once; a processing
  // one when its runner confirms. kNotFound "job_not_found", kBadInput "job_final".
  Status Cancel(const std::string& job_id);
  // Hands `input` (a live session's audio or control, core/live_items.h) to the runner running
  // the job, in the order of the calls. Does not wait: input for a job that is not processing on
  // a runner (still queued or loading, or ended) is dropped, and so is input its runner's kind
  // refuses (RunnerBackend::Feed), each with a log line. A caller feeds a job only after its
  // JobUpdate to processing (SchedulerHooks::on_job) and until its end. Safe from any thread.
  void Feed(const std::string& job_id, nlohmann::json input);
  // Loads a model where it fits, kept loaded for good (--preload). Does not wait; a model that
  // does not fit is logged and skipped.
  void Preload(const std::string& model);
  // Loads a model without a job. A model already loaded (on that device, if one is named) only
  // has its keep-alive renewed. The runner, idle until jobs come, then follows keep-alive: its
  // keep_alive_s (unset: the default; −1: pinned for good like --preload). Idle runners of other
  // models are evicted (LRU, minimum residency respected) when that makes room; the load then
  // starts once their memory is released. Blocks like Submit. Errors: the resolver's for an
  // unknown model; Submit's two device errors; kBadInput "bad_device" for a device not in use;
  // kUnavailable "no_room" when it does not fit even after evicting idle runners; kUnavailable
  // "shutting_down".
  Status Load(const LoadRequest& request);
  // Unloads every runner of `model`: idle ones now, busy ones as soon as their jobs end (no new
  // jobs go to them; queued jobs of the model may load a fresh runner later). Pinned runners too.
  // kNotFound "not_loaded" if none. Their RunnerUpdate kUnloaded says "unload requested".
  Status Unload(const std::string& model);
  // From now on Submit and Load fail with kUnavailable "shutting_down" and snapshots say
  // admitting = false; queued and running jobs go on. Returns once the worker has applied it.
  void StopAdmitting();
  // Replaces the settings a config reload (SIGHUP) may change: queue limits (length, running
  // jobs; not the aging step, which queued jobs were keyed with), placement weights and
  // residency, reserves and safety factor, default keep-alive and timeout, retries, starvation
  // bound, the compute limit (a changed one starts learning again). Runners keep the keep-alive
  // they were given; everything else applies from the next decision on. Other fields of
  // `config` are ignored. Returns once the worker has applied it.
  void Reconfigure(const SchedulerConfig& config);
  // The declarations of `models` changed (a config reload added, changed or removed them): each
  // is resolved again, and the figures measured for the old declaration are forgotten. Runners
  // of them take no new work and stop once their jobs end (idle ones at once; RunnerUpdate
  // reason "redeclared"), so the next work starts what is declared now; their pending loads are
  // dropped. A model that no longer resolves (removed) is unknown from now on: its queued jobs
  // fail with kNotFound "model_removed"; jobs already on a runner finish. Returns once applied.
  void Redeclare(const std::vector<std::string>& models);

  // Of `models`, those a job (any device, normal priority) could start on right now: a runner of
  // the model with a free stream, or room for a stream or a new runner (evicting idle runners if
  // that is what placement would do), within the running-job limits. Empty while any job is
  // queued here (a node with work it cannot place yet takes no more) and after StopAdmitting.
  // A shared store's claim loop asks this before claiming a job (a node never hoards). Blocks
  // like Submit; a model the resolver does not know is left out.
  std::vector<std::string> Placeable(const std::vector<std::string>& models);

  // Runners, devices and counts as of the last handled event.
  SchedulerSnapshot Snapshot() const;
  // One job (live, or final and among the most recent finished_jobs_kept), as of the last event.
  std::optional<JobInfo> FindJob(const std::string& id) const;
  // Every job FindJob would find, oldest first (by created_ms, then id).
  std::vector<JobInfo> Jobs() const;

  // Blocks until the queue is empty, the worker is between events and no sample is asked for or
  // being taken: with a VirtualClock, the point at which the next timer may fire
  // deterministically.
  void WaitIdle();

  void Post(Event event);

 private:
  void Loop();
  void ArmSampling();
  void RequestSample();  // wakes the sampler; never waits for the driver
  void SampleLoop();

  SchedulerConfig config_;
  Clock& clock_;
  gpu::DevicesFn devices_;
  std::unique_ptr<SchedulerState> state_;

  std::mutex mu_;
  std::condition_variable cv_;          // an event arrived, or stop
  std::condition_variable idle_cv_;     // the worker finished an event, or a sample was posted
  std::condition_variable sampler_cv_;  // a sample was asked for, or stop
  std::deque<Event> events_;
  bool busy_ = false;
  bool stop_ = false;
  uint64_t events_started_ = 0;
  bool sample_requested_ = false;  // the sampler owes a sample
  bool sampling_ = false;          // the sampler is taking one (outside mu_)

  mutable std::mutex snapshot_mu_;
  SchedulerSnapshot snapshot_;
  mutable std::mutex jobs_mu_;
  std::unordered_map<std::string, JobInfo> jobs_;  // published: updated with each event's changes
  void PublishJobs();

  // Timers and backends may call back after the scheduler is gone: they go through this.
  struct Alive {
    std::mutex mu;
    Scheduler* self = nullptr;
  };
  std::shared_ptr<Alive> alive_ = std::make_shared<Alive>();
  std::function<void(Event)> GuardedPost();

  std::thread worker_;   // these two last: they start once everything above exists
  std::thread sampler_;  // only with devices
};

// Simulation driver for a VirtualClock: fires every timer due up to `until_ms` in order, letting
// the scheduler settle after each, then moves time to `until_ms`.
void AdvanceTo(Scheduler& scheduler, VirtualClock& clock, int64_t until_ms);

}  // namespace steno::sched
