// JobService: what `steno serve` is behind its HTTP routes. It joins the durable store (jobs,
// uploads, results, measured footprints) to the scheduler (which runs them on runners).
//
// Promise 3, no job is lost: Submit returns only after the upload is fsynced in the blob store
// and the job row is committed; only then does the scheduler see it. The scheduler's changes to
// a job (claimed → loading, processing, completed with its result, failed, retried, cancelled)
// are written to the store in order by one writer thread, under this node's lease, which is
// renewed by heartbeats. On start, jobs a crash left loading/processing are requeued by the store
// and every pending job is handed to the scheduler again, so each ends exactly once.
//
// Shared store (ServiceOptions::store = postgres://...): several nodes share one PostgreSQL
// queue, and PostgreSQL is their only coordinator (server/cluster_link.h). Jobs and results live
// there, and so does every upload (store/pg_blob_store.h): an upload still streams into this
// node's blob files, is pushed to PostgreSQL before its job is inserted, and is fetched into the
// local files of whichever node runs the job. Submit only inserts the job and notifies the
// nodes; each node's claim loop claims pending jobs (in queue order, FOR UPDATE SKIP LOCKED) only
// while its scheduler can start them now (Scheduler::Placeable), so a node holds just the jobs it
// runs and never hoards. Every heartbeat requeues leases that ran out (a node that died); a claim
// lost to another node, or a lease this node lost, stops the local run without writing its
// outcome. Shutdown hands unfinished jobs back to the queue at once and leaves the nodes table.
// Job events (state, progress, segments) travel between nodes by NOTIFY, so Subscribe works on
// any node for any job. The queue bound (max_length) then counts the cluster's pending jobs.
//
// Readers (GET /v1/jobs...) read the store; live progress and segments come from subscriptions.
// Every method is safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "audio/probe.h"
#include "core/job.h"
#include "core/result.h"
#include "server/runtime.h"
#include "server/service_metrics.h"
#include "store/blob_store.h"
#include "store/job_store.h"
#include "store/pg_job_store.h"

namespace steno::server {

struct ServiceOptions {
  RuntimeOptions runtime;
  std::string data_dir;  // jobs database and blobs; empty: steno::DataDir()
  // Shared job store (postgres://user:password@host:port/db); empty: the SQLite store in
  // data_dir. With one, data_dir holds this node's copies of uploads only.
  std::string store;
  std::string node;  // lease owner; empty: "<hostname>:<pid>"
  int64_t lease_ms = 60'000;
  // Shared store: how often this node publishes itself to the nodes table (JobService::Nodes).
  int64_t publish_ms = 2'000;
  audio::Limits limits;  // longest audio accepted (0: unlimited)
  // Jobs the service holds at most (--max-queue): pending + running here, or the cluster's pending
  // jobs on a shared store; Submit refuses more with queue_full. The scheduler's own queue is left
  // unbounded (runtime.scheduler.queue.max_length is not used): it must take every job the store
  // already holds, such as the pending jobs of a restart.
  size_t max_queue = 10'000;
};

// Where a job's audio comes from: an upload already streamed into the blob store (committed), or
// a file on the server the caller has already confined to an allowed root.
struct SubmitJob {
  std::string model;
  Priority priority = Priority::kNormal;
  JobParams params;
  std::string blob_digest;  // committed upload; or
  std::string server_path;  // a server-side file (copied into the blob store)
  std::string idempotency_key;
};

// One thing that happened to a job, as SSE streams it.
struct JobEvent {
  enum class Kind { kState, kProgress, kSegment };
  Kind kind = Kind::kState;
  Job job;                 // the job as of this event
  int percent = 0;         // kProgress
  nlohmann::json segment;  // kSegment
};

class JobService {
 public:
  // Opens the data dir (requeueing what a crash left running), starts the runtime and resubmits
  // pending jobs. Errors: the data dir's, or the runtime's (bad device selection ...).
  static Result<std::unique_ptr<JobService>> Open(ServiceOptions options);
  // Shutdown(0) if it was not called, and closes the store.
  ~JobService();

  store::BlobStore& blobs();

  // Probes the audio (kBadInput with the probe's code: not_media, no_audio_stream, too_long,
  // ...), checks the model resolves (kNotFound "model_not_found") and the params (kBadInput),
  // stores the job durably and queues it. kUnavailable "queue_full" (with Error::retry_after_s,
  // see RetryAfterSeconds) or "shutting_down". Returns the stored job (with
  // `existing` when the idempotency key matched).
  Result<store::Inserted> Submit(const SubmitJob& job);

  Result<Job> Get(const std::string& id);
  // The job with every run it had (which node, when, how it ended), read in one snapshot.
  Result<store::JobWithAttempts> GetWithAttempts(const std::string& id);
  Result<store::JobPage> List(const store::JobFilter& filter);
  // The completed job's result in `format` (json | text | srt | vtt | verbose_json; with words
  // when the job asked for word timestamps). kNotFound for an unknown job or one not completed.
  Result<std::string> ResultText(const std::string& id, const std::string& format);
  // Cancels a job that is not final: the store records it cancelled at once; a running job's
  // runner is told to abort. kNotFound "job_not_found"; kConflict "job_finished" for a job that
  // already completed or failed (cancelling a cancelled job returns it unchanged).
  Result<Job> Cancel(const std::string& id);

