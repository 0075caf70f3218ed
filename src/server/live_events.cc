#include "server/live_events.h"

#include "core/wall_clock.h"

namespace steno::server {

struct LiveEvents::Subscriber {
  explicit Subscriber(std::function<bool(const JobEvent&)> f) : fn(std::move(f)) {}

  // Hands `ev` over, or holds it back until the first look is shown. False once done.
  bool Deliver(const JobEvent& ev) EXCLUDES(mu) {
    MutexLock lock(mu);
    if (done) return false;
    if (!primed) {
      early.push_back(ev);
      return true;
    }
    return Show(ev);
  }

  // A job's states in one attempt only move forward.
  static int Rank(JobState s) { return IsFinal(s) ? 3 : static_cast<int>(s); }

  bool Show(const JobEvent& ev) REQUIRES(mu) {
    if (done) return false;
    if (ev.kind == JobEvent::Kind::kState) {
      if (ev.job.state == last_state && ev.job.attempt == last_attempt) return true;
      // Shown already (events of another node, and a re-read of the store, may cross).
      if (ev.job.attempt < last_attempt ||
          (ev.job.attempt == last_attempt && Rank(ev.job.state) < Rank(last_state))) {
        return true;
      }
      last_state = ev.job.state;
      last_attempt = ev.job.attempt;
    }
    if (!fn(ev)) done = true;
    return !done;
  }

