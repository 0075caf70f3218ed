// Wakes the threads waiting for jobs to end (JobRequests::Wait) whenever some job became final
// here. Waiters re-read the store: the signal says "look again", not which job ended.
#pragma once

#include <chrono>

#include "core/mutex.h"

namespace steno::server {

class JobEndSignal {
 public:
  void Notify() EXCLUDES(mu_) {
    MutexLock lock(mu_);
    ended_.SignalAll();
  }
  // Returns after a Notify, at `deadline`, or spuriously.
  void WaitUntil(std::chrono::steady_clock::time_point deadline) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    ended_.WaitUntil(mu_, deadline);
  }

 private:
  Mutex mu_;
  CondVar ended_;
};

}  // namespace steno::server
