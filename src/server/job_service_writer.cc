// JobService's writer: the scheduler's changes, in order, made durable under this node's lease
// and then shown to subscribers (here and, on a shared store, on every node).
#include "server/job_service_impl.h"

#include "core/log.h"
#include "core/wall_clock.h"

namespace steno::server {

void JobService::Impl::Enqueue(WriteItem item) {
  {
    std::lock_guard<std::mutex> lock(mu);
    writes.push_back(std::move(item));
  }
  cv.notify_one();
}

void JobService::Impl::WriterLoop() {
  std::unique_lock<std::mutex> lock(mu);
  while (true) {
    cv.wait(lock, [&] { return stop || !writes.empty(); });
    if (writes.empty()) break;  // stop, and everything written
    WriteItem item = std::move(writes.front());
    writes.pop_front();
    lock.unlock();
    if (auto* u = std::get_if<sched::JobUpdate>(&item)) {
      bool discard_now;
      {
        std::lock_guard<std::mutex> l(runtime_mu);
        discard_now = discard;
      }
      if (!discard_now) Apply(*u);
    } else {
      const auto& f = std::get<sched::FootprintUpdate>(item);
      if (auto st =
              jobs->PutFootprint({f.model, f.device_name, f.weights_bytes, f.stream_bytes, 0});
          !st) {
        spdlog::warn("could not store footprint of {}: {}", f.model, st.error().message);
      }
    }
    lock.lock();
  }
}

void JobService::Impl::CancelRun(const std::string& id, bool drop) {
  if (drop) {
    std::lock_guard<std::mutex> l(held_mu);
    held.erase(id);
    dropped.insert(id);
  }
  std::lock_guard<std::mutex> l(runtime_mu);
  if (runtime && !discard) runtime->scheduler().Post(sched::event::Cancel{id, [](Status) {}});
}

bool JobService::Impl::TakeDropped(const sched::JobUpdate& u) {
  std::lock_guard<std::mutex> l(held_mu);
  auto it = dropped.find(u.job.id);
  if (it == dropped.end()) return false;
  if (u.kind == sched::JobUpdate::Kind::kState &&
      (IsFinal(u.job.state) || u.job.state == JobState::kPending)) {
    dropped.erase(it);
  }
  return true;
}

void JobService::Impl::Apply(const sched::JobUpdate& u) {
  const Job& j = u.job;
  const std::string& owner = options.node;
  if (TakeDropped(u)) {
    if (IsFinal(j.state)) --in_scheduler;
    std::lock_guard<std::mutex> lock(mu);
    final_cv.notify_all();
    return;
  }
  Status st;
  if (u.kind == sched::JobUpdate::Kind::kState) {
    switch (j.state) {
      case JobState::kLoading: {
        {
          std::lock_guard<std::mutex> l(held_mu);
          if (preclaimed.erase(j.id) > 0) break;  // the claim loop claimed it
        }
        store::ClaimRequest claim;
        claim.owner = owner;
        claim.lease_ms = options.lease_ms;
        claim.job_id = j.id;
        auto claimed = jobs->Claim(claim);
        if (!claimed.ok()) {
          st = claimed.error();
        } else if (*claimed) {
          std::lock_guard<std::mutex> l(held_mu);
          held.insert(j.id);
        } else {
          // Not pending in the store any more: a user cancelled it a moment ago, or (on a
          // shared store) another node claimed it first.
          auto now = jobs->Get(j.id);
          const bool cancelled = now.ok() && now->state == JobState::kCancelled;
          spdlog::info("job {} is no longer pending in the store ({}); cancelling its run here",
                       j.id, now.ok() ? JobStateName(now->state) : "gone");
          CancelRun(j.id, /*drop=*/!cancelled);
          if (!cancelled) return;
        }
        break;
      }
      case JobState::kProcessing: st = jobs->MarkProcessing(j.id, owner); break;
      case JobState::kCompleted:
        st = jobs->Complete(j.id, owner, u.payload.dump());
        if (j.finished_ms > j.started_ms && j.started_ms > 0) {
          const int64_t d = j.finished_ms - j.started_ms;
          const int64_t m = mean_job_ms.load();
          mean_job_ms = m == 0 ? d : (m * 7 + d) / 8;
        }
        break;
      case JobState::kFailed:
        st = jobs->Fail(j.id, owner,
                        j.error.value_or(Error(ErrorKind::kInternal, "failed", "failed")));
        break;
      case JobState::kCancelled: {
        auto c = jobs->Cancel(j.id);
        if (!c.ok()) st = c.error();
        break;
      }
      case JobState::kPending: {
        store::RequeueRequest r;
        r.id = j.id;
        r.owner = owner;
        r.reason = j.error;
        // The scheduler times the backoff itself; a store delay could make its claim of the
        // retry (a few ms early by the other clock) find the job not yet claimable.
        r.delay_ms = 0;
        st = jobs->Requeue(r);
        break;
      }
    }
    if (IsFinal(j.state) || j.state == JobState::kPending) {
      {
        std::lock_guard<std::mutex> l(held_mu);
        held.erase(j.id);
        preclaimed.erase(j.id);
      }
      // Room for another job here; a retried job is claimable by every node.
      if (link && j.state == JobState::kPending) {
        link->AnnounceJobs();
      } else if (link) {
        link->WakeClaims();
      }
    }
    if (IsFinal(j.state)) --in_scheduler;
  }
  if (!st) {
    // A user's cancel that won the race with the runner's outcome is expected; log the rest.
    if (st.error().code == store::kErrJobFinished) {
      spdlog::debug("job {}: {}", j.id, st.error().message);
    } else {
      spdlog::warn("job {}: store update to {} failed: {}", j.id, JobStateName(j.state),
                   st.error().message);
    }
  }
  Notify(u);
  if (u.kind == sched::JobUpdate::Kind::kState && IsFinal(j.state)) {
    std::lock_guard<std::mutex> lock(mu);
    final_cv.notify_all();
  }
}

void JobService::Impl::Notify(const sched::JobUpdate& u) {
  JobEvent ev;
  ev.job = u.job;
  switch (u.kind) {
    case sched::JobUpdate::Kind::kState: ev.kind = JobEvent::Kind::kState; break;
    case sched::JobUpdate::Kind::kProgress:
      ev.kind = JobEvent::Kind::kProgress;
      ev.percent = u.percent;
      break;
    case sched::JobUpdate::Kind::kSegment:
      ev.kind = JobEvent::Kind::kSegment;
      ev.segment = u.payload;
      break;
  }
  // The state subscribers see is the store's (a user's cancel may have won over the outcome).
  if (ev.kind == JobEvent::Kind::kState && IsFinal(u.job.state)) {
    if (auto stored = jobs->Get(u.job.id); stored.ok()) ev.job = *stored;
  }
  if (link) link->SendEvent(EventJson(ev));
  Deliver(ev);
}

nlohmann::json JobService::Impl::EventJson(const JobEvent& ev) {
  nlohmann::json out = {{"id", ev.job.id}};
  switch (ev.kind) {
    case JobEvent::Kind::kState:
      out["kind"] = "state";
      out["state"] = JobStateName(ev.job.state);
      out["attempt"] = ev.job.attempt;
      break;
    case JobEvent::Kind::kProgress:
      out["kind"] = "progress";
      out["percent"] = ev.percent;
      break;
    case JobEvent::Kind::kSegment:
      out["kind"] = "segment";
      out["segment"] = ev.segment;
      break;
  }
  return out;
}

void JobService::Impl::Deliver(const JobEvent& ev) {
  if (ev.kind == JobEvent::Kind::kProgress) {
    UpdateLive(ev.job.id, [&](LiveInfo& i) { i.percent = ev.percent; });
  } else if (ev.kind == JobEvent::Kind::kState && ev.job.state == JobState::kCompleted) {
    UpdateLive(ev.job.id, [](LiveInfo& i) { i.percent = 100; });
  }
  std::lock_guard<std::mutex> lock(live_mu);
  const std::string& id = ev.job.id;
  if (ev.kind == JobEvent::Kind::kSegment) segments[id].push_back(ev.segment);
  // A retried run starts its segments again.
  if (ev.kind == JobEvent::Kind::kState && ev.job.state == JobState::kPending) segments.erase(id);
  auto [b, e] = subscribers.equal_range(id);
  for (auto it = b; it != e; ++it) it->second->Deliver(ev);
  if (ev.kind == JobEvent::Kind::kState && IsFinal(ev.job.state)) {
    subscribers.erase(id);
    segments.erase(id);
    remote_seen.erase(id);
  }
}

sched::SchedulerHooks JobService::Impl::Hooks() {
  sched::SchedulerHooks hooks;
  hooks.on_job = [this](const sched::JobUpdate& u) {
    metrics.OnJob(u);
    Enqueue(u);
  };
  hooks.on_footprint = [this](const sched::FootprintUpdate& f) { Enqueue(f); };
  hooks.on_runner = [this](const sched::RunnerUpdate& r) {
    metrics.OnRunner(r);
    if (r.kind == sched::RunnerUpdate::Kind::kUnloaded && r.crashed) {
      Incident({RunnerIncident::Kind::kCrash, r.model, r.device, 0, "runner crashed"});
    }
  };
  return hooks;
}

}  // namespace steno::server
