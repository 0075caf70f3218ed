// Verified release: after a runner has exited, confirm on the device itself that its memory came
// back (DESIGN.md promise 2). On NVML the driver's per-process list and used memory are the
// truth; on a simulated device the simulation's are.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "gpu/device.h"

namespace steno::runner {

struct ReleaseReport {
  bool released = false;       // pid gone from the device and used memory back near the baseline
  int64_t released_bytes = 0;  // used memory before the unload minus used memory now
  int64_t release_ms = 0;      // from `unload_started` until verified (or until giving up)
  int64_t leftover_bytes = 0;  // not released: the device's used bytes above the baseline
  std::string detail;          // why not, when released is false
};

struct ReleaseCheck {
  int device_index = 0;       // CUDA ordinal, as in DeviceSample::index
  int pid = 0;                // the runner that held the memory
  int64_t used_before = 0;    // the device's used bytes just before the unload
  int64_t baseline_used = 0;  // the device's used bytes before the runner loaded
  int64_t tolerance_bytes = 64ll << 20;
  std::chrono::steady_clock::time_point unload_started;
  std::chrono::milliseconds timeout{5000};
  std::chrono::milliseconds poll{10};
};

// Polls `devices` until the release is verified or the timeout passes. Blocks; call it off the
// scheduler thread. Not released in time is an alert for the caller to raise.
ReleaseReport VerifyRelease(const gpu::DevicesFn& devices, const ReleaseCheck& check);

class RunnerHandle;

// Unload: Stop() the runner (exit request, SIGKILL after `grace`, reap), then VerifyRelease.
// `check.pid`, `used_before` and `unload_started` are filled in here. A release that is not
// verified is logged as an alert and handed to `on_alert` (the alerts system's hook).
ReleaseReport UnloadRunner(RunnerHandle& runner, const gpu::DevicesFn& devices, ReleaseCheck check,
                           std::chrono::milliseconds grace,
                           const std::function<void(const ReleaseReport&)>& on_alert = {});

}  // namespace steno::runner
