#include "server/job_service.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <variant>

#include <whisper.h>

#include "core/log.h"
#include "core/paths.h"
#include "core/wall_clock.h"
#include "engine/formats.h"
#include "engine/transcript_json.h"
#include "sched/job_queue.h"
#include "server/cluster_link.h"
#include "store/data_dir.h"
#include "store/open_job_store.h"
#include "store/pg_blob_store.h"
#include "store/pg_connection.h"

namespace steno::server {
namespace {

// Shared store: how often the claim loop looks at the queue when no notification woke it.
constexpr int64_t kClaimPollMs = 500;

std::string DefaultNode() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = 0;
  return std::string(host[0] ? host : "steno") + ":" + std::to_string(getpid());
}

Error BadParam(const std::string& message) {
  return Error(ErrorKind::kBadInput, "bad_param", message);
}

// What a client may ask for, checked before anything is stored.
Status ValidateParams(const JobParams& p) {
  if (p.task != "transcribe" && p.task != "translate") {
    return BadParam("task must be transcribe or translate, not \"" + p.task + "\"");
  }
  if (p.language != "auto" && (p.language.empty() || whisper_lang_id(p.language.c_str()) < 0)) {
    return BadParam("unknown language \"" + p.language +
                    "\" (an ISO 639-1 code such as en, or auto)");
  }
  if (!(p.temperature >= 0.0f && p.temperature <= 1.0f)) {
    return BadParam("temperature must be between 0 and 1");
  }
  if (auto f = engine::ParseFormat(p.response_format); !f.ok()) return f.error();
  if (p.keep_alive_s && *p.keep_alive_s < -1) {
    return BadParam("keep_alive must be -1 (keep loaded), 0 or a number of seconds");
  }
  if (p.timeout_s && *p.timeout_s <= 0)
    return BadParam("timeout must be a positive number of seconds");
  if (!p.device.empty() && p.device != "auto" && p.device != "cpu") {
    const std::string prefix = "cuda:";
    const std::string rest =
        p.device.rfind(prefix, 0) == 0 ? p.device.substr(prefix.size()) : std::string();
    if (rest.empty() || rest.size() > 3 ||
        !std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Error(ErrorKind::kBadInput, "bad_device",
                   "device must be auto, cpu or cuda:N, not \"" + p.device + "\"");
    }
  }
  if (p.prompt.size() > 16 * 1024) return BadParam("prompt is longer than 16 KiB");
  return {};
}

// One item for the writer thread: a scheduler change to apply to the store, or a footprint.
using WriteItem = std::variant<sched::JobUpdate, sched::FootprintUpdate>;

struct Subscriber {
  std::function<bool(const JobEvent&)> fn;
  // Held while `fn` runs: once the handle is dropped (done set under it), fn is never called
  // again, so it may refer to things that die with the handle's owner.
  std::mutex mu;
  bool done = false;
  // The last state it was shown: a state read at Subscribe time is not repeated when its
  // (already written) event arrives.
  JobState last_state = JobState::kPending;
  int last_attempt = 0;

  // A job's states in one attempt only move forward.
  static int Rank(JobState s) { return IsFinal(s) ? 3 : static_cast<int>(s); }

  bool Deliver(const JobEvent& ev) {
    std::lock_guard<std::mutex> lock(mu);
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
};

}  // namespace

struct JobService::Impl {
  ServiceOptions options;
  std::unique_ptr<store::JobStore> jobs;
  std::optional<store::BlobStore> blobs;  // this node's files (runners read them)
  // With a shared store (--store postgres://...): the uploads every node can fetch; null on the
  // single-node SQLite store.
  std::unique_ptr<store::PgBlobStore> shared_blobs;
  store::PgJobStore* pg = nullptr;  // `jobs` on a shared store (nodes table)
  std::mutex describe_mu;
  NodeDescriber describe;
  // Jobs this node holds a lease on, and runs this node gave up because the store says they are
  // not ours (another node claimed the job, or our lease was lost): their scheduler outcome is
  // not written to the store.
  std::mutex held_mu;
  std::set<std::string> held;
  std::set<std::string> dropped;
  // Claimed by the claim loop and handed to the scheduler: its pending → loading is not claimed
  // again.
  std::set<std::string> preclaimed;
  // Shared store: notifications, the claim loop, the nodes table (null on the SQLite store).
  std::unique_ptr<ClusterLink> link;
  // Jobs streamed here that run on another node: when their last event from it came (steady ms).
  std::map<std::string, int64_t> remote_seen;
  ServiceMetrics metrics;
  std::unique_ptr<Runtime> runtime;
  // Guards `runtime` against the writer while the destructor tears it down; `discard` is set
  // then too: the runs a shutdown cuts short go back to pending, they are not failures.
  std::mutex runtime_mu;
  bool discard = false;
  size_t queue_bound = 0;  // pending + running jobs the service accepts

  std::atomic<bool> admitting{true};
  // Serialises the queue-capacity check with the insert, so the bound is exact.
  std::mutex submit_mu;
  std::atomic<int64_t> in_scheduler{0};  // submitted to the scheduler, not final yet
  std::atomic<int64_t> mean_job_ms{0};

