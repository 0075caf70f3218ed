// JobService's private state and the methods its files share (job_service.cc: the public
// API, start and shutdown; job_service_writer.cc: scheduler changes to the store and to
// subscribers; job_service_cluster.cc: leases, claims, other nodes' events, the nodes table).
// Included only by those files.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "server/cluster_link.h"
#include "server/job_service.h"
#include "store/pg_blob_store.h"
#include "store/pg_job_store.h"

namespace steno::server {

// One item for the writer thread: a scheduler change to apply to the store, or a footprint.
using WriteItem = std::variant<sched::JobUpdate, sched::FootprintUpdate>;

struct Subscriber {
  std::function<bool(const JobEvent&)> fn;
  // Held while `fn` runs: once the handle is dropped (done set under it), fn is never called
  // again, so it may refer to things that die with the handle's owner.
  std::mutex mu;
  bool done = false;
  // The last state it was shown: a state read at Subscribe time is not repeated when its
  // (already written) event arrives.
  JobState last_state = JobState::kPending;
  int last_attempt = 0;

  // A job's states in one attempt only move forward.
  static int Rank(JobState s) { return IsFinal(s) ? 3 : static_cast<int>(s); }

  bool Deliver(const JobEvent& ev) {
    std::lock_guard<std::mutex> lock(mu);
    if (done) return false;
    if (ev.kind == JobEvent::Kind::kState) {
      if (ev.job.state == last_state && ev.job.attempt == last_attempt) return true;
      // Shown already (events of another node, and a re-read of the store, may cross).
      if (ev.job.attempt < last_attempt ||
          (ev.job.attempt == last_attempt && Rank(ev.job.state) < Rank(last_state))) {
        return true;
      }
      last_state = ev.job.state;
      last_attempt = ev.job.attempt;
    }
    if (!fn(ev)) done = true;
    return !done;
  }
};

struct JobService::Impl {
  ServiceOptions options;
  std::unique_ptr<store::JobStore> jobs;
  std::optional<store::BlobStore> blobs;  // this node's files (runners read them)
  // With a shared store (--store postgres://...): the uploads every node can fetch; null on the
  // single-node SQLite store.
  std::unique_ptr<store::PgBlobStore> shared_blobs;
  store::PgJobStore* pg = nullptr;  // `jobs` on a shared store (nodes table)
  std::mutex describe_mu;
  NodeDescriber describe;
  // Jobs this node holds a lease on, and runs this node gave up because the store says they are
  // not ours (another node claimed the job, or our lease was lost): their scheduler outcome is
  // not written to the store.
  std::mutex held_mu;
  std::set<std::string> held;
  std::set<std::string> dropped;
  // Claimed by the claim loop and handed to the scheduler: its pending → loading is not claimed
  // again.
  std::set<std::string> preclaimed;
  // Shared store: notifications, the claim loop, the nodes table (null on the SQLite store).
  std::unique_ptr<ClusterLink> link;
  // Jobs streamed here that run on another node: when their last event from it came (steady ms).
  std::map<std::string, int64_t> remote_seen;
  ServiceMetrics metrics;
  std::unique_ptr<Runtime> runtime;
  // Guards `runtime` against the writer while the destructor tears it down; `discard` is set
  // then too: the runs a shutdown cuts short go back to pending, they are not failures.
  std::mutex runtime_mu;
  bool discard = false;

  std::atomic<bool> admitting{true};
  // Serialises the queue-capacity check with the insert, so the bound is exact. Also guards what a
  // reload changes in `options`: max_queue, limits, runtime.scheduler.
  std::mutex submit_mu;
  std::atomic<int64_t> in_scheduler{0};  // submitted to the scheduler, not final yet
  std::atomic<int64_t> mean_job_ms{0};

  // Writer thread: applies scheduler changes to the store in order, then tells subscribers.
  std::mutex mu;
  std::condition_variable cv;        // work for the writer, or stop
  std::condition_variable final_cv;  // some job became final (Wait)
  std::deque<WriteItem> writes;
  bool stop = false;
  std::thread writer;
  std::thread heartbeat;
  std::condition_variable heartbeat_cv;

  // Live jobs' segments so far (a late subscriber gets them first), and subscribers.
  std::mutex live_mu;
  std::map<std::string, std::vector<nlohmann::json>> segments;
  std::multimap<std::string, std::shared_ptr<Subscriber>> subscribers;

  // JobService::Live: per job, newest last; the oldest entries go past kLiveKept.
  static constexpr size_t kLiveKept = 2000;
  mutable std::mutex info_mu;
  std::map<std::string, LiveInfo> live_info;
  std::deque<std::string> live_order;

  std::mutex incident_mu;
  std::function<void(const RunnerIncident&)> incident_listener;

