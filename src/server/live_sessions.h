// LiveSessions: the jobs of live transcription sessions (OpenAI Realtime transcription over
// WebSocket, api/realtime_service.h; the contract with runners is core/live_items.h).
//
// A session is one job kept in memory like a synchronous request's run (server/sync_runs.h): no
// store row, no blob, never on a shared queue (it runs on the node its client is connected to),
// and nothing of it survives a restart. It is still a job to everything that counts work: the
// scheduler admits it (the ledger, one stream of its model's runner) and it holds that stream
// until it ends; /metrics and the runner counts see it (ServiceMetrics::OnJob runs before
// OnJob here). Its params carry `live` (the session's settings) and no timeout: a session lasts
// as long as its client keeps it (the API closes idle ones).
//
// A session: Start registers and submits its job and names a listener; the scheduler's hook
// (OnJob) tells the listener when the job is admitted (processing on a runner), each live::Event
// the runner sends, and the job's end. Feed hands the runner live::Inputs once admitted (input
// fed before is dropped by the scheduler: the API buffers it until kAdmitted). Cancel ends it (a
// client gone); its end still comes through the listener.
//
// Listeners are called on the scheduler's worker thread (or the caller's, for Abandon) with no
// lock held: they must not block or call back into this object synchronously. One mutex (the
// sessions); no lock is held across a scheduler call or a listener call. Safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/job.h"
#include "core/live_items.h"
#include "core/mutex.h"
#include "core/result.h"
#include "sched/scheduler_types.h"
#include "server/queue_stats.h"
#include "server/runtime_slot.h"

namespace steno::server {

struct LiveUpdate {
  enum class Kind {
    kAdmitted,  // the job is processing on runner_id (device): Feed from now on
    kEvent,     // the runner's `event`
    kEnded,     // the job is final: `job` (its state and error) says how
  };
  Kind kind = Kind::kEvent;
  int64_t runner_id = -1;
  std::string device;
  live::Event event;
  Job job;
};
using LiveListener = std::function<void(const LiveUpdate&)>;

// A session as /v1/runners, /metrics and the dashboard show it.
struct LiveSessionInfo {
  std::string id;  // its job's id
  std::string model;
  JobState state = JobState::kPending;  // pending/loading: waiting for a stream; processing
  int64_t runner_id = -1;               // while processing
  std::string device;
  int64_t created_ms = 0;   // Unix ms
  int64_t admitted_ms = 0;  // 0: not yet
  int64_t audio_ms = 0;     // audio fed to its runner so far
  int64_t completed = 0;    // utterances transcribed (kCompleted events)
};

class LiveSessions {
 public:
  // `node` names this node in the sessions' jobs. Every reference must outlive this object.
  LiveSessions(std::string node, RuntimeSlot& runtime, QueueStats& stats);

  // Submits a session's job for `model` with `settings`; `listener` hears of it until its
  // kEnded. Returns the job (id set, pending). Errors: kUnavailable "shutting_down" (Abandon or
  // StopAdmitting ran), and the scheduler's (kNotFound for an unknown model, ...); nothing stays
  // registered then and the listener is never called.
  Result<Job> Start(const std::string& model, const live::Settings& settings, LiveListener listener)
      EXCLUDES(mu_);

  // The scheduler's job hook: true when `u` is a session's (handled here). Never blocks.
  bool OnJob(const sched::JobUpdate& u) EXCLUDES(mu_);

  // Hands `input` to session `id`'s runner (Scheduler::Feed; in order). Ignored for a session
  // that is not admitted or has ended.
  void Feed(const std::string& id, const live::Input& input) EXCLUDES(mu_);
  // Cancels session `id`'s job (its kEnded follows, cancelled). Unknown ids are ignored.
  void Cancel(const std::string& id) EXCLUDES(mu_);

  // Sessions not ended, oldest first.
  std::vector<LiveSessionInfo> List() const EXCLUDES(mu_);
  // Sessions processing per runner id.
  std::map<int64_t, int> PerRunner() const EXCLUDES(mu_);
  // An error a session's client was sent (the OpenAI error event's code), for /metrics.
  void NoteError(const std::string& code) EXCLUDES(mu_);
  // Prometheus lines: steno_realtime_sessions{model,state,runner} (gauge),
  // steno_realtime_sessions_started_total, steno_realtime_errors_total{code}.
  std::string RenderPrometheus() const EXCLUDES(mu_);

  // Shutdown starts: Start refuses from now on and every session's job is cancelled (its
  // listener hears kEnded; the API closes the WebSocket).
  void StopAdmitting() EXCLUDES(mu_);
  // Shutdown, once the runtime is stopped: every session the scheduler did not end ends failed
  // with kUnavailable "shutting_down" (its listener hears kEnded).
  void Abandon() EXCLUDES(mu_);

 private:
  struct Entry {
    Job job;
    LiveListener listener;
    LiveSessionInfo info;
  };

  const std::string node_;
  RuntimeSlot& runtime_;
  QueueStats& stats_;
  std::atomic<bool> admitting_{true};

  mutable Mutex mu_;
  std::map<std::string, Entry> sessions_ GUARDED_BY(mu_);
  int64_t started_total_ GUARDED_BY(mu_) = 0;
  std::map<std::string, int64_t> errors_ GUARDED_BY(mu_);  // by code
};

}  // namespace steno::server