  // Writer thread: applies scheduler changes to the store in order, then tells subscribers.
  std::mutex mu;
  std::condition_variable cv;        // work for the writer, or stop
  std::condition_variable final_cv;  // some job became final (Wait)
  std::deque<WriteItem> writes;
  bool stop = false;
  std::thread writer;
  std::thread heartbeat;
  std::condition_variable heartbeat_cv;

  // Live jobs' segments so far (a late subscriber gets them first), and subscribers.
  std::mutex live_mu;
  std::map<std::string, std::vector<nlohmann::json>> segments;
  std::multimap<std::string, std::shared_ptr<Subscriber>> subscribers;

  // JobService::Live: per job, newest last; the oldest entries go past kLiveKept.
  static constexpr size_t kLiveKept = 2000;
  mutable std::mutex info_mu;
  std::map<std::string, LiveInfo> live_info;
  std::deque<std::string> live_order;

  std::mutex incident_mu;
  std::function<void(const RunnerIncident&)> incident_listener;

  template <class F>
  void UpdateLive(const std::string& id, F update) {
    std::lock_guard<std::mutex> lock(info_mu);
    auto [it, added] = live_info.try_emplace(id);
    update(it->second);
    if (!added) return;
    live_order.push_back(id);
    if (live_order.size() > kLiveKept) {
      live_info.erase(live_order.front());
      live_order.pop_front();
    }
  }

  void Incident(const RunnerIncident& incident) {
    std::lock_guard<std::mutex> lock(incident_mu);
    if (incident_listener) incident_listener(incident);
  }

  void Enqueue(WriteItem item) {
    {
      std::lock_guard<std::mutex> lock(mu);
      writes.push_back(std::move(item));
    }
    cv.notify_one();
  }

