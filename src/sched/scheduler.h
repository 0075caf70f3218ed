// The scheduler: one worker thread owns every job, runner, timer and ledger, and is fed by an
// event queue (jobs submitted and cancelled, runner events, timers, device samples). Nothing else
// touches that state: callers post events and read published snapshots.
//
// Seams (Ollama's getGpuFn / loadFn / newServerFn): the clock (RealClock or a VirtualClock that
// simulations advance), the devices (gpu::DevicesFn), the model resolver (ModelInfoFn) and the
// runner factory (RunnerBackend: real processes or simulated ones).
//
// Policies are the pure functions in this directory: placement.h (where a job runs, eviction),
// keep_alive.h (when an idle runner unloads, with an exact timer), job_queue.h (order, aging,
// limits), vram_ledger.h (what fits). A job waiting for memory never blocks a job whose model is
// loaded: every pass tries every candidate. Transient failures (`oom`, with a raised estimate;
// runner `crash`) are retried with exponential backoff up to max_retries; `bad_input` and
// `timeout` fail at once. Cancel works in every state.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sched/clock.h"
#include "sched/runner_backend.h"
#include "sched/scheduler_types.h"

namespace steno::sched {

class SchedulerState;

class Scheduler {
 public:
  // `clock` and `backend` must outlive the scheduler. The backend's events go to Sink().
  Scheduler(SchedulerConfig config, Clock& clock, RunnerBackend& backend, gpu::DevicesFn devices,
            ModelInfoFn models);
  // Stops every runner (their exits are not awaited) and joins the worker.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Where a backend delivers runner events: posts them to the queue. Safe from any thread.
  BackendSink Sink();

  // Queues a job (state pending). Errors: kBadInput "duplicate_job"; the model resolver's error;
  // kUnavailable "queue_full" (the message carries the retry-after hint). Blocks until the worker
  // has decided; never call it from the worker (a backend or clock callback).
  Status Submit(SubmitRequest request);
  // Cancels a job in any state: pending and loading ones end `cancelled` at once; a processing
  // one when its runner confirms. kNotFound "job_not_found", kBadInput "job_final".
  Status Cancel(const std::string& job_id);
  // Loads a model where it fits, kept loaded for good (--preload).
  void Preload(const std::string& model);

  // The state as of the last handled event.
  SchedulerSnapshot Snapshot() const;

  // Blocks until the queue is empty and the worker is between events: with a VirtualClock, the
  // point at which the next timer may fire deterministically.
  void WaitIdle();

  void Post(Event event);

 private:
  void Loop();
  void ArmSampling();

  SchedulerConfig config_;
  Clock& clock_;
  gpu::DevicesFn devices_;
  std::unique_ptr<SchedulerState> state_;

  std::mutex mu_;
  std::condition_variable cv_;       // an event arrived, or stop
  std::condition_variable idle_cv_;  // the worker went idle
  std::deque<Event> events_;
  bool busy_ = false;
  bool stop_ = false;

  mutable std::mutex snapshot_mu_;
  SchedulerSnapshot snapshot_;

  // Timers and backends may call back after the scheduler is gone: they go through this.
  struct Alive {
    std::mutex mu;
    Scheduler* self = nullptr;
  };
  std::shared_ptr<Alive> alive_ = std::make_shared<Alive>();
  std::function<void(Event)> GuardedPost();

  std::thread worker_;  // last: starts once everything above exists
};

// Simulation driver for a VirtualClock: fires every timer due up to `until_ms` in order, letting
// the scheduler settle after each, then moves time to `until_ms`.
void AdvanceTo(Scheduler& scheduler, VirtualClock& clock, int64_t until_ms);

}  // namespace steno::sched
