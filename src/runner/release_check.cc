#include "runner/release_check.h"

#include <algorithm>
#include <thread>

namespace steno::runner {

ReleaseReport VerifyRelease(const gpu::DevicesFn& devices, const ReleaseCheck& check) {
  using Clock = std::chrono::steady_clock;
  ReleaseReport report;
  const auto deadline = Clock::now() + check.timeout;
  for (;;) {
    auto samples = devices();
    const gpu::DeviceSample* dev = nullptr;
    if (samples) {
      for (const auto& s : *samples) {
        if (s.index == check.device_index) dev = &s;
      }
    }
    if (!samples) {
      report.detail = "device sampling failed: " + samples.error().message;
    } else if (!dev) {
      report.detail = "device cuda:" + std::to_string(check.device_index) + " disappeared";
    } else {
      const bool pid_listed =
          std::any_of(dev->processes.begin(), dev->processes.end(),
                      [&](const gpu::ProcessMemory& p) { return p.pid == check.pid; });
      report.released_bytes = check.used_before - dev->used_bytes;
      const int64_t above_baseline = dev->used_bytes - check.baseline_used;
      if (!pid_listed && above_baseline <= check.tolerance_bytes) {
        report.released = true;
        report.detail.clear();
      } else {
        report.detail = pid_listed ? "runner pid " + std::to_string(check.pid) +
                                         " still holds memory on the device"
                                   : std::to_string(above_baseline) +
                                         " bytes above the pre-load baseline remain in use";
      }
    }
    report.release_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - check.unload_started)
            .count();
    if (report.released || Clock::now() >= deadline) return report;
    std::this_thread::sleep_for(check.poll);
  }
}

}  // namespace steno::runner
