// LiveEvents: what happens to jobs as it happens, for the streams that watch them (SSE,
// dashboards): each job's state changes, progress and segments, handed to its subscribers in
// order; the segments of running jobs so far (a late subscriber gets them first); and, for the
// dashboard, what the store does not keep (audio length, latest progress).
//
// Events come from the service's writer thread (this node's jobs, after the store has them), from
// the scheduler's thread for runs kept in memory only (sync_runs.h: their first look is read
// from memory, not the store) and, on a shared store, from other nodes (cluster_member.h).
// Subscribe reads the job from the store with no lock held: a subscriber is registered first and
// the events that arrive during the read are held back and shown after it, so none is lost and none
// blocks the writer.
//
// Locks: mu_ (subscribers, segments, stream times), then each subscriber's own (held while its
// callback runs). info_mu_ is never held with another.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/job.h"
#include "core/mutex.h"
#include "core/result.h"
#include "sched/scheduler_types.h"
#include "store/job_store.h"

namespace steno::server {

// One thing that happened to a job, as SSE streams it.
struct JobEvent {
  enum class Kind { kState, kProgress, kSegment };
  Kind kind = Kind::kState;
  Job job;                 // the job as of this event
  int percent = 0;         // kProgress
  nlohmann::json segment;  // kSegment
};

// The event a scheduler update `u` is, showing the job as `shown` (the update's own job, or what
// its owner keeps of it).
JobEvent JobEventOf(const sched::JobUpdate& u, Job shown);

// What the store does not keep about a job, for the dashboard: the length of its audio (probed
// when it was submitted to this process) and its latest progress.
struct LiveInfo {
  std::optional<double> audio_seconds;
  std::optional<int> percent;
};

// An event as it travels between nodes: {"id", "kind": state | progress | segment, "state" and
// "attempt" | "percent" | "segment"}.
nlohmann::json JobEventJson(const JobEvent& ev);

class LiveEvents {
 public:
  // Jobs that live in memory only (synchronous requests' runs, sync_runs.h): the job as it is
  // now, or nullopt for one that is not such a job (it is read from the store then).
  using MemoryJobs = std::function<std::optional<Job>(const std::string& id)>;
  // `jobs` must outlive this object; `memory` may be empty.
  explicit LiveEvents(store::JobStore& jobs, MemoryJobs memory = {});
  ~LiveEvents();

  // Calls `fn` for every later event of the job, in order: first (before Subscribe returns, on
  // the caller's thread) with the job's current state and the segments it already produced, then
  // on the thread that delivers events. `fn` must not block (hand the event to your own queue)
  // and returns false to stop. The subscription ends after the final state's event or when the
  // returned handle is reset (the handle may outlive this object). kNotFound for an unknown job.
  using Subscription = std::shared_ptr<void>;
  Result<Subscription> Subscribe(const std::string& id, std::function<bool(const JobEvent&)> fn)
      EXCLUDES(mu_, info_mu_);

  // Hands `ev` to the job's subscribers; a final state ends them. Events of one job must be
  // delivered in order, from one thread at a time.
  void Deliver(const JobEvent& ev) EXCLUDES(mu_, info_mu_);

  // Kept for the last kLiveKept jobs submitted or run here; a job not among them has neither.
  static constexpr size_t kLiveKept = 2000;
  std::map<std::string, LiveInfo> Live(const std::vector<std::string>& ids) const
      EXCLUDES(info_mu_);
  void NoteAudio(const std::string& id, double seconds) EXCLUDES(info_mu_);

  // Streams of jobs running on other nodes (shared store). TouchStream: an event of the job
  // arrived; returns whether anyone here watches it. QuietStreams: the watched jobs that heard
  // nothing for `quiet_ms` (their state should be read again).
  bool TouchStream(const std::string& id) EXCLUDES(mu_);
  std::vector<std::string> QuietStreams(int64_t quiet_ms) const EXCLUDES(mu_);

 private:
  struct Subscriber;
  // Removes one registration (a subscribe that failed or ended at its first look).
  void Forget(const std::string& id, const Subscriber* sub) EXCLUDES(mu_);
  template <class F>
  void UpdateInfo(const std::string& id, F update) EXCLUDES(info_mu_);

  store::JobStore& jobs_;
  const MemoryJobs memory_;

  mutable Mutex mu_;
  std::map<std::string, std::vector<nlohmann::json>> segments_ GUARDED_BY(mu_);
  std::multimap<std::string, std::shared_ptr<Subscriber>> subscribers_ GUARDED_BY(mu_);
  // When a watched job's last event arrived (steady ms).
  std::map<std::string, int64_t> stream_seen_ GUARDED_BY(mu_);

  mutable Mutex info_mu_;
  std::map<std::string, LiveInfo> info_ GUARDED_BY(info_mu_);
  std::deque<std::string> info_order_ GUARDED_BY(info_mu_);  // oldest first
};

}  // namespace steno::server
