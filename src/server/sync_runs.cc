#include "server/sync_runs.h"

#include <algorithm>
#include <chrono>

#include "core/wall_clock.h"

namespace steno::server {
namespace {

Error ShuttingDown() {
  return Error(ErrorKind::kUnavailable, "shutting_down", "the server is shutting down");
}

Error NotFound(const std::string& id) {
  return Error(ErrorKind::kNotFound, "job_not_found", "no job " + id);
}

}  // namespace

SyncRuns::SyncRuns(std::string node, RuntimeSlot& runtime, LiveEvents& live, QueueStats& stats,
                   ChunkedJobs& chunked)
    : node_(std::move(node)), runtime_(runtime), live_(live), stats_(stats), chunked_(chunked) {}

Status SyncRuns::Start(Job job, sched::BlobRef input, std::shared_ptr<void> input_owner,
                       bool keep_result, double audio_s) {
  const std::string id = job.id;
  {
    MutexLock lock(mu_);
    Entry& e = runs_[id];
    e.job = job;
    e.input = std::move(input_owner);
    e.keep_result = keep_result;
    e.finished = !keep_result;  // nobody will wait for it: forgotten once it ends
  }
  stats_.Entered();
  sched::SubmitRequest r;
  r.job = std::move(job);
  r.input = std::move(input);
  // A run made of chunks reports its changes to OnJob as one job's.
  auto st = chunked_.Submit(std::move(r), audio_s);
  if (!st) {
    stats_.Left();
    std::shared_ptr<void> release;  // released after the lock
    MutexLock lock(mu_);
    if (auto it = runs_.find(id); it != runs_.end()) {
      release = std::move(it->second.input);
      runs_.erase(it);
    }
  }
  return st;
}

bool SyncRuns::OnJob(const sched::JobUpdate& u) {
  std::shared_ptr<void> release;  // the input, once the scheduler is done with it
  Job shown;
  bool deliver = true;
  {
    MutexLock lock(mu_);
    auto it = runs_.find(u.job.id);
    if (it == runs_.end()) return false;
    Entry& e = it->second;
    if (e.ended) return true;  // abandoned at shutdown
    const bool cancelled = e.job.state == JobState::kCancelled;
    const bool final_update = u.kind == sched::JobUpdate::Kind::kState && IsFinal(u.job.state);
    if (u.kind == sched::JobUpdate::Kind::kState && !cancelled) {
      e.job = u.job;
      e.job.node = node_;
    }
    // A cancelled run shows no more progress; only the scheduler's end is still passed on (it
    // ends the run's event streams for good).
    deliver = !cancelled || final_update;
    if (final_update) {
      e.ended = true;
      release = std::move(e.input);
      stats_.Left();
      if (!cancelled && u.job.state == JobState::kCompleted) {
        if (u.job.finished_ms > u.job.started_ms && u.job.started_ms > 0) {
          stats_.ObserveRun(u.job.finished_ms - u.job.started_ms);
        }
        if (e.keep_result && !e.finished) e.result = u.payload;
      }
      changed_.SignalAll();
    }
    shown = e.job;
    if (final_update) ForgetIfDone(it);
  }
  if (deliver) Deliver(u, shown);
  return true;
}

void SyncRuns::Deliver(const sched::JobUpdate& u, const Job& shown) {
  live_.Deliver(JobEventOf(u, shown));
}

void SyncRuns::ForgetIfDone(std::map<std::string, Entry>::iterator it) {
  const Entry& e = it->second;
  if (!e.ended || !e.finished) return;
  recent_.push_front(e.job);
  if (recent_.size() > kRecentKept) recent_.pop_back();
  runs_.erase(it);
}

Result<SyncRuns::Outcome> SyncRuns::Wait(const std::string& id, int64_t timeout_ms,
                                         const std::atomic<bool>& stopping) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(std::max<int64_t>(0, timeout_ms));
  MutexLock lock(mu_);
  for (;;) {
    auto it = runs_.find(id);
    if (it == runs_.end()) return NotFound(id);
    Entry& e = it->second;
    if (IsFinal(e.job.state)) {
      Outcome out{e.job, std::move(e.result)};
      e.result = nullptr;
      return out;
    }
    if (stopping) return ShuttingDown();
    if (std::chrono::steady_clock::now() >= deadline) {
      return Error(ErrorKind::kTimeout, "timeout", "job " + id + " did not finish in time");
    }
    // Wakes at least every 200 ms to notice `stopping`.
    changed_.WaitUntil(
        mu_, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200)));
  }
}

void SyncRuns::Finish(const std::string& id) {
  MutexLock lock(mu_);
  auto it = runs_.find(id);
  if (it == runs_.end()) return;
  it->second.finished = true;
  it->second.result = nullptr;
  ForgetIfDone(it);
}

std::optional<Job> SyncRuns::Get(const std::string& id) const {
  MutexLock lock(mu_);
  if (auto it = runs_.find(id); it != runs_.end()) return it->second.job;
  for (const Job& j : recent_) {
    if (j.id == id) return j;
  }
  return std::nullopt;
}

std::optional<Result<Job>> SyncRuns::Cancel(const std::string& id) {
  Job shown;
  {
    MutexLock lock(mu_);
    auto it = runs_.find(id);
    if (it == runs_.end()) {
      for (const Job& j : recent_) {
        if (j.id == id) return Result<Job>(j);  // ended: unchanged
      }
      return std::nullopt;
    }
    Job& j = it->second.job;
    if (IsFinal(j.state)) return Result<Job>(j);
    j.state = JobState::kCancelled;
    j.finished_ms = j.updated_ms = UnixMillis();
    shown = j;
    changed_.SignalAll();
  }
  // The scheduler may have ended it meanwhile (its final update then finds it cancelled); fine.
  (void)runtime_.With([&](Runtime& rt) { return rt.scheduler().Cancel(id); }, Status());
  chunked_.Cancel(id);  // every chunk of a run made of chunks
  JobEvent ev;
  ev.job = shown;
  live_.Deliver(ev);
  return Result<Job>(shown);
}

std::vector<Job> SyncRuns::List() const {
  std::vector<Job> active, ended;
  {
    MutexLock lock(mu_);
    for (const auto& [id, e] : runs_) (IsFinal(e.job.state) ? ended : active).push_back(e.job);
    ended.insert(ended.end(), recent_.begin(), recent_.end());
  }
  auto older = [](const Job& a, const Job& b) { return a.created_ms < b.created_ms; };
  std::stable_sort(active.begin(), active.end(), older);
  std::stable_sort(ended.begin(), ended.end(),
                   [&](const Job& a, const Job& b) { return older(b, a); });
  active.insert(active.end(), ended.begin(), ended.end());
  return active;
}

void SyncRuns::Abandon() {
  std::vector<std::shared_ptr<void>> release;
  MutexLock lock(mu_);
  for (auto it = runs_.begin(); it != runs_.end();) {
    auto next = std::next(it);
    Entry& e = it->second;
    if (!e.ended) {
      e.ended = true;
      release.push_back(std::move(e.input));
      stats_.Left();
      if (!IsFinal(e.job.state)) {
        e.job.state = JobState::kFailed;
        e.job.error = ShuttingDown();
        e.job.finished_ms = e.job.updated_ms = UnixMillis();
      }
      ForgetIfDone(it);
    }
    it = next;
  }
  changed_.SignalAll();
}

}  // namespace steno::server