  void WriterLoop() {
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

  // Stops this node's run of a job the store no longer gives it. With `drop`, the run's outcome
  // is not written (the job is someone else's now); without, it is (a user's cancel: a no-op).
  void CancelRun(const std::string& id, bool drop) {
    if (drop) {
      std::lock_guard<std::mutex> l(held_mu);
      held.erase(id);
      dropped.insert(id);
    }
    std::lock_guard<std::mutex> l(runtime_mu);
    if (runtime && !discard) runtime->scheduler().Post(sched::event::Cancel{id, [](Status) {}});
  }

  // True for every update of a run CancelRun dropped, up to its end there (final or requeued).
  bool TakeDropped(const sched::JobUpdate& u) {
    std::lock_guard<std::mutex> l(held_mu);
    auto it = dropped.find(u.job.id);
    if (it == dropped.end()) return false;
    if (u.kind == sched::JobUpdate::Kind::kState &&
        (IsFinal(u.job.state) || u.job.state == JobState::kPending)) {
      dropped.erase(it);
    }
    return true;
  }

  // One scheduler change, made durable, then shown to subscribers.
  void Apply(const sched::JobUpdate& u) {
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

  void Notify(const sched::JobUpdate& u) {
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

  static nlohmann::json EventJson(const JobEvent& ev) {
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

  // Another node's event for one of its jobs: streamed to this node's subscribers of the job (the
  // job itself is read from the store); a cancel of a job this node runs stops the run at once.
  void OnRemoteEvent(const nlohmann::json& event) {
    const std::string id = event.value("id", "");
    const std::string kind = event.value("kind", "");
    if (id.empty()) return;
    bool subscribed;
    {
      std::lock_guard<std::mutex> lock(live_mu);
      subscribed = subscribers.count(id) > 0;
      if (subscribed) remote_seen[id] = SteadyMillis();
    }
    bool ours;
    {
      std::lock_guard<std::mutex> l(held_mu);
      ours = held.count(id) > 0;
    }
    if (!subscribed && !(ours && kind == "state")) return;
    auto job = jobs->Get(id);
    if (!job.ok()) return;
    if (ours && job->state == JobState::kCancelled) CancelRun(id, /*drop=*/false);
    if (!subscribed) return;
    JobEvent ev;
    ev.job = *job;
    // The state this event reports, not the store's by now (the job may have moved on: a
    // loading event read after the job started processing).
    if (auto state = ParseJobState(event.value("state", "")); state && kind == "state") {
      ev.job.state = *state;
      ev.job.attempt = event.value("attempt", ev.job.attempt);
    }
    if (kind == "progress") {
      ev.kind = JobEvent::Kind::kProgress;
      ev.percent = event.value("percent", 0);
    } else if (kind == "segment" && event.contains("segment")) {
      ev.kind = JobEvent::Kind::kSegment;
      ev.segment = event["segment"];
    }
    Deliver(ev);
  }

  // Streams of jobs running elsewhere that heard nothing for 2 s: their state is read again (a
  // notification lost while the listening connection was down must not leave them hanging).
  void ResyncRemote() {
    std::vector<std::string> ids;
    const int64_t now = SteadyMillis();
    {
      std::lock_guard<std::mutex> lock(live_mu);
      for (auto it = subscribers.begin(); it != subscribers.end();
           it = subscribers.upper_bound(it->first)) {
        auto seen = remote_seen.find(it->first);
        if (seen == remote_seen.end() || now - seen->second >= 2000) ids.push_back(it->first);
      }
    }
    for (const auto& id : ids) {
      {
        std::lock_guard<std::mutex> l(held_mu);
        if (held.count(id)) continue;  // running here: its events are ours
      }
      auto job = jobs->Get(id);
      if (!job.ok()) continue;
      JobEvent ev;
      ev.job = *job;
      Deliver(ev);
    }
  }

  // Hands `ev` to the job's subscribers; a final state ends them.
  void Deliver(const JobEvent& ev) {
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

  // Jobs we held whose lease a heartbeat did not renew: cancelled by a user (perhaps on another
  // node), finished meanwhile, or requeued after our lease ran out (someone else may run them).
  void StopLost(const std::set<std::string>& ids) {
    for (const auto& id : ids) {
      auto job = jobs->Get(id);
      if (job.ok() && IsFinal(job->state) && job->state != JobState::kCancelled) {
        std::lock_guard<std::mutex> l(held_mu);
        held.erase(id);  // finished here a moment ago
        continue;
      }
      if (job.ok() && job->lease_owner == options.node) continue;  // claimed again by us
      const bool cancelled = job.ok() && job->state == JobState::kCancelled;
      // A user's cancel is routine; a lease lost to another node is worth a warning.
      spdlog::log(cancelled ? spdlog::level::info : spdlog::level::warn,
                  "job {}: this node no longer holds its lease ({}); stopping its run", id,
                  job.ok() ? JobStateName(job->state) : job.error().message);
      CancelRun(id, /*drop=*/!cancelled);
    }
  }

  void HeartbeatLoop() {
    std::unique_lock<std::mutex> lock(mu);
    const auto period = std::chrono::milliseconds(std::max<int64_t>(options.lease_ms / 3, 100));
    while (!stop) {
      heartbeat_cv.wait_for(lock, period, [&] { return stop; });
      if (stop) break;
      lock.unlock();
      std::set<std::string> before;
      {
        std::lock_guard<std::mutex> l(held_mu);
        before = held;
      }
      if (auto renewed = jobs->Heartbeat(options.node, options.lease_ms); !renewed.ok()) {
        spdlog::warn("lease heartbeat failed: {}", renewed.error().message);
      } else {
        for (const auto& id : renewed.value()) before.erase(id);
        StopLost(before);
      }
      if (link) RequeueExpired();
      lock.lock();
    }
  }

  sched::SchedulerHooks Hooks() {
    sched::SchedulerHooks hooks;
    hooks.on_job = [this](const sched::JobUpdate& u) {
      metrics.OnJob(u);
      Enqueue(u);
    };
    hooks.on_footprint = [this](const sched::FootprintUpdate& f) { Enqueue(f); };
    hooks.on_runner = [this](const sched::RunnerUpdate& r) {
      metrics.OnRunner(r);
      if (r.kind == sched::RunnerUpdate::Kind::kUnloaded && r.reason == "crash") {
        Incident({RunnerIncident::Kind::kCrash, r.model, r.device, 0, "runner crashed"});
      }
    };
    return hooks;
  }

  // Calls `fn(Runtime&)` unless the runtime is gone (after Shutdown): then `gone`.
  template <class F, class R>
  R WithRuntime(F fn, R gone) {
    std::lock_guard<std::mutex> lock(runtime_mu);
    if (!runtime) return gone;
    return fn(*runtime);
  }

  static Error ShuttingDown() {
    return Error(ErrorKind::kUnavailable, "shutting_down", "the server is shutting down");
  }

  // On a shared store: jobs whose node stopped renewing their lease (it died) go back to pending,
  // and every node is told (the first with room claims them).
  void RequeueExpired() {
    auto requeued = jobs->RequeueExpired();
    if (!requeued.ok()) {
      spdlog::warn("requeueing expired leases failed: {}", requeued.error().message);
      return;
    }
    if (requeued->empty()) return;
    spdlog::info("requeued {} jobs whose node stopped renewing its lease", requeued->size());
    link->AnnounceJobs();
  }

  // The claim loop (shared store): while the scheduler can start a job of a model that has
  // jobs due, claim the first of them in queue order (FOR UPDATE SKIP LOCKED: nodes never get
  // the same job) and hand it to the scheduler already claimed. A node therefore holds only jobs
  // it runs now; the rest stay pending for whichever node has room. Every model with a job due
  // is considered, so a long queue of jobs no node here can run does not hide the others.
  void ClaimPlaceable() {
    while (admitting) {
      auto pending = jobs->PendingByModel();
      if (!pending.ok()) {
        spdlog::warn("claim: cannot read the queue: {}", pending.error().message);
        return;
      }
      std::vector<std::string> models;
      for (const store::PendingModel& m : *pending) {
        if (m.due > 0) models.push_back(m.model);
      }
      if (models.empty()) return;
      auto placeable = WithRuntime([&](Runtime& rt) { return rt.scheduler().Placeable(models); },
                                   std::vector<std::string>{});
      if (placeable.empty()) return;
      store::ClaimRequest claim;
      claim.owner = options.node;
      claim.lease_ms = options.lease_ms;
      claim.models = placeable;
      auto claimed = jobs->Claim(claim);
      if (!claimed.ok()) {
        spdlog::warn("claim failed: {}", claimed.error().message);
        return;
      }
      if (!*claimed) return;  // taken by other nodes, or not due yet
      RunClaimed(**claimed);
    }
  }

  void RunClaimed(const Job& job) {
    {
      std::lock_guard<std::mutex> l(held_mu);
      held.insert(job.id);
      preclaimed.insert(job.id);
    }
    Status st = HasDevice(job.params.device)
                    ? Schedule(job)
                    : Status(Error(ErrorKind::kUnavailable, "no_device",
                                   "this node has no " + job.params.device));
    if (st) return;
    {
      std::lock_guard<std::mutex> l(held_mu);
      held.erase(job.id);
      preclaimed.erase(job.id);
    }
    // Another node may run it (it has the device; its fetch of the upload works): hand it back.
    spdlog::warn("job {} handed back to the queue: {}", job.id, st.error().message);
    store::RequeueRequest r;
    r.id = job.id;
    r.owner = options.node;
    r.reason = st.error();
    r.delay_ms = st.error().code == "shutting_down" ? 0 : 5'000;
    if (auto back = jobs->Requeue(r); !back) {
      spdlog::warn("job {}: could not hand it back: {}", job.id, back.error().message);
    }
  }

  bool HasDevice(const std::string& device) {
    if (device.empty() || device == "auto") return true;
    auto snapshot = WithRuntime([](Runtime& rt) { return rt.scheduler().Snapshot(); },
                                sched::SchedulerSnapshot{});
    return std::any_of(snapshot.devices.begin(), snapshot.devices.end(),
                       [&](const sched::DeviceLedger& d) { return d.name == device; });
  }

  Status Schedule(const Job& job) {
    sched::SubmitRequest r;
    r.job = job;
    if (shared_blobs) {
      // Uploaded on another node, perhaps: runners read a local file.
      auto path = shared_blobs->Materialise(*blobs, job.blob_digest);
      if (!path.ok()) return path.error();
      r.audio_path = *path;
    } else {
      r.audio_path = blobs->PathOf(job.blob_digest);
    }
    ++in_scheduler;
    auto st = WithRuntime([&](Runtime& rt) { return rt.scheduler().Submit(std::move(r)); },
                          Status(ShuttingDown()));
    if (!st) --in_scheduler;
    return st;
  }

  // Jobs the queue bound counts: this node's, not final yet; on a shared store, every pending
  // job of the cluster (what each node runs is bounded by its room, not by this bound).
  size_t QueueLength() {
    if (link) {
      auto pending = jobs->PendingByModel();
      if (!pending.ok()) return 0;
      int64_t n = 0;
      for (const store::PendingModel& m : *pending) n += m.pending;
      return static_cast<size_t>(n);
    }
    return static_cast<size_t>(std::max<int64_t>(0, in_scheduler.load()));
  }

  // Copies a server-side file into the blob store (so retention and restarts treat it like an
  // upload, and a later change to the file does not change the job).
  Result<store::BlobInfo> CopyIntoBlobs(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return Error(ErrorKind::kBadInput, "file_not_found", "cannot open " + path);
    }
    auto w = blobs->Begin();
    if (!w.ok()) return w.error();
    std::vector<char> buf(1 << 20);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      if (in.gcount() > 0) {
        if (auto st = w->Append(std::string_view(buf.data(), in.gcount())); !st) return st.error();
      }
    }
    if (in.bad()) return Error(ErrorKind::kIo, "read_failed", "cannot read " + path);
    return w->Commit();
  }

  // The shared store: jobs and uploads in PostgreSQL, this node's copies of uploads in its data
  // dir. Unlike the SQLite store, nothing found running is requeued at once (other nodes run
  // it); only jobs whose lease ran out go back to pending.
  Status OpenShared(const ServiceOptions& o) {
    auto local = store::OpenDataDirBlobs(o.data_dir);
    if (!local.ok()) return local.error();
    blobs.emplace(std::move(local).value());
    auto opened = store::OpenJobStore(o.store);
    if (!opened.ok()) return opened.error();
    jobs = std::move(opened).value();
    pg = dynamic_cast<store::PgJobStore*>(jobs.get());
    auto shared = store::OpenSharedBlobStore(o.store);
    if (!shared.ok()) return shared.error();
    shared_blobs = std::move(shared).value();
    // Other nodes may be between pushing an upload and inserting its job: keep the grace.
    store::RetentionPolicy policy;
    const int64_t now = UnixMillis();
    if (auto swept = store::RunRetention(*jobs, *blobs, policy, now); !swept.ok()) {
      spdlog::warn("retention sweep failed: {}", swept.error().message);
    }
    (void)blobs->RemoveTempFiles(now + 1);  // nothing is in flight on this node yet
    if (auto swept = shared_blobs->RemoveUnreferenced(policy.grace_ms); !swept.ok()) {
      spdlog::warn("retention sweep of shared uploads failed: {}", swept.error().message);
    } else if (swept->removed > 0) {
      spdlog::info("retention: removed {} shared uploads ({} bytes)", swept->removed,
                   swept->bytes_freed);
    }
    if (auto requeued = jobs->RequeueExpired(); !requeued.ok()) {
      spdlog::warn("could not requeue expired leases: {}", requeued.error().message);
    } else if (!requeued->empty()) {
      spdlog::info("requeued {} jobs whose node stopped renewing its lease", requeued->size());
    }
    spdlog::info("shared job store {} (this node: {})", store::pg::RedactUrl(o.store), o.node);
    return {};
  }

  // Removes an upload no job refers to (a refused submission leaves nothing behind).
  void DropUnreferenced(const std::string& digest) {
    auto refs = jobs->ReferencedBlobs();
    if (!refs.ok()) return;
    if (std::find(refs->begin(), refs->end(), digest) != refs->end()) return;
    (void)blobs->Remove(digest);
  }
};

JobService::JobService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<JobService>> JobService::Open(ServiceOptions options) {
  auto impl = std::make_unique<Impl>();
  if (options.data_dir.empty()) options.data_dir = DataDir();
  if (options.node.empty()) options.node = DefaultNode();
  if (options.runtime.data_dir.empty()) options.runtime.data_dir = options.data_dir;
  if (!options.store.empty()) {
    if (auto st = impl->OpenShared(options); !st) return st.error();
  } else {
    auto stores = store::OpenDataDir(options.data_dir);
    if (!stores.ok()) return stores.error();
    impl->jobs = std::move(stores->jobs);
    impl->blobs.emplace(std::move(stores->blobs));
    if (stores->recovered > 0) {
      spdlog::info("requeued {} jobs a previous run left unfinished", stores->recovered);
    }
  }
  // What runners measured before: the estimates of the next loads.
  if (auto footprints = impl->jobs->ListFootprints(); footprints.ok()) {
    for (const auto& f : *footprints) {
      options.runtime.scheduler.known_footprints[{f.model, f.device_name}] =
          sched::MemoryEstimate{f.weights_bytes, f.stream_bytes, true};
    }
  }
  // The service bounds the queue itself (see Submit); the scheduler must not refuse what the
  // store already holds, such as the pending jobs of a restart.
  impl->queue_bound = options.runtime.scheduler.queue.max_length;
  options.runtime.scheduler.queue.max_length = std::numeric_limits<size_t>::max() / 2;
  impl->options = options;

  Impl* raw = impl.get();
  if (impl->pg) {
    // Before the runtime: claims find no room until it exists.
    ClusterHooks hooks;
    hooks.claim = [raw] { raw->ClaimPlaceable(); };
    hooks.on_event = [raw](const nlohmann::json& event) { raw->OnRemoteEvent(event); };
    hooks.tick = [raw] { raw->ResyncRemote(); };
    hooks.describe = [raw] {
      std::lock_guard<std::mutex> lock(raw->describe_mu);
      return raw->describe ? raw->describe() : store::NodeInfo{};
    };
    auto link = ClusterLink::Start(options.store, options.node, options.publish_ms, kClaimPollMs,
                                   *impl->pg, std::move(hooks));
    if (!link.ok()) return link.error();
    impl->link = std::move(link).value();
  }
  impl->writer = std::thread([raw] { raw->WriterLoop(); });
  options.runtime.on_unreleased = [raw](const std::string& model, const std::string& device,
                                        const runner::ReleaseReport& report) {
    raw->Incident(
        {RunnerIncident::Kind::kUnreleased, model, device, report.leftover_bytes, report.detail});
  };
  auto runtime = Runtime::Start(options.runtime, impl->Hooks());
  if (!runtime.ok()) {
    {
      std::lock_guard<std::mutex> lock(impl->mu);
      impl->stop = true;
    }
    impl->cv.notify_all();
    impl->writer.join();
    if (impl->link) impl->link->Stop();
    return runtime.error();
  }
  impl->runtime = std::move(runtime).value();
  impl->heartbeat = std::thread([raw] { raw->HeartbeatLoop(); });

  if (impl->link) {
    // Shared store: the claim loop takes pending jobs as this node has room for them.
    impl->link->WakeClaims();
    return std::unique_ptr<JobService>(new JobService(std::move(impl)));
  }
  // Every pending job goes to the scheduler again, in queue order.
  store::JobFilter filter;
  filter.states = {JobState::kPending};
  filter.order = store::ListOrder::kQueueOrder;
  filter.limit = 1000;
  int resubmitted = 0;
  while (true) {
    auto page = impl->jobs->List(filter);
    if (!page.ok()) return page.error();
    for (const Job& j : page->jobs) {
      if (auto st = impl->Schedule(j); !st) {
        spdlog::warn("job {} could not be queued again: {}", j.id, st.error().message);
        if (st.error().kind != ErrorKind::kUnavailable) {
          // Its model is gone, or its params no longer valid: it can never run.
          (void)impl->jobs->Claim({options.node, options.lease_ms, j.id, {}});
          (void)impl->jobs->Fail(j.id, options.node, st.error());
        }
      } else {
        ++resubmitted;
      }
    }
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
  }
  if (resubmitted > 0) spdlog::info("{} pending jobs queued from the store", resubmitted);
  return std::unique_ptr<JobService>(new JobService(std::move(impl)));
}

JobService::~JobService() {
  Shutdown(std::chrono::milliseconds(0));
}

JobService::ShutdownReport JobService::Shutdown(std::chrono::milliseconds grace) {
  Impl& s = *impl_;
  ShutdownReport report;
  {
    std::lock_guard<std::mutex> lock(s.runtime_mu);
    if (!s.runtime) return report;  // done before
  }
  StopAdmitting();
  const size_t running_at_start = s.runtime->scheduler().Snapshot().running;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  size_t running = running_at_start;
  while (running > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    running = s.runtime->scheduler().Snapshot().running;
  }
  report.finished_in_grace =
      static_cast<int>(running_at_start - std::min(running, running_at_start));
  {
    // Runners stop; what they report while dying is not written (see `discard`).
    std::lock_guard<std::mutex> lock(s.runtime_mu);
    s.discard = true;
    report.runners = s.runtime->Stop();
    s.runtime.reset();
  }
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.stop = true;
  }
  s.cv.notify_all();
  s.heartbeat_cv.notify_all();
  if (s.writer.joinable()) s.writer.join();
  if (s.heartbeat.joinable()) s.heartbeat.join();
  // Whatever is still loading/processing under our lease goes back to the queue for the next
  // start: its run was cut short, not lost.
  store::JobFilter filter;
  filter.states = {JobState::kLoading, JobState::kProcessing};
  filter.lease_owner = s.options.node;
  filter.limit = 1000;
  while (true) {
    auto page = s.jobs->List(filter);
    if (!page.ok()) break;
    for (const Job& j : page->jobs) {
      store::RequeueRequest r;
      r.id = j.id;
      r.owner = s.options.node;
      r.reason = Error(ErrorKind::kUnavailable, "shutdown", "the server stopped during the run");
      if (s.jobs->Requeue(r)) ++report.returned;
    }
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
  }
  if (s.link) {
    // Handed back: the other nodes take them now, not after a lease runs out.
    if (report.returned > 0) s.link->AnnounceJobs();
    s.link->Stop();  // and this node leaves the nodes table
  }
  if (auto counts = s.jobs->Count(); counts.ok()) report.pending = (*counts)[JobState::kPending];
  return report;
}

std::string JobService::ShutdownReport::Summary() const {
  std::string out = runners.Summary() + "; " + std::to_string(returned) +
                    (returned == 1 ? " job" : " jobs") + " returned to the queue";
  if (pending > returned) out += " (" + std::to_string(pending) + " pending in all)";
  out += runners.clean ? "; shut down cleanly" : "; some runner memory was not released";
  return out;
}

store::BlobStore& JobService::blobs() {
  return *impl_->blobs;
}

Result<store::Inserted> JobService::Submit(const SubmitJob& request) {
  Impl& s = *impl_;
  if (!s.admitting) return Impl::ShuttingDown();
  std::string digest = request.blob_digest;
  const bool fresh_copy = digest.empty();
  auto refuse = [&](Error e) -> Result<store::Inserted> {
    if (!digest.empty()) s.DropUnreferenced(digest);
    return e;
  };
  audio::Limits limits;
  {
    std::lock_guard<std::mutex> lock(s.submit_mu);  // a reload may change them
    limits = s.options.limits;
  }
  if (auto st = ValidateParams(request.params); !st) return refuse(st.error());
  double audio_seconds = 0;
  auto spec = s.WithRuntime([&](Runtime& rt) { return rt.ResolveModel(request.model); },
                            Result<sched::ModelSpec>(Impl::ShuttingDown()));
  if (!spec.ok()) return refuse(spec.error());
  if (fresh_copy) {
    if (request.server_path.empty()) {
      return Error(ErrorKind::kBadInput, "no_audio", "the job names no audio");
    }
    // Probe before copying: a non-media file is refused without touching the blob store.
    auto info = audio::Probe(request.server_path, limits);
    if (!info.ok()) return info.error();
    audio_seconds = info->duration_s;
    auto blob = s.CopyIntoBlobs(request.server_path);
    if (!blob.ok()) return blob.error();
    digest = blob->digest;
  } else {
    if (!store::IsValidDigest(digest) || !s.blobs->Contains(digest)) {
      return Error(ErrorKind::kBadInput, "no_audio", "no upload " + digest);
    }
    auto info = audio::Probe(s.blobs->PathOf(digest), limits);
    if (!info.ok()) return refuse(info.error());
    audio_seconds = info->duration_s;
  }
  if (s.shared_blobs) {
    // Durable in the shared store before the job names it: any node can run it.
    auto pushed = s.shared_blobs->Push(*s.blobs, digest);
    if (!pushed.ok()) return refuse(pushed.error());
  }

  std::lock_guard<std::mutex> lock(s.submit_mu);
  if (s.QueueLength() >= s.queue_bound) {
    return refuse(
        Error(ErrorKind::kUnavailable, "queue_full",
              "the queue is full; retry after " + std::to_string(RetryAfterSeconds()) + " s"));
  }
  store::NewJob job;
  job.model = request.model;
  job.priority = request.priority;
  job.params = request.params;
  job.blob_digest = digest;
  job.idempotency_key = request.idempotency_key;
  auto inserted = s.jobs->Insert(job);
  if (!inserted.ok()) return refuse(inserted.error());
  if (inserted->existing) return inserted;
  if (audio_seconds > 0) {
    s.UpdateLive(inserted->job.id, [&](LiveInfo& i) { i.audio_seconds = audio_seconds; });
  }
  if (s.link) {
    s.link->AnnounceJobs();  // whichever node has room claims it
    return inserted;
  }
  if (auto st = s.Schedule(inserted->job); !st) {
    // Durable already: it runs after the next start. Tell the client it is accepted.
    spdlog::warn("job {} stored but not queued now: {}", inserted->job.id, st.error().message);
  }
  return inserted;
}

Result<Job> JobService::Get(const std::string& id) {
  return impl_->jobs->Get(id);
}

Result<store::JobPage> JobService::List(const store::JobFilter& filter) {
  return impl_->jobs->List(filter);
}

Result<std::string> JobService::ResultText(const std::string& id, const std::string& format) {
  auto f = engine::ParseFormat(format);
  if (!f.ok()) return f.error();
  auto job = impl_->jobs->Get(id);
  if (!job.ok()) return job.error();
  auto text = impl_->jobs->GetResult(id);
  if (!text.ok()) return text.error();
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (json.is_discarded()) {
    return Error(ErrorKind::kIntegrity, "bad_result",
                 "the stored result of " + id + " is not JSON");
  }
  auto transcript = engine::TranscriptFromVerboseJson(json);
  if (!transcript.ok()) return transcript.error();
  if (!job->params.word_timestamps) {
    for (auto& seg : transcript->segments) seg.words.clear();
  }
  return engine::Render(*transcript, *f);
}

Result<Job> JobService::Cancel(const std::string& id) {
  auto cancelled = impl_->jobs->Cancel(id);
  if (!cancelled.ok()) return cancelled.error();
  // The scheduler may not know it (already ended there, or it runs on another node); fine.
  (void)impl_->WithRuntime([&](Runtime& rt) { return rt.scheduler().Cancel(id); }, Status());
  if (impl_->link) {
    // The node running it stops at once, and streams of it on any node end.
    JobEvent ev;
    ev.job = *cancelled;
    impl_->link->SendEvent(Impl::EventJson(ev));
    impl_->Deliver(ev);
  }
  return cancelled;
}

Result<Job> JobService::Wait(const std::string& id, int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    auto job = impl_->jobs->Get(id);
    if (!job.ok() || IsFinal(job->state)) return job;
    std::unique_lock<std::mutex> lock(impl_->mu);
    if (std::chrono::steady_clock::now() >= deadline) return job;
    // Re-read at least every 200 ms: a final state written by another path (a user's cancel)
    // does not wake this wait.
    impl_->final_cv.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() +
                                                            std::chrono::milliseconds(200)));
  }
}