  template <class F>
  void UpdateLive(const std::string& id, F update) {
    std::lock_guard<std::mutex> lock(info_mu);
    auto [it, added] = live_info.try_emplace(id);
    update(it->second);
    if (!added) return;
    live_order.push_back(id);
    if (live_order.size() > kLiveKept) {
      live_info.erase(live_order.front());
      live_order.pop_front();
    }
  }

  void Incident(const RunnerIncident& incident) {
    std::lock_guard<std::mutex> lock(incident_mu);
    if (incident_listener) incident_listener(incident);
  }

  // Calls `fn(Runtime&)` unless the runtime is gone (after Shutdown): then `gone`.
  template <class F, class R>
  R WithRuntime(F fn, R gone) {
    std::lock_guard<std::mutex> lock(runtime_mu);
    if (!runtime) return gone;
    return fn(*runtime);
  }

  static Error ShuttingDown() {
    return Error(ErrorKind::kUnavailable, "shutting_down", "the server is shutting down");
  }

  // --- job_service_writer.cc
  // Queues a change for the writer thread.
  void Enqueue(WriteItem item);
  // The writer thread: applies queued changes in order until stopped with nothing left.
  void WriterLoop();
  // Stops this node's run of a job the store no longer gives it. With `drop`, the run's outcome
  // is not written (the job is someone else's now); without, it is (a user's cancel: a no-op).
  void CancelRun(const std::string& id, bool drop);
  // True for every update of a run CancelRun dropped, up to its end there (final or requeued).
  bool TakeDropped(const sched::JobUpdate& u);
  // One scheduler change, made durable, then shown to subscribers.
  void Apply(const sched::JobUpdate& u);
  // Tells subscribers here (and, on a shared store, the other nodes) of a change written.
  void Notify(const sched::JobUpdate& u);
  // An event as it travels between nodes by NOTIFY.
  static nlohmann::json EventJson(const JobEvent& ev);
  // Hands `ev` to the job's subscribers; a final state ends them.
  void Deliver(const JobEvent& ev);
  // The scheduler's hooks: job changes and footprints go to the writer, runners to metrics.
  sched::SchedulerHooks Hooks();

  // --- job_service_cluster.cc
  // Another node's event for one of its jobs: streamed to this node's subscribers of the job (the
  // job itself is read from the store); a cancel of a job this node runs stops the run at once.
  void OnRemoteEvent(const nlohmann::json& event);
  // Streams of jobs running elsewhere that heard nothing for 2 s: their state is read again (a
  // notification lost while the listening connection was down must not leave them hanging).
  void ResyncRemote();
  // Jobs we held whose lease a heartbeat did not renew: cancelled by a user (perhaps on another
  // node), finished meanwhile, or requeued after our lease ran out (someone else may run them).
  void StopLost(const std::set<std::string>& ids);
  // Renews this node's leases every third of the lease (stopping the runs whose lease is gone)
  // and, on a shared store, requeues the expired leases of other nodes.
  void HeartbeatLoop();
  // On a shared store: jobs whose node stopped renewing their lease (it died) go back to pending,
  // and every node is told (the first with room claims them).
  void RequeueExpired();
  // The claim loop (shared store): while the scheduler can start a job of a model that has
  // jobs due, claim the first of them in queue order (FOR UPDATE SKIP LOCKED: nodes never get
  // the same job) and hand it to the scheduler already claimed. A node therefore holds only jobs
  // it runs now; the rest stay pending for whichever node has room. Every model with a job due
  // is considered, so a long queue of jobs no node here can run does not hide the others.
  void ClaimPlaceable();
  // Hands a job the claim loop claimed to the scheduler, or back to the queue if it cannot run
  // here.
  void RunClaimed(const Job& job);
  // The shared store: jobs and uploads in PostgreSQL, this node's copies of uploads in its data
  // dir. Unlike the SQLite store, nothing found running is requeued at once (other nodes run
  // it); only jobs whose lease ran out go back to pending.
  Status OpenShared(const ServiceOptions& o);

  // --- job_service.cc
  // True when `device` (empty or auto: any) is one of this node's devices.
  bool HasDevice(const std::string& device);
  // Submits a stored job to the scheduler with a local copy of its upload.
  Status Schedule(const Job& job);
  // Jobs the queue bound counts: this node's, not final yet; on a shared store, every pending
  // job of the cluster (what each node runs is bounded by its room, not by this bound).
  size_t QueueLength();
  // Copies a server-side file into the blob store (so retention and restarts treat it like an
  // upload, and a later change to the file does not change the job).
  Result<store::BlobInfo> CopyIntoBlobs(const std::string& path);
  // Removes an upload no job refers to (a refused submission leaves nothing behind).
  void DropUnreferenced(const std::string& digest);
};

}  // namespace steno::server
