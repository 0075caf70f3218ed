// JobStore: the durable queue of jobs, their results and the measured model footprints.
//
// One interface, two homes: SQLite in the data dir for one node (sqlite_job_store.h), and
// PostgreSQL so that several nodes share one queue (pg_job_store.h). That is why work is handed
// out as *leases*: a worker (node) claims a job under its owner name for a limited time, renews
// the lease with heartbeats, and every later transition names the owner. A worker whose lease expired (it died,
// or stalled) can no longer complete the job: someone else may be running it.
//
// Promises every implementation keeps:
//  - Once a mutating call returns ok, its effect is durable (survives kill -9 of the process).
//  - A job reaches a final state (completed/failed/cancelled) at most once and never leaves it;
//    a result is written at most once. A second completion is refused with kErrJobFinished
//    and logged.
//  - Inserting with an idempotency key that already exists returns the existing job.
//  - Every call is safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/job.h"
#include "core/result.h"

namespace steno::store {

// Stable error codes (Error::code) callers branch on.
inline constexpr const char kErrJobNotFound[] = "job_not_found";        // kNotFound
inline constexpr const char kErrResultNotFound[] = "result_not_found";  // kNotFound
inline constexpr const char kErrJobFinished[] = "job_finished";         // kBadInput: already final
inline constexpr const char kErrLeaseNotHeld[] = "lease_not_held";      // kBadInput: not your job
inline constexpr const char kErrBadTransition[] = "bad_transition";     // kBadInput
inline constexpr const char kErrBadJob[] = "bad_job";                   // kBadInput: invalid field
inline constexpr const char kErrStoreCorrupt[] = "store_corrupt";       // kIntegrity
inline constexpr const char kErrSchemaTooNew[] = "schema_too_new";      // kIntegrity
inline constexpr const char kErrForeignSchema[] = "foreign_schema";     // kIntegrity
inline constexpr const char kErrStoreLocked[] = "store_locked";         // kUnavailable
inline constexpr const char kErrStoreBusy[] = "store_busy";             // kUnavailable
inline constexpr const char kErrStoreIo[] = "store_io";                 // kIo
inline constexpr const char kErrStoreFull[] = "store_full";             // kNoSpace: disk full

// What a client submits. The store assigns id, state, attempt and times.
struct NewJob {
  std::string model;
  Priority priority = Priority::kNormal;
  JobParams params;
  std::string blob_digest;      // must already be durable in the blob store
  std::string idempotency_key;  // empty: none (at most 255 bytes)
};

struct Inserted {
  Job job;
  bool existing = false;  // the idempotency key matched a job made earlier; nothing was inserted
};

// Claim a pending job whose not_before time has passed: the named one, or else the first in queue
// order (priority, then age) among `models` (empty: any model). The job moves to loading.
struct ClaimRequest {
  std::string owner;                  // worker/node name; must not be empty
  int64_t lease_ms = 60'000;          // lease length; renew with Heartbeat before it runs out
  std::optional<std::string> job_id;  // claim exactly this job (if it is still pending)
  std::vector<std::string> models;    // only with no job_id: restrict to these models
};

// Put a claimed job back to pending with attempt + 1 (its run was lost or must be retried).
struct RequeueRequest {
  std::string id;
  std::string owner;            // the node holding its lease
  std::optional<Error> reason;  // kept as the job's last error
  int64_t delay_ms = 0;         // not claimable again before now + delay (retry backoff)
};

enum class ListOrder {
  kNewestFirst,  // created time, newest first (what a user listing jobs expects)
  kQueueOrder,   // priority, then oldest first (what the scheduler scans)
};

struct JobFilter {
  std::vector<JobState> states;  // empty: any state
  std::string model;             // empty: any model
  std::string lease_owner;       // empty: any owner
  ListOrder order = ListOrder::kNewestFirst;
  int limit = 100;         // page size, 1..1000
  std::string page_token;  // empty: first page; else JobPage::next_page_token of the previous page
};

struct JobPage {
  std::vector<Job> jobs;
  std::string next_page_token;  // empty: no more pages
};

// One run of a job: from its claim to its outcome.
struct AttemptRecord {
  int attempt = 0;
  std::string owner;  // the node (lease owner) that ran it
  int64_t started_ms = 0;
  int64_t ended_ms = 0;  // 0 while it runs
  // "" while it runs; completed | failed | cancelled | requeued (handed back: a runner crash or
  // out of memory to retry, a node stopping) | lost (steno stopped mid-run; found on restart) |
  // lease_expired (its node stopped renewing the lease: died or stalled).
  std::string outcome;
  std::optional<Error> error;  // why it failed or was requeued, lost or cancelled
};

// A job with its runs, read together: the attempts agree with the job's state and node.
struct JobWithAttempts {
  Job job;
  std::vector<AttemptRecord> attempts;  // oldest first; empty for a job never claimed
};

struct JobCounts {
  std::array<int64_t, 6> by_state{};  // indexed by JobState
  int64_t operator[](JobState s) const { return by_state[static_cast<size_t>(s)]; }
};

// The pending jobs of one model: all of them, and those due now (not held back by a backoff).
struct PendingModel {
  std::string model;
  int64_t pending = 0;
  int64_t due = 0;
};

// Memory one loaded model takes on one kind of device, as measured by a runner. The scheduler's
// estimator prefers these over estimates from the model file.
struct ModelFootprint {
  std::string model;        // model name
  std::string device_name;  // device model, e.g. "NVIDIA H100 80GB HBM3" or "cpu"
  int64_t weights_bytes = 0;
  int64_t stream_bytes = 0;  // per concurrent stream
  int64_t measured_ms = 0;   // set by the store on Put
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // --- Submitting and reading ---
  virtual Result<Inserted> Insert(const NewJob& job) = 0;
  virtual Result<Job> Get(const std::string& id) = 0;
  virtual Result<JobPage> List(const JobFilter& filter) = 0;
  virtual Result<JobCounts> Count() = 0;
  // Pending jobs per model (models with none are left out), by model name. Reads only pending
  // rows, so it stays cheap however many finished jobs the store keeps.
  virtual Result<std::vector<PendingModel>> PendingByModel() = 0;
  // The stored result of a completed job. kErrResultNotFound if it has none (yet).
  virtual Result<std::string> GetResult(const std::string& id) = 0;
  // The job's runs, oldest first (empty for a job never claimed). kErrJobNotFound if no such job.
  virtual Result<std::vector<AttemptRecord>> Attempts(const std::string& id) = 0;
  // The job and its runs from one snapshot (no transition lands between the two reads).
  // kErrJobNotFound if no such job.
  virtual Result<JobWithAttempts> GetWithAttempts(const std::string& id) = 0;