Result<JobService::Subscription> JobService::Subscribe(const std::string& id,
                                                       std::function<bool(const JobEvent&)> fn) {
  Impl& s = *impl_;
  auto sub = std::make_shared<Subscriber>();
  sub->fn = std::move(fn);
  // Holding live_mu while reading the job: no event can slip between this first look and the
  // registration (Notify takes live_mu too).
  std::lock_guard<std::mutex> lock(s.live_mu);
  auto job = s.jobs->Get(id);
  if (!job.ok()) return job.error();
  JobEvent first;
  first.job = *job;
  sub->last_attempt = -1;  // the first state is always shown
  bool more = sub->Deliver(first);
  if (auto it = s.segments.find(id); more && it != s.segments.end()) {
    for (const auto& seg : it->second) {
      JobEvent ev;
      ev.kind = JobEvent::Kind::kSegment;
      ev.job = *job;
      ev.segment = seg;
      if (!(more = sub->Deliver(ev))) break;
    }
  }
  if (!more || IsFinal(job->state)) return Subscription(sub);
  s.subscribers.emplace(id, sub);
  if (s.link) s.remote_seen[id] = SteadyMillis();  // re-read only after 2 s of silence
  // Dropping the handle marks the subscriber done; Notify skips it and the entry goes with the
  // job's final event.
  // The handle may outlive the service: dropping it touches only the subscriber.
  return Subscription(sub.get(), [keep = sub](void*) {
    std::lock_guard<std::mutex> lock(keep->mu);
    keep->done = true;
  });
}

