// The jobs this node holds a lease on, and the runs it gave up because the store says they are
// not its own any more (another node claimed the job, or the lease was lost): the scheduler's
// outcome of a given-up run is not written to the store. One mutex; safe from any thread.
#pragma once

#include <set>
#include <string>

#include "core/mutex.h"
#include "sched/scheduler_types.h"

namespace steno::server {

class HeldJobs {
 public:
  // This node claimed the job when its run started (pending → loading).
  void Hold(const std::string& id) EXCLUDES(mu_);
  // The claim loop claimed it before handing it to the scheduler: the run's pending → loading
  // is not claimed again (TakePreclaimed).
  void HoldPreclaimed(const std::string& id) EXCLUDES(mu_);
  bool TakePreclaimed(const std::string& id) EXCLUDES(mu_);
  // The run ended (final, or back to pending), or never started: nothing is held any more.
  void Release(const std::string& id) EXCLUDES(mu_);
  bool Holds(const std::string& id) const EXCLUDES(mu_);
  std::set<std::string> All() const EXCLUDES(mu_);
  size_t Count() const EXCLUDES(mu_);

  // Gives the run up: from now on its updates are not written (TakeDropped).
  void Drop(const std::string& id) EXCLUDES(mu_);
  // True for every update of a dropped run, up to its end here (final or requeued).
  bool TakeDropped(const sched::JobUpdate& u) EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  std::set<std::string> held_ GUARDED_BY(mu_);
  std::set<std::string> preclaimed_ GUARDED_BY(mu_);
  std::set<std::string> dropped_ GUARDED_BY(mu_);
};

}  // namespace steno::server