  // --- Leases ---
  // The claimed job (now loading), or nullopt when nothing matching is pending.
  virtual Result<std::optional<Job>> Claim(const ClaimRequest& request) = 0;
  // Renews every lease `owner` holds to now + lease_ms; returns the ids still held. A job missing
  // from the list was cancelled or lost its lease: the worker should stop working on it.
  virtual Result<std::vector<std::string>> Heartbeat(const std::string& owner,
                                                     int64_t lease_ms) = 0;
  // loading -> processing.
  virtual Status MarkProcessing(const std::string& id, const std::string& owner) = 0;
  // loading|processing -> completed, storing `result_json` (a JSON document: segments and
  // metadata) once. kErrJobFinished if the job is already final (a second completion);
  // kErrLeaseNotHeld if `owner` lost it. These transitions accept a lease past its expiry as
  // long as nobody requeued the job meanwhile: no one else can be running it.
  virtual Status Complete(const std::string& id, const std::string& owner,
                          const std::string& result_json) = 0;
  // loading|processing -> failed with `error`.
  virtual Status Fail(const std::string& id, const std::string& owner, const Error& error) = 0;
  virtual Status Requeue(const RequeueRequest& request) = 0;
  // Jobs whose lease has expired go back to pending with attempt + 1; returns their ids.
  virtual Result<std::vector<std::string>> RequeueExpired() = 0;

  // --- Users ---
  // pending|loading|processing -> cancelled (whoever holds it). Cancelling a cancelled job is a
  // no-op; a completed or failed one gives kErrJobFinished. Returns the job as it now is.
  virtual Result<Job> Cancel(const std::string& id) = 0;

  // --- Measured footprints ---
  virtual Status PutFootprint(const ModelFootprint& footprint) = 0;  // insert or replace
  virtual Result<std::optional<ModelFootprint>> GetFootprint(const std::string& model,
                                                             const std::string& device_name) = 0;
  virtual Result<std::vector<ModelFootprint>> ListFootprints() = 0;

  // --- Retention (store/retention.h drives these) ---
  // Deletes up to `limit` final jobs finished before `cutoff_ms`, with their results and
  // history; returns how many were deleted.
  virtual Result<int> DeleteFinishedBefore(int64_t cutoff_ms, int limit) = 0;
  // Every blob digest some job still references (the blob store keeps exactly these).
  virtual Result<std::vector<std::string>> ReferencedBlobs() = 0;
};

}  // namespace steno::store