Status JobService::Load(const std::string& model, const std::string& device,
                        std::optional<int> keep_alive_s) {
  if (!impl_->admitting) return Impl::ShuttingDown();
  return impl_->WithRuntime(
      [&](Runtime& rt) -> Status {
        if (auto spec = rt.ResolveModel(model); !spec.ok()) return spec.error();
        sched::LoadRequest r;
        r.model = model;
        r.device = device == "auto" ? "" : device;
        r.keep_alive_s = keep_alive_s;
        return rt.scheduler().Load(r);
      },
      Status(Impl::ShuttingDown()));
}

Status JobService::Unload(const std::string& model) {
  return impl_->WithRuntime([&](Runtime& rt) { return rt.scheduler().Unload(model); },
                            Status(Impl::ShuttingDown()));
}

sched::SchedulerSnapshot JobService::Snapshot() const {
  return impl_->WithRuntime([](Runtime& rt) { return rt.scheduler().Snapshot(); },
                            sched::SchedulerSnapshot{});
}

Result<std::vector<gpu::DeviceSample>> JobService::Devices() const {
  using Samples = Result<std::vector<gpu::DeviceSample>>;
  return impl_->WithRuntime(
      [](Runtime& rt) -> Samples {
        gpu::Devices* d = rt.devices();
        if (!d) return std::vector<gpu::DeviceSample>{};
        return d->Sample();
      },
      Samples(std::vector<gpu::DeviceSample>{}));
}

