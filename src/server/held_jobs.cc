#include "server/held_jobs.h"

namespace steno::server {

void HeldJobs::Hold(const std::string& id) {
  MutexLock lock(mu_);
  held_.insert(id);
}

void HeldJobs::HoldPreclaimed(const std::string& id) {
  MutexLock lock(mu_);
  held_.insert(id);
  preclaimed_.insert(id);
}

bool HeldJobs::TakePreclaimed(const std::string& id) {
  MutexLock lock(mu_);
  return preclaimed_.erase(id) > 0;
}

void HeldJobs::Release(const std::string& id) {
  MutexLock lock(mu_);
  held_.erase(id);
  preclaimed_.erase(id);
}

bool HeldJobs::Holds(const std::string& id) const {
  MutexLock lock(mu_);
  return held_.count(id) > 0;
}

size_t HeldJobs::Count() const {
  MutexLock lock(mu_);
  return held_.size();
}

std::set<std::string> HeldJobs::All() const {
  MutexLock lock(mu_);
  return held_;
}

void HeldJobs::Drop(const std::string& id) {
  MutexLock lock(mu_);
  held_.erase(id);
  dropped_.insert(id);
}

bool HeldJobs::TakeDropped(const sched::JobUpdate& u) {
  MutexLock lock(mu_);
  auto it = dropped_.find(u.job.id);
  if (it == dropped_.end()) return false;
  if (u.kind == sched::JobUpdate::Kind::kState &&
      (IsFinal(u.job.state) || u.job.state == JobState::kPending)) {
    dropped_.erase(it);
  }
  return true;
}

}  // namespace steno::server
