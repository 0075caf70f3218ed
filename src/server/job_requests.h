// JobRequests: what clients ask of the queue — submit a job, read it (one, with its attempts, a
// page, its result), cancel it, wait for it — and admission: the queue bound, Retry-After, and
// refusing work once the service stops admitting.
//
// Promise 3, no job is lost: Submit returns only after the upload is fsynced in the blob store
// (and, on a shared store, pushed to it) and the job row is committed; only then does the
// scheduler see it (on a shared store: the claim loop of whichever node has room). Readers read
// the store. A synchronous request's run (RunNow) is the exception the promise allows: its client
// holds the connection, so it is kept in memory only (sync_runs.h), and the readers below answer
// for it from there.
//
// One mutex: the queue bound, the queue settings, the audio limits and the places reserved by
// submissions in flight. Submit reserves a place under it and inserts without it: no lock here is
// held across a store call, and no other lock is taken under it. Safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "audio/probe.h"
#include "core/job.h"
#include "core/mutex.h"
#include "core/result.h"
#include "sched/job_queue.h"
#include "server/cluster_link.h"
#include "server/job_end_signal.h"
#include "server/live_events.h"
#include "server/queue_stats.h"
#include "server/runtime_slot.h"
#include "server/sync_runs.h"
#include "server/vad_policy.h"
#include "store/blob_store.h"
#include "store/cluster_store.h"
#include "store/job_store.h"

namespace steno::server {

class ChunkedJobs;  // chunked_jobs.h

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

class JobRequests;

// A place in the queue held by one submission (JobRequests::Reserve): counted against the queue
// bound from its reservation until it is destroyed.
class QueuePlace {
 public:
  ~QueuePlace();
  QueuePlace(const QueuePlace&) = delete;
  QueuePlace& operator=(const QueuePlace&) = delete;

 private:
  friend class JobRequests;
  explicit QueuePlace(JobRequests* owner) : owner_(owner) {}
  JobRequests* owner_;
};

struct JobRequestParts {
  store::JobStore* jobs = nullptr;
  store::BlobStore* blobs = nullptr;       // this node's upload files
  store::ClusterStore* cluster = nullptr;  // null: a single-node store
  ClusterLink* link = nullptr;             // with `cluster`
  RuntimeSlot* runtime = nullptr;
  LiveEvents* live = nullptr;
  SyncRuns* sync = nullptr;  // synchronous requests' runs
  QueueStats* stats = nullptr;
  JobEndSignal* ended = nullptr;
  size_t queue_bound = 0;    // pending + running jobs accepted
  sched::QueueConfig queue;  // what Retry-After is derived from
  audio::Limits limits;      // longest audio accepted
  VadPolicy vad;             // the server's VAD default (decided per job at Submit)
  std::string results_dir;   // where speech jobs' audio is (store::ResultsDir of the data dir)
  ChunkedJobs* chunked =
      nullptr;  // hands jobs to the scheduler (long recordings with VAD as chunks)
};

class JobRequests {
 public:
  // Every pointer but `cluster` and `link` must be set and outlive this object.
  explicit JobRequests(JobRequestParts parts);

  // A speech job (params.task "speech") has no audio: it names neither an upload nor a path
  // (kBadInput "unexpected_audio" if it does), and its result is an audio file (ResultAudio).
  // Probes the audio (kBadInput with the probe's code: not_media, no_audio_stream, too_long,
  // ...), checks the model resolves (kNotFound "model_not_found") and the params (kBadInput),
  // decides its VAD (vad_policy.h: kBadInput "vad_model_missing"), stores the job durably and
  // queues it. kUnavailable "queue_full" (with Error::retry_after_s,
  // see RetryAfterSeconds) or "shutting_down". Returns the stored job (with
  // `existing` when the idempotency key matched).
  // `place`: the one Reserve gave this submission before its upload was read (on a shared store
  // the cluster's queue is checked again here); none: Submit reserves one itself.
  Result<store::Inserted> Submit(const SubmitJob& job, std::unique_ptr<QueuePlace> place = nullptr)
      EXCLUDES(mu_);

  // A place in the queue for a submission about to send its upload, by this node's own count
  // (the jobs it holds and the submissions holding a place; on a shared store only the latter,
  // as reading the cluster's queue costs a store read): kUnavailable "queue_full" (with
  // Retry-After) when there is none. Reserved before the upload is read, so that a burst of
  // submissions larger than the room left is refused at once rather than after each upload was
  // stored, fsynced and probed.
  Result<std::unique_ptr<QueuePlace>> Reserve() EXCLUDES(mu_);

  // A synchronous request's run (sync_runs.h): checked like Submit (params, model, the audio at
  // input.path probed, its VAD decided, the queue bound, counted on this node only) but never
  // stored: it goes straight to this node's scheduler. For the whisper runner (unless the run is
  // chunked) the audio is decoded here, once, and travels as BlobRef::pcm: a bad file's decoding
  // errors (truncated, corrupt_audio, ...) are this call's, as its probe errors are. `input_owner`
  // keeps input.path alive until the run ends; with `keep_result` the result waits for
  // SyncRuns::Wait. Returns the run's job. Errors: Submit's, less the store's (a speech job:
  // kBadInput "unexpected_audio" if it names audio; its result is a file, so it is Submit's alone).
  // `place`: as Submit's (none: RunNow reserves one itself).
  Result<Job> RunNow(const SubmitJob& request, sched::BlobRef input,
                     std::shared_ptr<void> input_owner, bool keep_result,
                     std::unique_ptr<QueuePlace> place = nullptr) EXCLUDES(mu_);
  // A transcription result (the runner's verbose JSON) in `format`, as ResultText renders a
  // stored one: words only when the job asked for word timestamps.
  static Result<std::string> RenderResult(const nlohmann::json& result, const JobParams& params,
                                          const std::string& format);