Result<store::JobCounts> JobService::Counts() {
  return impl_->jobs->Count();
}

std::map<std::string, JobService::LiveInfo> JobService::Live(
    const std::vector<std::string>& ids) const {
  std::map<std::string, LiveInfo> out;
  std::lock_guard<std::mutex> lock(impl_->info_mu);
  for (const auto& id : ids) {
    if (auto it = impl_->live_info.find(id); it != impl_->live_info.end()) out[id] = it->second;
  }
  return out;
}

void JobService::SetIncidentListener(std::function<void(const RunnerIncident&)> listener) {
  std::lock_guard<std::mutex> lock(impl_->incident_mu);
  impl_->incident_listener = std::move(listener);
}

ServiceMetrics& JobService::metrics() {
  return impl_->metrics;
}

void JobService::Reconfigure(const sched::SchedulerConfig& scheduler, const audio::Limits& limits) {
  Impl& s = *impl_;
  sched::SchedulerConfig c = scheduler;
  {
    std::lock_guard<std::mutex> lock(s.submit_mu);
    s.queue_bound = c.queue.max_length;
    s.options.limits = limits;
  }
  c.queue.max_length = std::numeric_limits<size_t>::max() / 2;  // the service bounds the queue
  s.WithRuntime(
      [&](Runtime& rt) {
        rt.scheduler().Reconfigure(c);
        return 0;
      },
      0);
}