  const std::function<bool(const JobEvent&)> fn;
  // Held while `fn` runs: once the handle is dropped (done set under it), fn is never called
  // again, so it may refer to things that die with the handle's owner.
  Mutex mu;
  bool done GUARDED_BY(mu) = false;
  bool primed GUARDED_BY(mu) = false;          // the first look was shown
  std::vector<JobEvent> early GUARDED_BY(mu);  // events that arrived before it
  // The last state it was shown: a state read at Subscribe time is not repeated when its
  // (already written) event arrives.
  JobState last_state GUARDED_BY(mu) = JobState::kPending;
  int last_attempt GUARDED_BY(mu) = -1;  // the first state is always shown
};

LiveEvents::LiveEvents(store::JobStore& jobs, MemoryJobs memory)
    : jobs_(jobs), memory_(std::move(memory)) {}

LiveEvents::~LiveEvents() = default;

Result<LiveEvents::Subscription> LiveEvents::Subscribe(const std::string& id,
                                                       std::function<bool(const JobEvent&)> fn) {
  auto sub = std::make_shared<Subscriber>(std::move(fn));
  // Registered before the store is read: what happens meanwhile is held back in `early`. The
  // segments produced before the registration are copied now; later ones arrive as events.
  std::vector<nlohmann::json> earlier;
  {
    MutexLock lock(mu_);
    subscribers_.emplace(id, sub);
    stream_seen_[id] = SteadyMillis();  // a remote job's state is re-read only after silence
    if (auto it = segments_.find(id); it != segments_.end()) earlier = it->second;
  }
  std::optional<Job> in_memory = memory_ ? memory_(id) : std::nullopt;
  // No lock held: a slow store holds up nobody else.
  Result<Job> job = in_memory ? Result<Job>(*in_memory) : jobs_.Get(id);
  if (!job.ok()) {
    Forget(id, sub.get());
    return job.error();
  }
  bool more;
  {
    MutexLock lock(sub->mu);
    JobEvent first;
    first.job = *job;
    more = sub->Show(first);
    for (const auto& seg : earlier) {
      if (!more) break;
      JobEvent ev;
      ev.kind = JobEvent::Kind::kSegment;
      ev.job = *job;
      ev.segment = seg;
      more = sub->Show(ev);
    }
    for (const JobEvent& ev : sub->early) {
      if (!more) break;
      // Progress and segments of a run before the one just read belong to no stream.
      if (ev.kind != JobEvent::Kind::kState && ev.job.attempt < job->attempt) continue;
      more = sub->Show(ev);
    }
    sub->early.clear();
    sub->primed = true;
  }
  if (!more || IsFinal(job->state)) {
    Forget(id, sub.get());
    return Subscription(sub);
  }
  // Dropping the handle marks the subscriber done; Deliver skips it and the entry goes with the
  // job's final event. The handle may outlive this object: dropping it touches only the
  // subscriber.
  return Subscription(sub.get(), [keep = sub](void*) {
    MutexLock lock(keep->mu);
    keep->done = true;
  });
}

void LiveEvents::Forget(const std::string& id, const Subscriber* sub) {
  MutexLock lock(mu_);
  auto [b, e] = subscribers_.equal_range(id);
  for (auto it = b; it != e; ++it) {
    if (it->second.get() == sub) {
      subscribers_.erase(it);
      break;
    }
  }
  if (subscribers_.count(id) == 0) stream_seen_.erase(id);
}

void LiveEvents::Deliver(const JobEvent& ev) {
  if (ev.kind == JobEvent::Kind::kProgress) {
    UpdateInfo(ev.job.id, [&](LiveInfo& i) { i.percent = ev.percent; });
  } else if (ev.kind == JobEvent::Kind::kState && ev.job.state == JobState::kCompleted) {
    UpdateInfo(ev.job.id, [](LiveInfo& i) { i.percent = 100; });
  }
  MutexLock lock(mu_);
  const std::string& id = ev.job.id;
  if (ev.kind == JobEvent::Kind::kSegment) segments_[id].push_back(ev.segment);
  // A retried run starts its segments again.
  if (ev.kind == JobEvent::Kind::kState && ev.job.state == JobState::kPending) segments_.erase(id);
  auto [b, e] = subscribers_.equal_range(id);
  for (auto it = b; it != e; ++it) it->second->Deliver(ev);
  if (ev.kind == JobEvent::Kind::kState && IsFinal(ev.job.state)) {
    subscribers_.erase(id);
    segments_.erase(id);
    stream_seen_.erase(id);
  }
}

template <class F>
void LiveEvents::UpdateInfo(const std::string& id, F update) {
  MutexLock lock(info_mu_);
  auto [it, added] = info_.try_emplace(id);
  update(it->second);
  if (!added) return;
  info_order_.push_back(id);
  if (info_order_.size() > kLiveKept) {
    info_.erase(info_order_.front());
    info_order_.pop_front();
  }
}

std::map<std::string, LiveInfo> LiveEvents::Live(const std::vector<std::string>& ids) const {
  std::map<std::string, LiveInfo> out;
  MutexLock lock(info_mu_);
  for (const auto& id : ids) {
    if (auto it = info_.find(id); it != info_.end()) out[id] = it->second;
  }
  return out;
}

void LiveEvents::NoteAudio(const std::string& id, double seconds) {
  UpdateInfo(id, [&](LiveInfo& i) { i.audio_seconds = seconds; });
}

bool LiveEvents::TouchStream(const std::string& id) {
  MutexLock lock(mu_);
  if (subscribers_.count(id) == 0) return false;
  stream_seen_[id] = SteadyMillis();
  return true;
}

std::vector<std::string> LiveEvents::QuietStreams(int64_t quiet_ms) const {
  std::vector<std::string> ids;
  const int64_t now = SteadyMillis();
  MutexLock lock(mu_);
  for (auto it = subscribers_.begin(); it != subscribers_.end();
       it = subscribers_.upper_bound(it->first)) {
    auto seen = stream_seen_.find(it->first);
    if (seen == stream_seen_.end() || now - seen->second >= quiet_ms) ids.push_back(it->first);
  }
  return ids;
}

JobEvent JobEventOf(const sched::JobUpdate& u, Job shown) {
  JobEvent ev;
  ev.job = std::move(shown);
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
  return ev;
}

nlohmann::json JobEventJson(const JobEvent& ev) {
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

}  // namespace steno::server
