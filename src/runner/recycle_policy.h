// When to replace a runner with a fresh one: libraries that leak slowly (allocator
// fragmentation, driver caches) are bounded by restarting the process, which returns everything.
// A pure function: the scheduler asks it after each job a runner completes and after each device
// sample; when it names a reason, the scheduler starts the replacement (where it fits beside the
// old runner; otherwise queued jobs start one once the old one is gone), sends the old runner no
// new jobs and unloads it, with its release verified, once its jobs end.
#pragma once

#include <cstdint>
#include <string>

namespace steno::runner {

struct RecyclePolicy {
  int64_t max_jobs = 1000;        // replace after this many jobs (0: never for this reason)
  double max_growth_ratio = 1.5;  // replace when memory grew past this × its size at ready
                                  // (0: never for this reason)
};

struct RunnerUsage {
  int64_t jobs_done = 0;
  // Its size when it was ready: the device's first reading of its process, plus what it was
  // charged since for streams added (those are growth it was asked for). 0: unknown.
  int64_t bytes_at_ready = 0;
  int64_t bytes_now = 0;  // the device's latest reading of its process
};

// Empty when the runner should stay; otherwise the reason to replace it (for the log).
std::string RecycleReason(const RunnerUsage& usage, const RecyclePolicy& policy);

}  // namespace steno::runner
