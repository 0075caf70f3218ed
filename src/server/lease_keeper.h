// LeaseKeeper: renews this node's leases every third of the lease length, and stops the runs
// whose lease a heartbeat did not renew (cancelled by a user, perhaps on another node; finished
// meanwhile; or requeued after the lease ran out, so someone else may run them). On a shared
// store it also requeues the expired leases of other nodes (a node that died) and tells every
// node they are claimable.
//
// One thread; one mutex (its stop flag), never held across a store call.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <thread>

#include "core/mutex.h"
#include "server/cluster_link.h"
#include "server/held_jobs.h"
#include "server/job_writer.h"
#include "store/job_store.h"

namespace steno::server {

class LeaseKeeper {
 public:
  // Every reference must outlive the keeper; `link` null on a single-node store.
  LeaseKeeper(std::string node, int64_t lease_ms, store::JobStore& jobs, HeldJobs& held,
              JobWriter& writer, ClusterLink* link);
  // Stop() if it was not called.
  ~LeaseKeeper();

  void Start();
  void Stop() EXCLUDES(mu_);

 private:
  void Loop() EXCLUDES(mu_);
  void StopLost(const std::set<std::string>& ids);
  void RequeueExpired();

  const std::string node_;
  const int64_t lease_ms_;
  store::JobStore& jobs_;
  HeldJobs& held_;
  JobWriter& writer_;
  ClusterLink* const link_;

  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace steno::server
