// When to replace an idle runner with a fresh one: libraries that leak slowly (allocator
// fragmentation, driver caches) are bounded by restarting the process, which returns everything.
// A pure function: the scheduler calls it on each idle runner; tests call it directly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"
#include "runner/release_check.h"
#include "runner/runner_handle.h"

namespace steno::runner {

struct RecyclePolicy {
  int64_t max_jobs = 1000;        // replace after this many jobs (0: never for this reason)
  double max_growth_ratio = 1.5;  // replace when memory grew past this × its size at ready
                                  // (0: never for this reason)
};

struct RunnerUsage {
  bool busy = false;  // a runner with jobs is never recycled
  int64_t jobs_done = 0;
  int64_t bytes_at_ready = 0;  // measured when it reported ready
  int64_t bytes_now = 0;       // latest measurement (heartbeat RSS or device usage)
};

// Empty when the runner should stay; otherwise the reason to replace it (for the log).
std::string RecycleReason(const RunnerUsage& usage, const RecyclePolicy& policy);

// Recycling itself: unloads `old` (stop, reap, verify release as UnloadRunner does), then starts
// a fresh runner with `options`. The old runner must be idle. Its release report goes to
// `released` when given.
Result<std::unique_ptr<RunnerHandle>> ReplaceRunner(
    std::unique_ptr<RunnerHandle> old, const RunnerOptions& options, RunnerHandle::EventFn on_event,
    const gpu::DevicesFn& devices, const ReleaseCheck& check, std::chrono::milliseconds grace,
    ReleaseReport* released = nullptr);

}  // namespace steno::runner
