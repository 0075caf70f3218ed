#include "server/lease_keeper.h"

#include <algorithm>
#include <chrono>

#include "core/log.h"

namespace steno::server {

LeaseKeeper::LeaseKeeper(std::string node, int64_t lease_ms, store::JobStore& jobs, HeldJobs& held,
                         JobWriter& writer, ClusterLink* link)
    : node_(std::move(node)),
      lease_ms_(lease_ms),
      jobs_(jobs),
      held_(held),
      writer_(writer),
      link_(link) {}

LeaseKeeper::~LeaseKeeper() {
  Stop();
}

void LeaseKeeper::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void LeaseKeeper::Stop() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void LeaseKeeper::Loop() {
  const auto period = std::chrono::milliseconds(std::max<int64_t>(lease_ms_ / 3, 100));
  while (true) {
    {
      MutexLock lock(mu_);
      const auto until = std::chrono::steady_clock::now() + period;
      while (!stop_ && cv_.WaitUntil(mu_, until)) {
      }
      if (stop_) break;
    }
    std::set<std::string> before = held_.All();
    if (auto renewed = jobs_.Heartbeat(node_, lease_ms_); !renewed.ok()) {
      spdlog::warn("lease heartbeat failed: {}", renewed.error().message);
    } else {
      for (const auto& id : renewed.value()) before.erase(id);
      StopLost(before);
    }
    if (link_) RequeueExpired();
  }
}

void LeaseKeeper::StopLost(const std::set<std::string>& ids) {
  for (const auto& id : ids) {
    auto job = jobs_.Get(id);
    if (job.ok() && IsFinal(job->state) && job->state != JobState::kCancelled) {
      held_.Release(id);  // finished here a moment ago
      continue;
    }
    if (job.ok() && job->lease_owner == node_) continue;  // claimed again by us
    const bool cancelled = job.ok() && job->state == JobState::kCancelled;
    // A user's cancel is routine; a lease lost to another node is worth a warning.
    spdlog::log(cancelled ? spdlog::level::info : spdlog::level::warn,
                "job {}: this node no longer holds its lease ({}); stopping its run", id,
                job.ok() ? JobStateName(job->state) : job.error().message);
    writer_.CancelRun(id, /*drop=*/!cancelled);
  }
}

void LeaseKeeper::RequeueExpired() {
  auto requeued = jobs_.RequeueExpired();
  if (!requeued.ok()) {
    spdlog::warn("requeueing expired leases failed: {}", requeued.error().message);
    return;
  }
  if (requeued->empty()) return;
  spdlog::info("requeued {} jobs whose node stopped renewing its lease", requeued->size());
  link_->AnnounceJobs();
}

}  // namespace steno::server
