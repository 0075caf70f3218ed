#include "runner/release_check.h"

#include <algorithm>
#include <thread>

#include <spdlog/spdlog.h>

#include "runner/runner_handle.h"

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
      report.leftover_bytes = std::max<int64_t>(0, above_baseline);
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

ReleaseReport UnloadRunner(RunnerHandle& runner, const gpu::DevicesFn& devices, ReleaseCheck check,
                           std::chrono::milliseconds grace,
                           const std::function<void(const ReleaseReport&)>& on_alert) {
  check.pid = runner.pid();
  check.used_before = -1;
  if (auto samples = devices()) {
    for (const auto& s : *samples) {
      if (s.index != check.device_index) continue;
      check.used_before = s.used_bytes;
      if (check.baseline_used >= 0) continue;
      int64_t held = 0;
      for (const auto& p : s.processes) {
        if (p.pid == check.pid && p.bytes > 0) held += p.bytes;
      }
      check.baseline_used = s.used_bytes - held;  // what the device returns to without it
    }
  }
  check.unload_started = std::chrono::steady_clock::now();
  runner.Stop(grace);
  ReleaseReport report = VerifyRelease(devices, check);
  if (check.used_before < 0) report.released_bytes = 0;  // unknown before: claim nothing
  if (report.released) {
    spdlog::info("runner {} unloaded: {} bytes released on cuda:{} in {} ms", check.pid,
                 report.released_bytes, check.device_index, report.release_ms);
  } else {
    spdlog::warn("alert: memory of runner {} not released on cuda:{} after {} ms: {}", check.pid,
                 check.device_index, report.release_ms, report.detail);
    if (on_alert) on_alert(report);
  }
  return report;
}

}  // namespace steno::runner
