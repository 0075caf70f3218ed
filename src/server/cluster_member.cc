#include "server/cluster_member.h"

#include <algorithm>

#include "core/log.h"

namespace steno::server {
namespace {

// A stream of a job running elsewhere that heard nothing for this long re-reads the job.
constexpr int64_t kQuietStreamMs = 2000;

}  // namespace

ClusterMember::ClusterMember(ClusterMemberParts parts) : p_(std::move(parts)) {}

ClusterHooks ClusterMember::Hooks() {
  ClusterHooks hooks;
  hooks.claim = [this] { ClaimPlaceable(); };
  hooks.on_event = [this](const nlohmann::json& event) { OnRemoteEvent(event); };
  hooks.tick = [this] { ResyncRemote(); };
  hooks.describe = [this] { return Describe(); };
  return hooks;
}

void ClusterMember::SetNodeDescriber(NodeDescriber describe) {
  MutexLock lock(describe_mu_);
  describe_ = std::move(describe);
}

store::NodeInfo ClusterMember::Describe() {
  NodeDescriber describe;
  {
    MutexLock lock(describe_mu_);
    describe = describe_;
  }
  // Called with no lock held: it samples the devices.
  return describe ? describe() : store::NodeInfo{};
}

bool ClusterMember::HasDevice(const std::string& device) {
  if (device.empty() || device == "auto") return true;
  auto snapshot = p_.runtime->With([](Runtime& rt) { return rt.scheduler().Snapshot(); },
                                   sched::SchedulerSnapshot{});
  return std::any_of(snapshot.devices.begin(), snapshot.devices.end(),
                     [&](const sched::DeviceLedger& d) { return d.name == device; });
}

void ClusterMember::OnRemoteEvent(const nlohmann::json& event) {
  const std::string id = event.value("id", "");
  const std::string kind = event.value("kind", "");
  if (id.empty()) return;
  const bool subscribed = p_.live->TouchStream(id);
  const bool ours = p_.held->Holds(id);
  if (!subscribed && !(ours && kind == "state")) return;
  auto job = p_.jobs->Get(id);
  if (!job.ok()) return;
  if (ours && job->state == JobState::kCancelled) p_.writer->CancelRun(id, /*drop=*/false);
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
  p_.live->Deliver(ev);
}

void ClusterMember::ResyncRemote() {
  for (const auto& id : p_.live->QuietStreams(kQuietStreamMs)) {
    if (p_.held->Holds(id)) continue;  // running here: its events are ours
    auto job = p_.jobs->Get(id);
    if (!job.ok()) continue;
    JobEvent ev;
    ev.job = *job;
    p_.live->Deliver(ev);
  }
}

void ClusterMember::ClaimPlaceable() {
  while (p_.requests->admitting()) {
    auto pending = p_.jobs->PendingByModel();
    if (!pending.ok()) {
      spdlog::warn("claim: cannot read the queue: {}", pending.error().message);
      return;
    }
    std::vector<std::string> models;
    for (const store::PendingModel& m : *pending) {
      if (m.due > 0) models.push_back(m.model);
    }
    if (models.empty()) return;
    auto placeable = p_.runtime->With([&](Runtime& rt) { return rt.scheduler().Placeable(models); },
                                      std::vector<std::string>{});
    if (placeable.empty()) return;
    store::ClaimRequest claim;
    claim.owner = p_.node;
    claim.lease_ms = p_.lease_ms;
    claim.models = placeable;
    auto claimed = p_.jobs->Claim(claim);
    if (!claimed.ok()) {
      spdlog::warn("claim failed: {}", claimed.error().message);
      return;
    }
    if (!*claimed) return;  // taken by other nodes, or not due yet
    RunClaimed(**claimed);
  }
}

void ClusterMember::RunClaimed(const Job& job) {
  p_.held->HoldPreclaimed(job.id);
  Status st = HasDevice(job.params.device) ? p_.requests->Schedule(job)
                                           : Status(Error(ErrorKind::kUnavailable, "no_device",
                                                          "this node has no " + job.params.device));
  if (st) return;
  p_.held->Release(job.id);
  // Another node may run it (it has the device; its fetch of the upload works): hand it back.
  spdlog::warn("job {} handed back to the queue: {}", job.id, st.error().message);
  store::RequeueRequest r;
  r.id = job.id;
  r.owner = p_.node;
  r.reason = st.error();
  r.delay_ms = st.error().code == "shutting_down" ? 0 : 5'000;
  if (auto back = p_.jobs->Requeue(r); !back) {
    spdlog::warn("job {}: could not hand it back: {}", job.id, back.error().message);
  }
}

Result<std::vector<ClusterNode>> ClusterMember::Nodes() {
  auto nodes = p_.cluster->ListNodes();
  if (!nodes.ok()) return nodes.error();
  const int64_t now = p_.cluster->Now();
  const int64_t live_within = std::max(3 * p_.publish_ms, p_.lease_ms);
  std::vector<ClusterNode> out;
  for (auto& n : *nodes) {
    ClusterNode c;
    c.age_ms = std::max<int64_t>(0, now - n.heartbeat_ms);
    c.self = n.id == p_.node;
    c.live = c.age_ms <= live_within;
    c.info = std::move(n);
    out.push_back(std::move(c));
  }
  return out;
}

Status ClusterMember::ForgetNode(const std::string& id) {
  if (id == p_.node) {
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
  if (auto st = p_.cluster->RemoveNode(id); !st) return st;
  spdlog::info("node {} removed from the cluster (silent for {} s)", id, it->age_ms / 1000);
  return {};
}

}  // namespace steno::server