  // Blocks until the job is final or `timeout_ms` passes; returns the job as it then is.
  Result<Job> Wait(const std::string& id, int64_t timeout_ms);

  // Calls `fn` for every later event of the job, in order: first (before Subscribe returns, on
  // the caller's thread) with the job's current state and the segments it already produced, then
  // on the service's writer thread. `fn` must not block (hand the event to your own queue) and
  // returns false to stop. The subscription ends after the final state's event or when the
  // returned handle is reset. kNotFound for an unknown job.
  using Subscription = std::shared_ptr<void>;
  Result<Subscription> Subscribe(const std::string& id, std::function<bool(const JobEvent&)> fn);

  // Model lifecycle (POST /v1/models/{name}/load|unload).
  Status Load(const std::string& model, const std::string& device, std::optional<int> keep_alive_s);
  Status Unload(const std::string& model);

  // Monitoring.
  // What the store does not keep about a job, for the dashboard: the length of its audio (probed
  // when it was submitted to this process) and its latest progress. Kept for the last 2,000 jobs
  // submitted or run here; a job not among them has neither.
  struct LiveInfo {
    std::optional<double> audio_seconds;
    std::optional<int> percent;
  };
  std::map<std::string, LiveInfo> Live(const std::vector<std::string>& ids) const;

  // Runner trouble the alerts watch: a runner that crashed, an unload whose release was not
  // verified on the device.
  struct RunnerIncident {
    enum class Kind { kCrash, kUnreleased };
    Kind kind = Kind::kCrash;
    std::string model, device;
    int64_t leftover_bytes = 0;  // kUnreleased
    std::string detail;
  };
  // Replaces the listener (empty: none). It is called on the scheduler's or an unloading thread
  // and must be quick.
  void SetIncidentListener(std::function<void(const RunnerIncident&)> listener);

  sched::SchedulerSnapshot Snapshot() const;
  Result<std::vector<gpu::DeviceSample>> Devices() const;
  Result<store::JobCounts> Counts();
  ServiceMetrics& metrics();  // fed from the scheduler's hooks

  // Graceful stop: stops admitting, lets running jobs finish for up to `grace`, then stops every
  // runner; runs cut short go back to pending in the store (attempt unchanged: the run was not
  // lost through any fault of the job). The service is unusable afterwards except for reads.
  struct ShutdownReport {
    int finished_in_grace = 0;  // jobs that were running at the start and finished
    int returned = 0;           // running jobs cut short and returned to the queue
    int64_t pending = 0;        // jobs waiting in the store for the next start (returned ones too)
    StopReport runners;
    // "released 9.8 GiB on cuda:0 in 420 ms; 3 jobs returned to the queue; shut down cleanly"
    std::string Summary() const;
  };
  ShutdownReport Shutdown(std::chrono::milliseconds grace);

  // A config reload (SIGHUP): `options`, built the way the ones Open got were, replace the
  // settings a reload may change, all at once: the scheduler's (SchedulerConfigFor: queue limits,
  // keep-alive, placement, reserves, safety factor, ...), max_queue and the audio limits. The rest
  // (store, data dir, node, devices, models dir) needs a restart and is ignored. Jobs already
  // accepted are not affected.
  void Reconfigure(const ServiceOptions& options);

  // --- Cluster (a shared store) ---
  bool shared() const;              // the store is PostgreSQL, shared with other nodes
  const std::string& node() const;  // this node's name (ServiceOptions::node)
  // What this node publishes about itself every publish_ms: its API URL and its devices, runners
  // and ledger as JSON documents (NodeInfo's fields; id and heartbeat are filled in here). Set by
  // the HTTP layer once it listens; until then the node publishes its name only.
  using NodeDescriber = std::function<store::NodeInfo()>;
  void SetNodeDescriber(NodeDescriber describe);
  // A node as the cluster sees it: what it last published and how long ago (store clock).
  struct ClusterNode {
    store::NodeInfo info;
    int64_t age_ms = 0;
    bool self = false;
    // It published within 3 publish periods (and at least the lease): a node that stopped
    // publishing (killed) stays listed, not live, until it returns or for an hour.
    bool live = false;
  };
  // Every node sharing the queue, by id, this one included (a node that left gracefully removed
  // itself). kBadInput "not_shared" on the single-node store.
  Result<std::vector<ClusterNode>> Nodes();
  // Removes a node that stopped publishing (killed, its machine gone) from the nodes table now
  // rather than after an hour; its jobs were requeued when their leases ran out. kNotFound
  // "node_not_found"; kConflict "node_live" for a node still publishing (it would list itself
  // again) or "node_is_self" for this one; kBadInput "not_shared" on the single-node store.
  Status ForgetNode(const std::string& id);

  // After this, Submit fails with kUnavailable "shutting_down" (/readyz fails).
  void StopAdmitting();
  bool admitting() const;
  // Seconds a client refused with queue_full should wait (the Retry-After header): the jobs held
  // over the current max_running slots, at the mean job time so far.
  int RetryAfterSeconds() const;
  // The current max_queue (a reload may change it).
  size_t max_queue() const;

 private:
  struct Impl;
  explicit JobService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace steno::server
