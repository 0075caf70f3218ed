#include "sched/job_queue.h"

#include <algorithm>

namespace steno::sched {

int RetryAfterSeconds(size_t queued, int64_t mean_job_ms, int slots) {
  const int64_t per_slot =
      static_cast<int64_t>(queued) * std::max<int64_t>(0, mean_job_ms) / std::max(1, slots);
  const int64_t s = (per_slot + 999) / 1000;
  return static_cast<int>(std::clamp<int64_t>(s, 1, 300));
}

JobQueue::JobQueue(QueueConfig config) : config_(config) {
  config_.aging_step_ms = std::max<int64_t>(1, config_.aging_step_ms);
}

Status JobQueue::Push(const QueuedJob& job) {
  if (by_id_.count(job.id)) {
    return Error{ErrorKind::kBadInput, "duplicate_job", "job " + job.id + " is already queued"};
  }
  if (by_id_.size() >= config_.max_length) {
    return Error{ErrorKind::kUnavailable, "queue_full",
                 "the queue holds " + std::to_string(by_id_.size()) + " jobs; retry after " +
                     std::to_string(retry_after_s(std::max(1, config_.max_running))) + " s"};
  }
  const int level = static_cast<int>(job.priority);
  const Key key{job.enqueued_ms + level * config_.aging_step_ms, next_seq_++};
  order_.emplace(key, job);
  by_id_.emplace(job.id, key);
  return {};
}

bool JobQueue::Remove(const std::string& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  order_.erase(it->second);
  by_id_.erase(it);
  return true;
}

void JobQueue::RecordJobDuration(int64_t ms) {
  ++finished_jobs_;
  finished_ms_ += std::max<int64_t>(0, ms);
}

int JobQueue::retry_after_s(int slots) const {
  const int64_t mean = finished_jobs_ > 0 ? finished_ms_ / finished_jobs_ : config_.default_job_ms;
  return RetryAfterSeconds(by_id_.size(), mean, slots);
}

std::vector<QueuedJob> JobQueue::Candidates(int64_t now_ms, const RunningCounts& running,
                                            size_t limit) const {
  std::vector<QueuedJob> out;
  int total = running.total;
  std::map<std::string, int> per_model = running.per_model;
  for (const auto& [key, job] : order_) {
    if (config_.max_running > 0 && total >= config_.max_running) break;
    if (limit > 0 && out.size() >= limit) break;
    if (job.not_before_ms > now_ms) continue;
    int& model_running = per_model[job.model];
    if (config_.max_running_per_model > 0 && model_running >= config_.max_running_per_model) {
      continue;
    }
    ++model_running;
    ++total;
    out.push_back(job);
  }
  return out;
}

std::vector<QueuedJob> JobQueue::Ordered() const {
  std::vector<QueuedJob> out;
  out.reserve(order_.size());
  for (const auto& [key, job] : order_) out.push_back(job);
  return out;
}

double JobQueue::EffectiveRank(const QueuedJob& job, int64_t now_ms) const {
  return static_cast<int>(job.priority) -
         static_cast<double>(now_ms - job.enqueued_ms) / static_cast<double>(config_.aging_step_ms);
}

}  // namespace steno::sched
