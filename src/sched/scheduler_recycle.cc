// SchedulerState: recycling (runner/recycle_policy.h) — a runner past its job limit, or whose
// memory grew, is replaced by a fresh one.
#include <algorithm>

#include "core/log.h"
#include "sched/scheduler_state.h"

namespace steno::sched {

void SchedulerState::MaybeRecycle(RunnerEntry& old) {
  if (old.info.state != RunnerState::kReady || old.draining) return;
  const RunnerView& v = old.info.view;
  runner::RunnerUsage usage{.jobs_done = old.info.jobs_done};
  if (old.first_reading > 0) {
    usage.bytes_now = std::max<int64_t>(0, ReadingOf(old));
    const int64_t charged = v.weights_bytes + v.streams * v.stream_bytes;
    usage.bytes_at_ready =
        old.first_reading + std::max<int64_t>(0, charged - old.charged_at_first_reading);
  }
  const std::string why = runner::RecycleReason(usage, config_.recycle);
  if (why.empty()) return;
  const int64_t id = v.id;
  spdlog::info("recycling runner {} ({} on {}): {}", id, v.model, v.device, why);
  const std::string model = v.model;
  const std::string device = v.device;
  const bool pinned = old.keep_alive.pinned();
  const int keep_alive_s = old.info.keep_alive_s;
  // No new jobs from here; unloaded (release verified by the backend) once its jobs end.
  Drain(old, "recycled");
  // The replacement, where it fits now; else a queued job of the model starts one once the old
  // runner's memory is back.
  const PlacementRequest req = RequestFor(model, device, Priority::kNormal);
  for (const DeviceView& d : BuildDevices()) {
    if (d.name != device) continue;
    const bool fits = d.cpu ? d.cores.Fits(1) : d.memory.Fits(NewRunnerBytes(req, d));
    if (!fits) {
      spdlog::info("the replacement for runner {} waits for its memory", id);
      return;
    }
  }
  const MemoryEstimate est = EstimateOn(model, device);
  auto fresh = StartRunner(model, device, est.weights_bytes, est.stream_bytes, keep_alive_s);
  if (fresh.ok() && pinned) {
    (*fresh)->keep_alive.Pin();
    ArmKeepAlive(**fresh);
  }
}

int64_t SchedulerState::ReadingOf(const RunnerEntry& r) const {
  int64_t sum = 0;
  bool seen = false;
  for (const auto& s : samples_) {
    if (gpu::DeviceName(s) != r.info.view.device || !s.processes_known) continue;
    for (const auto& p : s.processes) {
      if (p.bytes < 0 ||
          std::find(r.info.pids.begin(), r.info.pids.end(), p.pid) == r.info.pids.end()) {
        continue;
      }
      sum += p.bytes;
      seen = true;
    }
  }
  return seen ? sum : -1;
}

void SchedulerState::CheckGrowth() {
  if (config_.recycle.max_growth_ratio <= 0) return;
  std::vector<int64_t> ids;
  for (auto& [id, r] : runners_) {
    if (r.info.state != RunnerState::kReady || r.info.pids.empty() || r.draining) continue;
    if (auto spec = model_specs_.find(r.info.view.model);
        spec != model_specs_.end() && !spec->second.recycle_on_growth) {
      continue;
    }
    if (r.first_reading <= 0) {
      const int64_t reading = ReadingOf(r);
      if (reading <= 0) continue;
      r.first_reading = reading;
      r.charged_at_first_reading =
          r.info.view.weights_bytes + r.info.view.streams * r.info.view.stream_bytes;
    }
    ids.push_back(id);
  }
  for (int64_t id : ids) {
    if (auto it = runners_.find(id); it != runners_.end()) MaybeRecycle(it->second);
  }
}

}  // namespace steno::sched
