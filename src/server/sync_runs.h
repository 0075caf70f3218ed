// SyncRuns: the runs of synchronous OpenAI requests (POST /v1/audio/transcriptions and
// /v1/audio/translations). Their client holds the connection and sends the request again if the
// server dies, so such a run needs no durability: it is never stored (no job row, no fsync, no
// blob), it goes straight to this node's scheduler (never through a shared queue: it runs on the
// node that received it), and a restart has nothing of it to recover.
//
// It is still a job to everything that watches work: the scheduler admits, places and counts it
// like any other (runner streams, queue, /metrics), LiveEvents carries its state, progress and
// segments (stream=true), Get answers for it (GET /v1/jobs/{id}), Cancel stops it (DELETE, a
// streaming client hanging up), and List shows it to the dashboard. The last kRecentKept ended
// runs stay listed (their state, not their result: the result went to the request).
//
// A run: Start registers it, with the owner of its input (the upload's temp file, released once
// the scheduler is done with the run) and submits it (to ChunkedJobs when it wants the run: a
// long recording with VAD, whose chunks' changes come back to OnJob as one job's); the scheduler's
// hook (OnJob) keeps its state; the request waits for it (Wait) and then lets it go (Finish).
//
// One mutex (the runs); OnJob never blocks (the scheduler's worker calls it); no lock is held
// across a scheduler call or an event delivery. Safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"
#include "core/mutex.h"
#include "core/result.h"
#include "sched/runner_backend.h"
#include "sched/scheduler_types.h"
#include "server/chunked_jobs.h"
#include "server/live_events.h"
#include "server/queue_stats.h"
#include "server/runtime_slot.h"

namespace steno::server {

class SyncRuns {
 public:
  static constexpr size_t kRecentKept = 100;

  // `node` names this node in the runs' jobs. Every reference must outlive this object.
  SyncRuns(std::string node, RuntimeSlot& runtime, LiveEvents& live, QueueStats& stats,
           ChunkedJobs& chunked);

  // Registers `job` (id set, pending) and hands it to the scheduler with `input`; `input_owner`
  // is kept until the scheduler's final update for it (the run no longer reads its input). With
  // `keep_result`, the completed run's result is kept for Wait until Finish. `audio_s`: the
  // input's duration, probed by the caller. The scheduler's errors (kUnavailable
  // "shutting_down", ...); nothing stays registered then.
  Status Start(Job job, sched::BlobRef input, std::shared_ptr<void> input_owner, bool keep_result,
               double audio_s) EXCLUDES(mu_);

  // The scheduler's job hook: true when `u` is a run of this object's (handled here: never to be
  // stored). Never blocks.
  bool OnJob(const sched::JobUpdate& u) EXCLUDES(mu_);

  struct Outcome {
    Job job;                // final
    nlohmann::json result;  // completed: the runner's verbose JSON; else null
  };
  // Blocks until run `id` is final, up to `timeout_ms`, or until `stopping`. kNotFound
  // "job_not_found"; kTimeout "timeout"; kUnavailable "shutting_down".
  Result<Outcome> Wait(const std::string& id, int64_t timeout_ms, const std::atomic<bool>& stopping)
      EXCLUDES(mu_);
  // The request of run `id` is over: its result is dropped; the run is forgotten (listed among the
  // recent ones) once the scheduler is done with it.
  void Finish(const std::string& id) EXCLUDES(mu_);

  // The run as the API shows it (running or among the recent ones); nullopt: not a run here.
  std::optional<Job> Get(const std::string& id) const EXCLUDES(mu_);
  // Cancels a run that is not final: it is cancelled at once (its waiter and its stream see it),
  // and the scheduler stops it. nullopt: not a run here; a final run is returned unchanged.
  std::optional<Result<Job>> Cancel(const std::string& id) EXCLUDES(mu_);
  // Runs not final (oldest first), then the recent ended ones (newest first).
  std::vector<Job> List() const EXCLUDES(mu_);

  // Shutdown, once the runtime is stopped: every run the scheduler did not end fails with
  // kUnavailable "shutting_down" (its waiter returns) and its input is released.
  void Abandon() EXCLUDES(mu_);

 private:
  struct Entry {
    Job job;                      // as the API shows it
    std::shared_ptr<void> input;  // released at the scheduler's final update
    nlohmann::json result;        // completed with keep_result: until Finish
    bool keep_result = false;
    bool ended = false;     // the scheduler's final update arrived
    bool finished = false;  // the request let it go (Finish)
  };
  // Moves the entry to the recent runs once both the scheduler and the request are done with it.
  void ForgetIfDone(std::map<std::string, Entry>::iterator it) REQUIRES(mu_);
  void Deliver(const sched::JobUpdate& u, const Job& shown);

  const std::string node_;
  RuntimeSlot& runtime_;
  LiveEvents& live_;
  QueueStats& stats_;
  ChunkedJobs& chunked_;  // hands each run to the scheduler (as chunks where it wants them)

  mutable Mutex mu_;
  CondVar changed_;  // a run became final
  std::map<std::string, Entry> runs_ GUARDED_BY(mu_);
  std::deque<Job> recent_ GUARDED_BY(mu_);  // newest first, at most kRecentKept
};

}  // namespace steno::server
