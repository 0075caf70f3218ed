// ClusterMember: this node's part in a cluster sharing one job store (serve --store
// postgres://...). It exists only on a shared store (JobService::cluster() is null otherwise).
//  - The claim loop (ClusterLink's claim thread): while the scheduler can start a job of a model
//    that has jobs due, claim the first of them in queue order (FOR UPDATE SKIP LOCKED: nodes
//    never get the same job) and hand it to the scheduler already claimed. A node therefore
//    holds only jobs it runs now; the rest stay pending for whichever node has room. Every model
//    with a job due is considered, so a long queue of jobs no node here can run does not hide
//    the others.
//  - Other nodes' job events (ClusterLink's listening thread) reach this node's subscribers; a
//    cancel of a job this node runs stops the run at once. Streams of jobs running elsewhere
//    that heard nothing for 2 s re-read the job (a lost notification must not leave them
//    hanging).
//  - The nodes table: what this node publishes about itself, and every node as the cluster sees
//    it.
//
// One mutex (the describer), held only while it is swapped or copied, never while it runs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/mutex.h"
#include "core/result.h"
#include "server/cluster_link.h"
#include "server/held_jobs.h"
#include "server/job_requests.h"
#include "server/job_writer.h"
#include "server/live_events.h"
#include "server/runtime_slot.h"
#include "store/cluster_store.h"
#include "store/job_store.h"

namespace steno::server {

// A node as the cluster sees it: what it last published and how long ago (store clock).
struct ClusterNode {
  store::NodeInfo info;
  int64_t age_ms = 0;
  bool self = false;
  // It published within 3 publish periods (and at least the lease): a node that stopped
  // publishing (killed) stays listed, not live, until it returns or for an hour.
  bool live = false;
};

struct ClusterMemberParts {
  std::string node;
  int64_t lease_ms = 60'000;
  int64_t publish_ms = 2'000;
  store::JobStore* jobs = nullptr;
  store::ClusterStore* cluster = nullptr;
  ClusterLink* link = nullptr;
  RuntimeSlot* runtime = nullptr;
  LiveEvents* live = nullptr;
  HeldJobs* held = nullptr;
  JobWriter* writer = nullptr;
  JobRequests* requests = nullptr;
};

class ClusterMember {
 public:
  // Every pointer must be set and outlive this object.
  explicit ClusterMember(ClusterMemberParts parts);

  // What the link calls: claims, other nodes' events, the 1 s tick, this node's description.
  ClusterHooks Hooks();

  const std::string& node() const { return p_.node; }
  // What this node publishes about itself every publish_ms: its API URL and its devices, runners
  // and ledger as JSON documents (NodeInfo's fields; id and heartbeat are filled in by the link).
  // Set by the HTTP layer once it listens; until then the node publishes its name only.
  using NodeDescriber = std::function<store::NodeInfo()>;
  void SetNodeDescriber(NodeDescriber describe) EXCLUDES(describe_mu_);
  // Every node sharing the queue, by id, this one included (a node that left gracefully removed
  // itself).
  Result<std::vector<ClusterNode>> Nodes();
  // Removes a node that stopped publishing (killed, its machine gone) from the nodes table now
  // rather than after an hour; its jobs were requeued when their leases ran out. kNotFound
  // "node_not_found"; kConflict "node_live" for a node still publishing (it would list itself
  // again) or "node_is_self" for this one.
  Status ForgetNode(const std::string& id);

 private:
  store::NodeInfo Describe() EXCLUDES(describe_mu_);
  void ClaimPlaceable();
  // Hands a claimed job to the scheduler, or back to the queue if it cannot run here.
  void RunClaimed(const Job& job);
  // True when `device` (empty or auto: any) is one of this node's devices.
  bool HasDevice(const std::string& device);
  void OnRemoteEvent(const nlohmann::json& event);
  void ResyncRemote();

  const ClusterMemberParts p_;
  Mutex describe_mu_;
  NodeDescriber describe_ GUARDED_BY(describe_mu_);
};

}  // namespace steno::server
