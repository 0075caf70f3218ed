// What the queue bound and Retry-After read about the jobs of this node: how many it handed to
// its scheduler that are not final yet, and how long a completed run takes on average. Lock-free;
// safe from any thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace steno::server {

class QueueStats {
 public:
  void Entered() { ++in_scheduler_; }
  void Left() { --in_scheduler_; }
  int64_t in_scheduler() const { return std::max<int64_t>(0, in_scheduler_.load()); }

  // A completed run of `ms`: an exponential mean (weight 1/8 for the newest).
  void ObserveRun(int64_t ms) {
    const int64_t m = mean_job_ms_.load();
    mean_job_ms_ = m == 0 ? ms : (m * 7 + ms) / 8;
  }
  int64_t mean_job_ms() const { return mean_job_ms_.load(); }  // 0: none completed yet

 private:
  std::atomic<int64_t> in_scheduler_{0};
  std::atomic<int64_t> mean_job_ms_{0};
};

}  // namespace steno::server
