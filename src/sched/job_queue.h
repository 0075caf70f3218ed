// The pending jobs in the order the scheduler should try them, with aging, a bounded length and
// running-job limits. Pure bookkeeping over injected times: no clock, no threads.
//
// Aging: a job's rank is its priority level (high 0, normal 1, low 2) minus the time it has
// waited in units of `aging_step_ms`. Ranks of queued jobs all fall at the same rate, so the order
// is fixed at push time: key = enqueued_ms + level × aging_step_ms, ties by arrival. A low job
// is therefore never passed by a high job that arrived more than 2 × aging_step_ms after it, so
// a flood of high work cannot starve it.
//
// The scheduler's pass does not walk every queued job: jobs are kept in groups that placement
// treats alike (same model, same requested device), and a pass takes Best() of the groups not yet
// skipped, again and again. When a group's best job cannot be placed, no other job of the group
// can be in that pass either (placement depends on the group, the priority only ranks devices),
// so the scheduler skips the whole group. A job waiting for memory therefore never blocks a job
// of another model whose model is loaded, and a pass costs O(groups × started jobs), not
// O(queued jobs). Jobs in retry backoff wait outside the groups until PromoteDue() reaches them.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/job.h"
#include "core/result.h"

namespace steno::sched {

// QueueConfig::max_length for a queue that refuses nothing: its owner bounds what it admits (a
// JobService counts the jobs of its store, a restart's pending ones included).
inline constexpr size_t kUnboundedQueue = std::numeric_limits<size_t>::max();

struct QueueConfig {
  size_t max_length = 10'000;       // pending jobs; a push beyond it is rejected
  int max_running = 0;              // running jobs over all models (0: no limit)
  int max_running_per_model = 0;    // running jobs of one model (0: no limit)
  int64_t aging_step_ms = 60'000;   // waiting this long gains one priority level
  int64_t default_job_ms = 30'000;  // for the retry-after hint before any job finished
};

struct QueuedJob {
  std::string id;
  std::string model;
  Priority priority = Priority::kNormal;
  int64_t enqueued_ms = 0;
  int64_t not_before_ms = 0;  // retry backoff: not a candidate before this time
  std::string device;         // the requested device ("" = any): part of the job's group
};

// The group a job belongs to: jobs of one group are interchangeable for placement.
std::string QueueGroupOf(const QueuedJob& job);

// Running jobs, as the scheduler counts them.
struct RunningCounts {
  int total = 0;
  std::map<std::string, int> per_model;
};

// Seconds a rejected client should wait: the time to drain the queue at the current rate,
// `queued` jobs of `mean_job_ms` each over `slots` parallel slots, clamped to [1, 300].
int RetryAfterSeconds(size_t queued, int64_t mean_job_ms, int slots);

class JobQueue {
 public:
  explicit JobQueue(QueueConfig config = {});

  // Adds a job. A full queue gives kUnavailable "queue_full" with the hint in Error::retry_after_s
  // (retry_after_s() gives it too). A duplicate id is kBadInput "duplicate_job".
  Status Push(const QueuedJob& job);
  // Removes a job (cancelled, or taken to start). False if it is not queued.
  bool Remove(const std::string& id);
  bool Contains(const std::string& id) const { return by_id_.count(id) > 0; }
  size_t size() const { return by_id_.size(); }

  // The hint for a rejection now, from the mean duration of finished jobs (RecordJobDuration).
  int retry_after_s(int slots) const;
  void RecordJobDuration(int64_t ms);
  // New limits (a config reload); jobs already queued stay even if now over max_length.
  void SetLimits(size_t max_length, int max_running, int max_running_per_model);

  // Jobs that may start now, best first: not before their backoff, and within the global and
  // per-model limits given what is `running`. At most `limit` jobs (0: all). Each per-model limit
  // is applied as if every earlier candidate started, so taking them in order never exceeds it.
  std::vector<QueuedJob> Candidates(int64_t now_ms, const RunningCounts& running,
                                    size_t limit = 0) const;

  // Every queued job in order, for snapshots.
  std::vector<QueuedJob> Ordered() const;
  // Queued jobs per priority (index: static_cast<int>(Priority)).
  const std::array<size_t, 3>& size_by_priority() const { return by_priority_; }

  // The grouped pass. PromoteDue makes jobs whose backoff ended by `now_ms` candidates (once per
  // pass, before Best). Best gives the first candidate in queue order whose group is not in
  // `skipped` (nullptr: none); the pointer is valid until the queue changes. `group` receives
  // its group. Cost: O(log n) per promotion, O(|skipped| + 1) per call.
  void PromoteDue(int64_t now_ms);
  const QueuedJob* Best(const std::unordered_set<std::string>& skipped, std::string* group) const;
  // The first candidate of each group, in queue order (for starvation checks).
  std::vector<const QueuedJob*> GroupHeads() const;
  // The candidates in `group` (QueueGroupOf): those that could start now.
  size_t GroupSize(const std::string& group) const;
  // When the earliest job in backoff becomes a candidate.
  std::optional<int64_t> NextDue() const;

  // The aged rank at `now_ms` (smaller runs first): level − waited / aging_step.
  double EffectiveRank(const QueuedJob& job, int64_t now_ms) const;

 private:
  struct Key {
    int64_t order;  // enqueued_ms + level × aging_step_ms
    uint64_t seq;   // arrival
    bool operator<(const Key& o) const { return order != o.order ? order < o.order : seq < o.seq; }
  };
  struct Loc {
    Key key;
    bool delayed;  // in backoff: not in a group yet
  };
  void AddToGroup(const Key& key, const QueuedJob& job);
  void RemoveFromGroup(const Key& key, const QueuedJob& job);

  QueueConfig config_;
  uint64_t next_seq_ = 0;
  std::map<Key, QueuedJob> order_;  // every queued job
  std::unordered_map<std::string, Loc> by_id_;
  std::map<std::string, std::map<Key, const QueuedJob*>> groups_;  // candidates, by group
  std::set<std::pair<Key, const std::string*>> heads_;  // each group's first: (key, group name)
  std::multimap<int64_t, Key> delayed_;                 // jobs in backoff, by not_before_ms
  int64_t promoted_until_ = 0;
  std::array<size_t, 3> by_priority_{};
  int64_t finished_jobs_ = 0;
  int64_t finished_ms_ = 0;
};

}  // namespace steno::sched
