// JobService with other nodes and leases: lease heartbeats, requeueing expired leases, the claim
// loop of a shared store, other nodes' events, opening the shared store, and the nodes table.
#include "server/job_service_impl.h"

#include <algorithm>

#include "core/log.h"
#include "core/wall_clock.h"
#include "store/data_dir.h"
#include "store/open_job_store.h"
#include "store/pg_connection.h"
#include "store/retention.h"

namespace steno::server {

void JobService::Impl::OnRemoteEvent(const nlohmann::json& event) {
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

void JobService::Impl::ResyncRemote() {
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

void JobService::Impl::StopLost(const std::set<std::string>& ids) {
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

void JobService::Impl::HeartbeatLoop() {
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

void JobService::Impl::RequeueExpired() {
  auto requeued = jobs->RequeueExpired();
  if (!requeued.ok()) {
    spdlog::warn("requeueing expired leases failed: {}", requeued.error().message);
    return;
  }
  if (requeued->empty()) return;
  spdlog::info("requeued {} jobs whose node stopped renewing its lease", requeued->size());
  link->AnnounceJobs();
}

void JobService::Impl::ClaimPlaceable() {
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

void JobService::Impl::RunClaimed(const Job& job) {
  {
    std::lock_guard<std::mutex> l(held_mu);
    held.insert(job.id);
    preclaimed.insert(job.id);
  }
  Status st = HasDevice(job.params.device) ? Schedule(job)
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

Status JobService::Impl::OpenShared(const ServiceOptions& o) {
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
    return Error(ErrorKind::kConflict, "node_is_self",
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
    return Error(ErrorKind::kConflict, "node_live",
                 "node " + id + " published itself " + std::to_string(it->age_ms) +
                     " ms ago; stop it first (a live node lists itself again)");
  }
  if (auto st = impl_->pg->RemoveNode(id); !st) return st;
  spdlog::info("node {} removed from the cluster (silent for {} s)", id, it->age_ms / 1000);
  return {};
}

}  // namespace steno::server
