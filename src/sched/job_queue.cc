#include "sched/job_queue.h"

#include <algorithm>

namespace steno::sched {

int RetryAfterSeconds(size_t queued, int64_t mean_job_ms, int slots) {
  const int64_t per_slot =
      static_cast<int64_t>(queued) * std::max<int64_t>(0, mean_job_ms) / std::max(1, slots);
  const int64_t s = (per_slot + 999) / 1000;
  return static_cast<int>(std::clamp<int64_t>(s, 1, 300));
}

std::string QueueGroupOf(const QueuedJob& job) {
  std::string g = job.model;
  g += '\x1f';
  g += job.device;
  return g;
}

JobQueue::JobQueue(QueueConfig config) : config_(config) {
  config_.aging_step_ms = std::max<int64_t>(1, config_.aging_step_ms);
}

Status JobQueue::Push(const QueuedJob& job) {
  if (by_id_.count(job.id)) {
    return Error{ErrorKind::kBadInput, "duplicate_job", "job " + job.id + " is already queued"};
  }
  if (by_id_.size() >= config_.max_length) {
    const int retry_after = retry_after_s(std::max(1, config_.max_running));
    return Error{ErrorKind::kUnavailable, "queue_full",
                 "the queue holds " + std::to_string(by_id_.size()) + " jobs; retry after " +
                     std::to_string(retry_after) + " s",
                 retry_after};
  }
  const int level = static_cast<int>(job.priority);
  const Key key{job.enqueued_ms + level * config_.aging_step_ms, next_seq_++};
  const QueuedJob& stored = order_.emplace(key, job).first->second;
  const bool delayed = job.not_before_ms > promoted_until_;
  by_id_.emplace(job.id, Loc{key, delayed});
  if (delayed) {
    delayed_.emplace(job.not_before_ms, key);
  } else {
    AddToGroup(key, stored);
  }
  ++by_priority_[static_cast<size_t>(level)];
  return {};
}

bool JobQueue::Remove(const std::string& id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  const Key key = it->second.key;
  auto job = order_.find(key);
  if (it->second.delayed) {
    auto range = delayed_.equal_range(job->second.not_before_ms);
    for (auto d = range.first; d != range.second; ++d) {
      if (d->second.seq == key.seq) {
        delayed_.erase(d);
        break;
      }
    }
  } else {
    RemoveFromGroup(key, job->second);
  }
  --by_priority_[static_cast<size_t>(job->second.priority)];
  order_.erase(job);
  by_id_.erase(it);
  return true;
}

void JobQueue::AddToGroup(const Key& key, const QueuedJob& job) {
  auto [g, inserted] = groups_.try_emplace(QueueGroupOf(job));
  auto& members = g->second;
  if (!members.empty()) {
    const Key& head = members.begin()->first;
    if (key < head) {
      heads_.erase({head, &g->first});
      heads_.insert({key, &g->first});
    }
  } else {
    heads_.insert({key, &g->first});
  }
  members.emplace(key, &job);
}

void JobQueue::RemoveFromGroup(const Key& key, const QueuedJob& job) {
  auto g = groups_.find(QueueGroupOf(job));
  if (g == groups_.end()) return;
  auto& members = g->second;
  const bool was_head =
      !members.empty() && !(members.begin()->first < key) && !(key < members.begin()->first);
  members.erase(key);
  if (!was_head) return;
  heads_.erase({key, &g->first});
  if (members.empty()) {
    groups_.erase(g);
  } else {
    heads_.insert({members.begin()->first, &g->first});
  }
}

void JobQueue::PromoteDue(int64_t now_ms) {
  promoted_until_ = std::max(promoted_until_, now_ms);
  while (!delayed_.empty() && delayed_.begin()->first <= promoted_until_) {
    const Key key = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    const QueuedJob& job = order_.at(key);
    by_id_.at(job.id).delayed = false;
    AddToGroup(key, job);
  }
}

const QueuedJob* JobQueue::Best(const std::unordered_set<std::string>& skipped,
                                std::string* group) const {
  for (const auto& [key, name] : heads_) {
    if (skipped.count(*name)) continue;
    if (group) *group = *name;
    return groups_.at(*name).begin()->second;
  }
  return nullptr;
}

std::vector<const QueuedJob*> JobQueue::GroupHeads() const {
  std::vector<const QueuedJob*> out;
  out.reserve(heads_.size());
  for (const auto& [key, name] : heads_) out.push_back(groups_.at(*name).begin()->second);
  return out;
}

size_t JobQueue::GroupSize(const std::string& group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? 0 : it->second.size();
}

std::optional<int64_t> JobQueue::NextDue() const {
  if (delayed_.empty()) return std::nullopt;
  return delayed_.begin()->first;
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

void JobQueue::SetLimits(size_t max_length, int max_running, int max_running_per_model) {
  config_.max_length = max_length;
  config_.max_running = max_running;
  config_.max_running_per_model = max_running_per_model;
}

}  // namespace steno::sched
