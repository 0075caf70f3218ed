// JobWriter: the scheduler's changes to jobs (claimed → loading, processing, completed with its
// result, failed, retried, cancelled) and the footprints runners measured, written to the store
// in order by one thread, under this node's lease; then shown to subscribers here (LiveEvents)
// and, on a shared store, on every node (ClusterLink). Updates of a run this node gave up
// (HeldJobs::Drop) are not written: the job is someone else's now.
//
// Enqueue never blocks on I/O (the scheduler's thread calls it). One mutex (the queue); no lock
// is held while the store is written or events are delivered.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <variant>

#include "core/mutex.h"
#include "sched/scheduler_types.h"
#include "server/cluster_link.h"
#include "server/held_jobs.h"
#include "server/job_end_signal.h"
#include "server/live_events.h"
#include "server/queue_stats.h"
#include "server/runtime_slot.h"
#include "store/job_store.h"

namespace steno::server {

class ChunkedJobs;  // chunked_jobs.h

// One item for the writer thread: a scheduler change to apply to the store, or a footprint.
using WriteItem = std::variant<sched::JobUpdate, sched::FootprintUpdate>;

struct JobWriterParts {
  std::string node;  // the lease owner
  int64_t lease_ms = 60'000;
  store::JobStore* jobs = nullptr;
  HeldJobs* held = nullptr;
  LiveEvents* live = nullptr;
  QueueStats* stats = nullptr;
  JobEndSignal* ended = nullptr;
  RuntimeSlot* runtime = nullptr;
  ClusterLink* link = nullptr;     // null: a single-node store
  ChunkedJobs* chunked = nullptr;  // the jobs run as chunks (their runs are stopped there)
};

class JobWriter {
 public:
  // Every pointer but `link` must be set and outlive the writer.
  explicit JobWriter(JobWriterParts parts);
  // Stop() if it was not called.
  ~JobWriter();

  void Start();
  // Queues a change for the writer thread.
  void Enqueue(WriteItem item) EXCLUDES(mu_);
  // From now on job changes are dropped, not written: the runs a shutdown cuts short go back to
  // pending (the shutdown requeues them), they are not failures. Footprints are still written.
  void Discard() { discard_ = true; }
  // Writes what is queued, then joins the thread.
  void Stop() EXCLUDES(mu_);

  // Stops this node's run of a job the store no longer gives it. With `drop`, the run's outcome
  // is not written (the job is someone else's now); without, it is (a user's cancel: a no-op).
  void CancelRun(const std::string& id, bool drop);

 private:
  void Loop() EXCLUDES(mu_);
  // One scheduler change, made durable, then shown to subscribers.
  void Apply(const sched::JobUpdate& u);
  // pending → loading: claims the job for this node (false: the run was cancelled here).
  // Claims job `id` in the store for this node with the lease length (nullopt: not pending).
  Result<std::optional<Job>> ClaimInStore(const std::string& id);
  bool ClaimStarted(const Job& j, Status& st);
  // pending → failed without a run (its model was removed while it waited:
  // Scheduler::Redeclare): the store still has it pending unless the claim loop claimed it, so
  // it is claimed here for Fail to apply. False: not pending there any more (a user cancelled it
  // meanwhile), or `st` says why the claim failed.
  bool ClaimUnstarted(const Job& j, Status& st);
  // Tells subscribers here (and, on a shared store, the other nodes) of a change written.
  void Notify(const sched::JobUpdate& u);

  const JobWriterParts p_;
  std::atomic<bool> discard_{false};
  Mutex mu_;
  CondVar cv_;  // work, or stop
  std::deque<WriteItem> writes_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace steno::server