  // Get, GetWithAttempts and Cancel answer for synchronous requests' runs (from memory) as for
  // stored jobs; ResultText has no result of theirs (kNotFound "result_not_found": it was their
  // response).
  Result<Job> Get(const std::string& id);
  // The job with every run it had (which node, when, how it ended), read in one snapshot.
  Result<store::JobWithAttempts> GetWithAttempts(const std::string& id);
  Result<store::JobPage> List(const store::JobFilter& filter);
  Result<store::JobCounts> Counts();
  // The completed job's result in `format` (json | text | srt | vtt | verbose_json; with words
  // when the job asked for word timestamps). kNotFound for an unknown job or one not completed.
  Result<std::string> ResultText(const std::string& id, const std::string& format);
  // A completed speech job's audio: the file in the results dir named by the stored result
  // ({"audio_file", "content_type", "bytes"}, runners/server/server_model.h), its Content-Type
  // and size. kNotFound for an unknown job or one not completed, kBadInput "not_speech" for a
  // transcription job, kNotFound "result_file_missing" when the file is gone.
  struct AudioFile {
    std::string path;
    std::string content_type;
    int64_t bytes = 0;
  };
  Result<AudioFile> ResultAudio(const std::string& id);
  // Cancels a job that is not final: the store records it cancelled at once; a running job's
  // runner is told to abort (on whichever node runs it). kNotFound "job_not_found"; kConflict
  // "job_finished" for a job that already completed or failed (cancelling a cancelled job
  // returns it unchanged).
  Result<Job> Cancel(const std::string& id);
  // Blocks until the job is final or `timeout_ms` passes; returns the job as it then is.
  Result<Job> Wait(const std::string& id, int64_t timeout_ms);

  // After this, Submit fails with kUnavailable "shutting_down" (/readyz fails).
  void StopAdmitting() { admitting_ = false; }
  bool admitting() const { return admitting_; }
  // Seconds a client refused with queue_full should wait (the Retry-After header): the jobs held
  // over the current max_running slots, at the mean job time so far.
  int RetryAfterSeconds() const EXCLUDES(mu_);
  // The current queue bound (--max-queue; a reload may change it).
  size_t max_queue() const EXCLUDES(mu_);
  // Whether a submission now would be refused with queue_full by this node's own count (the
  // jobs it holds and the submissions holding a place; on a shared store only the latter).
  // Reserves nothing: a hint for refusing before a request's body is read (Reserve holds the
  // place as well); Submit and RunNow still decide.
  bool QueueFull() EXCLUDES(mu_);
  // A config reload (SIGHUP): the queue bound, the queue settings Retry-After is derived from and
  // the audio limits, swapped at once. Jobs already accepted are not affected.
  void Reconfigure(size_t queue_bound, const sched::QueueConfig& queue, const audio::Limits& limits)
      EXCLUDES(mu_);

  // Hands a stored job to this node's scheduler with a local copy of its upload; a long
  // recording with VAD to the chunked jobs instead (chunked_jobs.h).
  // `audio_s`: the upload's duration when Submit probed it (nullopt: probed again if needed).
  Status Schedule(const Job& job, std::optional<double> audio_s = std::nullopt);

  static Error ShuttingDown();

 private:
  // Jobs the queue bound counts: this node's, not final yet; on a shared store, every pending
  // job of the cluster (what each node runs is bounded by its room, not by this bound).
  size_t QueueLength();
  int RetryAfterFor(const sched::QueueConfig& queue) const;
  friend class QueuePlace;
  // Reserves a place in the queue for a submission in flight when `held` (jobs counted against
  // the bound) leaves room: kUnavailable "queue_full" (with Retry-After) otherwise. The place is
  // given back when the returned handle is destroyed.
  Result<std::unique_ptr<QueuePlace>> ReservePlace(size_t held) EXCLUDES(mu_);
  // For a submission that holds `place` already: on a shared store, whether the cluster's queue
  // (`held` pending jobs) still leaves it room beside the other places held (queue_full if not).
  Status CheckPlace(size_t held) EXCLUDES(mu_);
  Error QueueFullError(const sched::QueueConfig& queue) const;
  // The model resolves (kNotFound "model_not_found", ...) and can do `task` (kBadInput
  // "model_cannot_do_task", server/job_params_check.h): its runner kind.
  Result<std::string> CheckModel(const std::string& model, const std::string& task);
  // The job's audio as a committed blob: `digest` (an upload's, probed) or a copy of its server
  // path (probed, then copied; `digest` set). Returns its duration (0 for a speech job, which
  // has none: kBadInput "unexpected_audio" if it names any). The probe's errors, "no_audio".
  Result<double> TakeAudio(const SubmitJob& request, std::string& digest) EXCLUDES(mu_);
  // Copies a server-side file into the blob store (so retention and restarts treat it like an
  // upload, and a later change to the file does not change the job).
  Result<store::BlobInfo> CopyIntoBlobs(const std::string& path);
  // Removes an upload no job refers to (a refused submission leaves nothing behind).
  void DropUnreferenced(const std::string& digest);

  const JobRequestParts p_;
  std::atomic<bool> admitting_{true};
  mutable Mutex mu_;
  size_t queue_bound_ GUARDED_BY(mu_);
  sched::QueueConfig queue_ GUARDED_BY(mu_);
  size_t reserved_ GUARDED_BY(mu_) = 0;  // submissions between the bound's check and their end
  audio::Limits limits_ GUARDED_BY(mu_);
};

}  // namespace steno::server
