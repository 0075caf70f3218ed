// ChunkedJobs: long recordings across streams. A job with VAD whose audio is longer than one
// chunk runs as internal sub-jobs that the scheduler places like any job:
//   1. a plan (`<job id>~plan`, ChunkWork::Step::kPlan) on a runner of the job's model decodes
//      the audio once, writes it to <work dir>/<job id>.f32, finds the speech and cuts it into
//      chunks of at most chunk_s seconds at silences (engine/chunk_plan.h);
//   2. one sub-job per chunk (`<job id>~c<N>`, kChunk) transcribes that chunk's speech from the
//      decoded audio, with times in the original audio's timeline. At most `cap` of a job's
//      chunks are queued or running at once, and the next is submitted only when one ends, so
//      work queued meanwhile (a short job) is ahead of the job's remaining chunks: it starts
//      once one chunk's stream is free.
// The job itself (the parent) is never in the scheduler. Its changes are reported through the
// sink as the scheduler's hooks report a job's (pending → loading when its plan is placed →
// processing → completed | failed | cancelled), so the store, metrics and streams treat it like
// any job: its progress counts chunks done; its segments are the chunks' segments, numbered
// from 0 and reported when every earlier chunk is done (so in order); its result is the chunks'
// transcripts merged in order. Sub-jobs are never stored or reported (OnJob takes their
// updates).
// Failures: a sub-job the scheduler retries (runner crash, OOM) runs again alone; one that
// fails for good fails the job with its error, and cancels the other chunks. A cancel (the API's
// DELETE, a sync or streamed client that went away, a lost lease) cancels every sub-job. The
// job's timeout bounds its whole run: each sub-job gets what is left of it when it is submitted
// (none left: the job fails with "timeout"). The decoded audio is deleted when the job ends, in
// any way; the work dir's leftovers (a crash) are deleted at start.
//
// One thread applies every sub-job update and cancel in order and submits the next chunks; the
// hook only queues. One mutex (the queue and the jobs); never held across a scheduler call or
// the sink. Safe from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>

#include "core/job.h"
#include "core/mutex.h"
#include "core/result.h"
#include "sched/scheduler_types.h"
#include "server/runtime_slot.h"

namespace steno::server {

struct ChunkedJobsOptions {
  int cap = 4;           // a job's chunks queued or running at once (--chunk-streams; 1: one)
  double chunk_s = 30;   // the longest chunk
  std::string work_dir;  // the decoded audio of running jobs (<data dir>/chunks)
  int default_timeout_s = 3600;  // a job's timeout when it asks for none
};

class ChunkedJobs {
 public:
  // The parent's changes, in order, on the coordinator's thread (or the caller's of Start and
  // Cancel): must not block.
  using UpdateSink = std::function<void(const sched::JobUpdate&)>;

  // Creates the work dir and deletes what a previous run left there; starts the thread.
  ChunkedJobs(ChunkedJobsOptions options, RuntimeSlot& runtime, UpdateSink sink);
  // Stop() if it was not called.
  ~ChunkedJobs();
  ChunkedJobs(const ChunkedJobs&) = delete;
  ChunkedJobs& operator=(const ChunkedJobs&) = delete;

  // Whether `job` runs chunked: a transcription or translation with VAD (JobParams::vad) of a
  // model of the built-in whisper kind, whose audio is longer than chunk_s. `audio_s`: its
  // duration when the caller probed it already (else `input` is probed here).
  bool Wants(const Job& job, const sched::BlobRef& input, std::optional<double> audio_s);
  // Starts a chunked job (still pending): submits its plan. Errors: the scheduler's Submit's.
  Status Start(const Job& job, const sched::BlobRef& input) EXCLUDES(mu_);
  // The one way the service hands a job to the scheduler: one this Wants starts as chunks
  // (Start), any other is submitted as it is. `audio_s`: the input's duration when the caller
  // probed it already (each input is probed once). Errors: the scheduler's Submit's.
  Status Submit(sched::SubmitRequest r, std::optional<double> audio_s = std::nullopt) EXCLUDES(mu_);
  // The scheduler's job hook, called before the others: true when `u` is a sub-job's (queued
  // for the thread; never stored). Never blocks.
  bool OnJob(const sched::JobUpdate& u) EXCLUDES(mu_);
  // Cancels job `id`'s sub-jobs and reports it cancelled once none runs. Does nothing for a
  // job that is not chunked here.
  void Cancel(const std::string& id) EXCLUDES(mu_);
  // Joins the thread and deletes the decoded audio of the jobs not ended (a shutdown: they go
  // back to the queue and are planned again at the next start). Idempotent.
  void Stop() EXCLUDES(mu_);

 private:
  struct Parent;
  struct CancelRequest {
    std::string id;
  };
  using Item = std::variant<sched::JobUpdate, CancelRequest>;

  void Loop() EXCLUDES(mu_);
  void Apply(const sched::JobUpdate& u) EXCLUDES(mu_);
  void ApplyCancel(const std::string& id) EXCLUDES(mu_);
  // The steps of Apply, on the thread, for the parent named by the sub-job `u`.
  void OnStarted(Parent& p, const sched::JobUpdate& u, int chunk);
  // The job's progress: the share of its chunks done.
  void ReportProgress(Parent& p);
  void OnPlanned(Parent& p, const nlohmann::json& plan);
  void OnChunkDone(Parent& p, int chunk, const nlohmann::json& result);
  void OnFailed(Parent& p, const sched::JobUpdate& u, int chunk);
  // Submits chunks while fewer than cap are outstanding.
  void SubmitChunks(Parent& p);
  Status SubmitSub(Parent& p, const std::string& sub_id, ChunkWork work);
  // Fails (or cancels) the job: cancels the outstanding sub-jobs; reports the end once none
  // is left (Finish).
  void End(Parent& p, JobState state, std::optional<Error> error);
  // Reports the parent's end if it is ending and nothing runs; then forgets it.
  void MaybeFinish(const std::string& id) EXCLUDES(mu_);
  // Deletes the job's decoded audio (and a half-written one).
  void RemoveDecoded(const Parent& p);
  void Report(Parent& p, sched::JobUpdate::Kind kind, nlohmann::json payload = {}, int percent = 0);
  std::shared_ptr<Parent> Find(const std::string& id) const EXCLUDES(mu_);

  const ChunkedJobsOptions options_;
  RuntimeSlot& runtime_;
  const UpdateSink sink_;

  mutable Mutex mu_;
  CondVar cv_;  // an item, or stop
  std::deque<Item> items_ GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Parent>> jobs_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace steno::server
