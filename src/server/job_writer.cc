#include "server/job_writer.h"

#include "core/log.h"
#include "server/chunked_jobs.h"

namespace steno::server {

JobWriter::JobWriter(JobWriterParts parts) : p_(std::move(parts)) {}

JobWriter::~JobWriter() {
  Stop();
}

void JobWriter::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void JobWriter::Enqueue(WriteItem item) {
  {
    MutexLock lock(mu_);
    writes_.push_back(std::move(item));
  }
  cv_.Signal();
}

void JobWriter::Stop() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void JobWriter::Loop() {
  while (true) {
    WriteItem item;
    {
      MutexLock lock(mu_);
      while (!stop_ && writes_.empty()) cv_.Wait(mu_);
      if (writes_.empty()) break;  // stop, and everything written
      item = std::move(writes_.front());
      writes_.pop_front();
    }
    if (auto* u = std::get_if<sched::JobUpdate>(&item)) {
      if (!discard_) Apply(*u);
    } else {
      const auto& f = std::get<sched::FootprintUpdate>(item);
      if (auto st =
              p_.jobs->PutFootprint({f.model, f.device_name, f.weights_bytes, f.stream_bytes, 0});
          !st) {
        spdlog::warn("could not store footprint of {}: {}", f.model, st.error().message);
      }
    }
  }
}

void JobWriter::CancelRun(const std::string& id, bool drop) {
  if (drop) p_.held->Drop(id);
  p_.runtime->With(
      [&](Runtime& rt) {
        rt.scheduler().Post(sched::event::Cancel{id, [](Status) {}});
        return 0;
      },
      0);
  if (p_.chunked) p_.chunked->Cancel(id);
}

Result<std::optional<Job>> JobWriter::ClaimInStore(const std::string& id) {
  store::ClaimRequest claim;
  claim.owner = p_.node;
  claim.lease_ms = p_.lease_ms;
  claim.job_id = id;
  return p_.jobs->Claim(claim);
}

bool JobWriter::ClaimStarted(const Job& j, Status& st) {
  if (p_.held->TakePreclaimed(j.id)) return true;  // the claim loop claimed it
  auto claimed = ClaimInStore(j.id);
  if (!claimed.ok()) {
    st = claimed.error();
  } else if (*claimed) {
    p_.held->Hold(j.id);
  } else {
    // Not pending in the store any more: a user cancelled it a moment ago, or (on a shared
    // store) another node claimed it first.
    auto now = p_.jobs->Get(j.id);
    const bool cancelled = now.ok() && now->state == JobState::kCancelled;
    spdlog::info("job {} is no longer pending in the store ({}); cancelling its run here", j.id,
                 now.ok() ? JobStateName(now->state) : "gone");
    CancelRun(j.id, /*drop=*/!cancelled);
    return cancelled;
  }
  return true;
}

bool JobWriter::ClaimUnstarted(const Job& j, Status& st) {
  if (p_.held->TakePreclaimed(j.id)) return true;
  auto claimed = ClaimInStore(j.id);
  if (!claimed.ok()) {
    st = claimed.error();
    return false;
  }
  if (!claimed->has_value()) return false;
  p_.held->Hold(j.id);
  return true;
}

void JobWriter::Apply(const sched::JobUpdate& u) {
  const Job& j = u.job;
  const std::string& owner = p_.node;
  if (p_.held->TakeDropped(u)) {
    if (IsFinal(j.state)) p_.stats->Left();
    p_.ended->Notify();
    return;
  }
  Status st;
  if (u.kind == sched::JobUpdate::Kind::kState) {
    switch (j.state) {
      case JobState::kLoading:
        if (!ClaimStarted(j, st)) return;
        break;
      case JobState::kProcessing: st = p_.jobs->MarkProcessing(j.id, owner); break;
      case JobState::kCompleted:
        st = p_.jobs->Complete(j.id, owner, u.payload.dump());
        if (j.finished_ms > j.started_ms && j.started_ms > 0) {
          p_.stats->ObserveRun(j.finished_ms - j.started_ms);
        }
        break;
      case JobState::kFailed:
        // No runner: it failed while pending (a failure after a run names its runner).
        if (u.runner_id < 0 && !ClaimUnstarted(j, st)) break;
        st = p_.jobs->Fail(j.id, owner,
                           j.error.value_or(Error(ErrorKind::kInternal, "failed", "failed")));
        break;
      case JobState::kCancelled: {
        auto c = p_.jobs->Cancel(j.id);
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
        st = p_.jobs->Requeue(r);
        break;
      }
    }
    if (IsFinal(j.state) || j.state == JobState::kPending) {
      p_.held->Release(j.id);
      // Room for another job here; a retried job is claimable by every node.
      if (p_.link && j.state == JobState::kPending) {
        p_.link->AnnounceJobs();
      } else if (p_.link) {
        p_.link->WakeClaims();
      }
    }
    if (IsFinal(j.state)) p_.stats->Left();
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
  if (u.kind == sched::JobUpdate::Kind::kState && IsFinal(j.state)) p_.ended->Notify();
}

void JobWriter::Notify(const sched::JobUpdate& u) {
  JobEvent ev = JobEventOf(u, u.job);
  // The state subscribers see is the store's (a user's cancel may have won over the outcome).
  if (ev.kind == JobEvent::Kind::kState && IsFinal(u.job.state)) {
    if (auto stored = p_.jobs->Get(u.job.id); stored.ok()) ev.job = *stored;
  }
  if (p_.link) p_.link->SendEvent(JobEventJson(ev));
  p_.live->Deliver(ev);
}

}  // namespace steno::server
