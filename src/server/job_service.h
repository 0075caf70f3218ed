// JobService: what `steno serve` is behind its HTTP routes. It opens the durable store (jobs,
// uploads, results, measured footprints), starts the runtime (scheduler and runners) and wires
// the parts that join them, each with its own concern and its own locks:
//   jobs()     JobRequests    submit, read, cancel and wait for jobs; admission (job_requests.h)
//   events()   LiveEvents     job events for streams; what the dashboard shows live (live_events.h)
//   runners()  RunnerControl  model load/unload, snapshots, devices, metrics, incidents
//                             (runner_control.h)
//   proxies()  ProxyHolds     the in-memory work items of requests relayed to managed model
//                             servers (proxy_holds.h)
//   sync()     SyncRuns       the in-memory runs of synchronous OpenAI requests: never stored,
//                             run on this node (sync_runs.h; started by jobs().RunNow)
//   sessions() LiveSessions   the in-memory jobs of live transcription sessions (WebSocket,
//                             live_sessions.h): never stored, run on this node
//   cluster()  ClusterMember  claims, other nodes' events, the nodes table; null unless the
//                             store is shared (cluster_member.h)
// and, inside: the coordinator of long recordings run as chunks (chunked_jobs.h), the writer that
// makes the scheduler's changes durable in order (job_writer.h), the lease heartbeats
// (lease_keeper.h), and the slot that holds the runtime (runtime_slot.h). None of them holds a lock
// across a store, network or driver call.
//
// Promise 3, no job is lost: a job is durable before the scheduler sees it; the scheduler's
// changes are written in order under this node's lease. Synchronous requests' runs need no
// durability (their client holds the connection and retries): they never touch the store. On start,
// jobs a crash left loading/processing are requeued by the store and every pending job is handed to
// the scheduler again, so each ends exactly once.
//
// Shared store (ServiceOptions::store = postgres://...): several nodes share one PostgreSQL
// queue, and the store is their only coordinator (server/cluster_link.h). Jobs, results and
// uploads live there; an upload streams into this node's blob files, is pushed to the store
// before its job is inserted, and is fetched by whichever node runs the job. Submit only
// inserts the job and notifies the nodes; each node's claim loop claims pending jobs only while
// its scheduler can start them now, so a node holds just the jobs it runs. Shutdown hands
// unfinished jobs back to the queue at once and leaves the nodes table. The queue bound
// (max_length) then counts the cluster's pending jobs.
//
// Every method is safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "audio/probe.h"
#include "core/result.h"
#include "server/cluster_member.h"
#include "server/job_requests.h"
#include "server/live_events.h"
#include "server/live_sessions.h"
#include "server/proxy_holds.h"
#include "server/runner_control.h"
#include "server/runtime.h"
#include "server/service_metrics.h"
#include "server/sync_runs.h"
#include "store/blob_store.h"

namespace steno::server {

struct ServiceOptions {
  RuntimeOptions runtime;
  std::string data_dir;  // jobs database and blobs; empty: steno::DataDir()
  // Shared job store (postgres://user:password@host:port/db); empty: the SQLite store in
  // data_dir. With one, data_dir holds this node's copies of uploads only.
  std::string store;
  std::string node;  // lease owner; empty: "<hostname>:<pid>"
  int64_t lease_ms = 60'000;
  // Shared store: how often this node publishes itself to the nodes table (cluster()->Nodes).
  int64_t publish_ms = 2'000;
  audio::Limits limits;  // longest audio accepted (0: unlimited)
  VadPolicy vad;         // the VAD default for jobs that do not choose (needs a restart to change)
  // Long recordings with VAD run as chunks on several streams (chunked_jobs.h): at most this
  // many of one job's chunks queued or running at once (--chunk-streams; 1: one at a time; needs
  // a restart to change).
  int chunk_streams = 4;
  // Jobs the service holds at most (--max-queue): pending + running here, or the cluster's pending
  // jobs on a shared store; Submit refuses more with queue_full. The scheduler's own queue is left
  // unbounded (runtime.scheduler.queue.max_length is not used): it must take every job the store
  // already holds, such as the pending jobs of a restart.
  size_t max_queue = 10'000;
};

class JobService {
 public:
  // Opens the store (requeueing what a crash left running), starts the runtime and resubmits
  // pending jobs. Errors: the store's, or the runtime's (bad device selection ...).
  static Result<std::unique_ptr<JobService>> Open(ServiceOptions options);
  // Shutdown(0) if it was not called, and closes the store.
  ~JobService();

  JobRequests& jobs();
  LiveEvents& events();
  RunnerControl& runners();
  ProxyHolds& proxies();
  SyncRuns& sync();
  LiveSessions& sessions();
  // This node's part in a cluster; null on a single-node store (the one way to ask "shared?").
  ClusterMember* cluster();
  ServiceMetrics& metrics();        // fed from the scheduler's hooks
  store::BlobStore& blobs();        // this node's upload files
  const std::string& node() const;  // this node's name (ServiceOptions::node)

  // Names the API layer uses.
  using Subscription = LiveEvents::Subscription;
  using LiveInfo = server::LiveInfo;
  using RunnerIncident = server::RunnerIncident;
  using ClusterNode = server::ClusterNode;
  using NodeDescriber = ClusterMember::NodeDescriber;

  // Stops admitting work: Submit and Load fail with kUnavailable "shutting_down" (/readyz fails).
  void StopAdmitting();

  // Graceful stop: stops admitting, lets running jobs finish for up to `grace`, then stops every
  // runner; runs cut short go back to pending in the store (attempt unchanged: the run was not
  // lost through any fault of the job). Snapshots, devices and metrics answer throughout (while
  // the runners stop, with what was last seen). The service is unusable afterwards except for
  // reads.
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
  // accepted are not affected, except those of a server model the reload removes or changes:
  // the managed model servers (options.runtime.server_models) are replaced first, as
  // Runtime::ReplaceServerModels says; if it refuses them, nothing changes and its error is
  // returned. Returns what changed among the server models.
  Result<ServerModelChanges> Reconfigure(const ServiceOptions& options);

 private:
  struct Impl;
  explicit JobService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace steno::server