bool JobService::shared() const {
  return impl_->pg != nullptr;
}

const std::string& JobService::node() const {
  return impl_->options.node;
}

void JobService::SetNodeDescriber(NodeDescriber describe) {
  std::lock_guard<std::mutex> lock(impl_->describe_mu);
  impl_->describe = std::move(describe);
}

Result<std::vector<JobService::ClusterNode>> JobService::Nodes() {
  Impl& s = *impl_;
  if (!s.pg) {
    return Error(ErrorKind::kBadInput, "not_shared",
                 "this server does not share its store with other nodes (see serve --store)");
  }
  auto nodes = s.pg->ListNodes();
  if (!nodes.ok()) return nodes.error();
  const int64_t now = s.pg->Now();
  const int64_t live_within = std::max(3 * s.options.publish_ms, s.options.lease_ms);
  std::vector<ClusterNode> out;
  for (auto& n : *nodes) {
    ClusterNode c;
    c.age_ms = std::max<int64_t>(0, now - n.heartbeat_ms);
    c.self = n.id == s.options.node;
    c.live = c.age_ms <= live_within;
    c.info = std::move(n);
    out.push_back(std::move(c));
  }
  return out;
}

Status JobService::ForgetNode(const std::string& id) {
  if (id == impl_->options.node) {
    return Error(ErrorKind::kBadInput, "node_is_self",
                 "node " + id + " is this node; stop it to take it out of the cluster");
  }
  auto nodes = Nodes();
  if (!nodes.ok()) return nodes.error();
  auto it = std::find_if(nodes->begin(), nodes->end(),
                         [&](const ClusterNode& n) { return n.info.id == id; });
  if (it == nodes->end()) {
    return Error(ErrorKind::kNotFound, "node_not_found", "no node " + id + " in the cluster");
  }
  if (it->live) {
    return Error(ErrorKind::kBadInput, "node_live",
                 "node " + id + " published itself " + std::to_string(it->age_ms) +
                     " ms ago; stop it first (a live node lists itself again)");
  }
  if (auto st = impl_->pg->RemoveNode(id); !st) return st;
  spdlog::info("node {} removed from the cluster (silent for {} s)", id, it->age_ms / 1000);
  return {};
}

void JobService::StopAdmitting() {
  impl_->admitting = false;
  std::lock_guard<std::mutex> lock(impl_->runtime_mu);
  if (impl_->runtime) impl_->runtime->scheduler().StopAdmitting();
}

bool JobService::admitting() const {
  return impl_->admitting;
}

int JobService::RetryAfterSeconds() const {
  const auto& q = impl_->options.runtime.scheduler.queue;
  const int64_t mean = impl_->mean_job_ms.load();
  return sched::RetryAfterSeconds(static_cast<size_t>(std::max<int64_t>(0, impl_->in_scheduler)),
                                  mean > 0 ? mean : q.default_job_ms, std::max(1, q.max_running));
}

}  // namespace steno::server
