#include "server/proxy_holds.h"

#include <algorithm>
#include <chrono>

#include "core/wall_clock.h"
#include "server/job_params_check.h"

namespace steno::server {
namespace {

Error ShuttingDown() {
  return Error(ErrorKind::kUnavailable, "shutting_down", "the server is shutting down");
}

}  // namespace

ProxyHolds::ProxyHolds(RuntimeSlot& runtime) : runtime_(runtime) {}

bool ProxyHolds::OnJob(const sched::JobUpdate& u) {
  if (u.job.params.task != kProxyTask) return false;
  {
    MutexLock lock(mu_);
    auto it = holds_.find(u.job.id);
    if (it == holds_.end()) return true;  // released and confirmed already
    Entry& e = it->second;
    if (u.kind == sched::JobUpdate::Kind::kSegment && u.payload.is_object()) {
      e.endpoint = u.payload.value("endpoint", "");
    } else if (u.kind == sched::JobUpdate::Kind::kState && IsFinal(u.job.state)) {
      if (e.released) {
        holds_.erase(it);  // its stream is free: nothing waits for it
        return true;
      }
      e.ended = true;
      if (u.job.state == JobState::kFailed) {
        e.failed = u.job.error.value_or(
            Error(ErrorKind::kInternal, "proxy_failed", "the server's stream could not be held"));
      } else if (e.endpoint.empty()) {
        e.failed = Error(ErrorKind::kCancelled, "cancelled", "the request was cancelled");
      }
    } else if (u.kind == sched::JobUpdate::Kind::kState && u.job.state == JobState::kPending &&
               u.job.error) {
      e.endpoint.clear();  // its runner was lost: it waits for a fresh one
    }
  }
  changed_.SignalAll();
  return true;
}

Result<ProxyHolds::Hold> ProxyHolds::Acquire(const ProxyRequest& request, int64_t timeout_ms,
                                             const std::atomic<bool>& stopping) {
  Hold hold;
  hold.id = "proxy-" + std::to_string(next_++);
  sched::SubmitRequest r;
  r.job.id = hold.id;
  r.job.model = request.model;
  r.job.priority = request.priority;
  r.job.params.task = kProxyTask;
  r.job.params.device = request.device;
  r.job.params.keep_alive_s = request.keep_alive_s;
  // The request's own read and write timeouts bound it; the scheduler's backstop (which kills
  // the runner) must not cut a long stream.
  r.job.params.timeout_s = kMaxJobTimeoutS;
  r.job.created_ms = UnixMillis();
  {
    MutexLock lock(mu_);
    holds_[hold.id] = Entry{};
  }
  auto st = runtime_.With([&](Runtime& rt) { return rt.scheduler().Submit(std::move(r)); },
                          Status(ShuttingDown()));
  if (!st) {
    MutexLock lock(mu_);
    holds_.erase(hold.id);
    return st.error();
  }
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(std::max<int64_t>(0, timeout_ms));
  std::optional<Error> error;
  {
    MutexLock lock(mu_);
    for (;;) {
      Entry& e = holds_[hold.id];
      if (!e.endpoint.empty()) {
        hold.endpoint = e.endpoint;
        return hold;
      }
      if (e.ended) {
        error = e.failed.value_or(Error(ErrorKind::kInternal, "proxy_failed", "no endpoint"));
        holds_.erase(hold.id);
        return *error;
      }
      if (stopping) {
        error = ShuttingDown();
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        error = Error(ErrorKind::kTimeout, "timeout",
                      "the server of " + request.model + " did not take the request in time");
        break;
      }
      // Wakes at least every 200 ms to notice `stopping`.
      changed_.WaitUntil(mu_, std::min(deadline, std::chrono::steady_clock::now() +
                                                     std::chrono::milliseconds(200)));
    }
  }
  Release(hold.id);
  return *error;
}

void ProxyHolds::Release(const std::string& id) {
  {
    MutexLock lock(mu_);
    auto it = holds_.find(id);
    if (it == holds_.end()) return;
    if (it->second.ended) {
      holds_.erase(it);
      return;
    }
    // The entry stays until the scheduler's final update (OnJob) says the stream is free.
    it->second.released = true;
  }
  auto st = runtime_.With([&](Runtime& rt) { return rt.scheduler().Cancel(id); }, Status());
  if (!st) {
    // The scheduler no longer has it (it ended meanwhile, or the runtime is gone): no final
    // update will come for it.
    MutexLock lock(mu_);
    holds_.erase(id);
  }
}

size_t ProxyHolds::Count() const {
  MutexLock lock(mu_);
  return holds_.size();
}

}  // namespace steno::server
