#include "sched/placement.h"

#include <algorithm>

namespace steno::sched {
namespace {

double Clamp01(double v) {
  return std::clamp(v, 0.0, 1.0);
}

double PriorityValue(Priority p) {
  switch (p) {
    case Priority::kHigh: return 1.0;
    case Priority::kNormal: return 0.5;
    case Priority::kLow: return 0.0;
  }
  return 0.5;
}

// Room for `bytes` more (a GPU), or on the CPU the cores `req`'s job computes on at least, and
// one for a new stream to hold when it needs one (`new_stream`: a new runner's first, or one
// more).
bool Fits(const DeviceView& d, const PlacementRequest& req, int64_t bytes, bool new_stream) {
  if (!d.cpu) return d.memory.Fits(bytes);
  return d.cores.idle_threads() >= req.cpu_threads && (!new_stream || d.cores.Fits(1));
}

int64_t StreamBytes(const RunnerView& r, const PlacementRequest& req) {
  return r.stream_bytes > 0 ? r.stream_bytes : req.stream_bytes;
}

const DeviceView* FindDevice(const std::vector<DeviceView>& devices, const std::string& name) {
  for (const auto& d : devices) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

bool HoldsModel(const DeviceView& d, const std::vector<RunnerView>& runners,
                const std::string& model) {
  return std::any_of(runners.begin(), runners.end(),
                     [&](const RunnerView& r) { return r.device == d.name && r.model == model; });
}

// Allowed devices, best score first (ties: the order given, i.e. by ordinal).
std::vector<const DeviceView*> Ranked(const PlacementRequest& req,
                                      const std::vector<DeviceView>& devices,
                                      const std::vector<RunnerView>& runners,
                                      const PlacementPolicy& policy) {
  std::vector<std::pair<double, const DeviceView*>> scored;
  for (const auto& d : devices) {
    if (!DeviceAllowed(req, d) || !ComputeRoom(req, d)) continue;
    scored.emplace_back(ScoreDevice(d, req, HoldsModel(d, runners, req.model), policy), &d);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<const DeviceView*> out;
  for (const auto& [score, d] : scored) out.push_back(d);
  return out;
}

}  // namespace

bool DeviceAllowed(const PlacementRequest& r, const DeviceView& d) {
  if (!r.device.empty() && r.device != d.name) return false;
  if (r.allowed_devices.empty()) return !d.only_if_allowed;
  return std::find(r.allowed_devices.begin(), r.allowed_devices.end(), d.name) !=
         r.allowed_devices.end();
}

bool ComputeRoom(const PlacementRequest& r, const DeviceView& d) {
  return !r.needs_compute || d.compute_limit <= 0 || d.running < d.compute_limit;
}

int CpuThreadsFor(int free, int least, int most, int waiting, int room) {
  most = std::max(1, most);
  least = std::clamp(least, 1, most);
  int starters = std::min(std::max(1, waiting), std::max(1, free / least));
  if (room >= 0) starters = std::min(starters, std::max(1, room));
  return std::clamp(free / starters, least, most);
}

const char* PlacementActionName(PlacementAction action) {
  switch (action) {
    case PlacementAction::kUseStream: return "use_stream";
    case PlacementAction::kAddStream: return "add_stream";
    case PlacementAction::kNewRunner: return "new_runner";
    case PlacementAction::kEvict: return "evict";
    case PlacementAction::kWait: return "wait";
  }
  return "wait";
}

double ScoreDevice(const DeviceView& d, const PlacementRequest& request, bool holds_model,
                   const PlacementPolicy& policy) {
  const ScoreWeights& w = policy.weights;
  double free_ratio = 0;
  if (d.cpu) {
    free_ratio =
        d.cores.cores > 0 ? static_cast<double>(d.cores.available_threads) / d.cores.cores : 0;
  } else if (d.memory.allocatable > 0) {
    free_ratio =
        static_cast<double>(d.memory.available) / static_cast<double>(d.memory.allocatable);
  }
  const double idle =
      d.utilization_percent < 0 ? 0.5 : 1.0 - Clamp01(d.utilization_percent / 100.0);
  double headroom = 0.5;
  if (d.temperature_c >= 0 && policy.max_temperature_c > 0) {
    headroom = Clamp01(static_cast<double>(policy.max_temperature_c - d.temperature_c) /
                       policy.max_temperature_c);
  }
  return w.free_memory * Clamp01(free_ratio) + w.idle * idle + w.temperature * headroom +
         w.priority * PriorityValue(request.priority) * idle + (holds_model ? w.holds_model : 0);
}

PlacementDecision Place(const PlacementRequest& req, const std::vector<DeviceView>& devices,
                        const std::vector<RunnerView>& runners, const PlacementPolicy& policy,
                        int64_t now_ms) {
  PlacementDecision out;
  if (!req.device.empty() && !FindDevice(devices, req.device)) {
    out.reason = "device " + req.device + " is not available";
    return out;
  }

  // 1. A free stream on a runner of the model: the least busy one.
  const RunnerView* best = nullptr;
  for (const auto& r : runners) {
    if (r.model != req.model || r.busy_streams >= r.streams) continue;
    const DeviceView* d = FindDevice(devices, r.device);
    if (!d || !DeviceAllowed(req, *d) || !ComputeRoom(req, *d)) continue;
    if (d->cpu && !Fits(*d, req, 0, false)) continue;
    if (!best || r.busy_streams < best->busy_streams) best = &r;
  }
  if (best) {
    out.action = PlacementAction::kUseStream;
    out.runner_id = best->id;
    return out;
  }

  const std::vector<const DeviceView*> ranked = Ranked(req, devices, runners, policy);

  // 2. One more stream on a runner of the model, on the best device where it fits.
  const int max_streams = req.max_streams > 0 ? req.max_streams : policy.max_streams_per_runner;
  for (const DeviceView* d : ranked) {
    const RunnerView* pick = nullptr;
    for (const auto& r : runners) {
      if (r.model != req.model || r.device != d->name) continue;
      if (r.streams >= max_streams) continue;
      if (!Fits(*d, req, StreamBytes(r, req), true)) continue;
      if (!pick || r.streams < pick->streams) pick = &r;
    }
    if (pick) {
      out.action = PlacementAction::kAddStream;
      out.runner_id = pick->id;
      return out;
    }
  }

  // 3. A new runner where weights + one stream fit.
  for (const DeviceView* d : ranked) {
    if (Fits(*d, req, NewRunnerBytes(req, *d), true)) {
      out.action = PlacementAction::kNewRunner;
      out.device = d->name;
      return out;
    }
  }

  // 4. Evict idle runners until the new runner fits, on the best device where that works.
  for (const DeviceView* d : ranked) {
    std::vector<int64_t> victims =
        ChooseVictims(req, *d, runners, EvictionScope::kIdle, policy, now_ms);
    if (!victims.empty()) {
      out.action = PlacementAction::kEvict;
      out.device = d->name;
      out.evict = std::move(victims);
      return out;
    }
  }

  // 5. Wait for a stream to free, memory to appear or a job to end.
  const bool any_allowed = std::any_of(devices.begin(), devices.end(),
                                       [&](const DeviceView& d) { return DeviceAllowed(req, d); });
  if (!any_allowed) {
    out.reason = "no device " + req.model + " may run on is in use";
  } else if (ranked.empty()) {
    out.reason = "every device " + req.model + " may run on is at its compute limit";
  } else {
    out.reason = "no device has room for " + req.model +
                 " (weights + one stream: " + std::to_string(req.weights_bytes + req.stream_bytes) +
                 " bytes), even after evicting idle runners";
  }
  return out;
}

int64_t NewRunnerBytes(const PlacementRequest& req, const DeviceView& d) {
  return req.weights_bytes + req.stream_bytes + (d.cpu ? 0 : req.gpu_overhead_bytes);
}

std::vector<int64_t> ChooseVictims(const PlacementRequest& req, const DeviceView& d,
                                   const std::vector<RunnerView>& runners, EvictionScope scope,
                                   const PlacementPolicy& policy, int64_t now_ms) {
  std::vector<const RunnerView*> candidates;
  for (const auto& r : runners) {
    if (r.device != d.name || r.pinned) continue;
    if (now_ms - r.loaded_ms < policy.min_residency_ms) continue;
    if (scope == EvictionScope::kIdle) {
      if (!r.idle() || r.wanted || now_ms - r.last_used_ms < policy.min_idle_ms) continue;
    }
    candidates.push_back(&r);
  }
  std::sort(candidates.begin(), candidates.end(), [](const RunnerView* a, const RunnerView* b) {
    if (a->busy_streams != b->busy_streams) return a->busy_streams < b->busy_streams;
    return a->last_used_ms != b->last_used_ms ? a->last_used_ms < b->last_used_ms : a->id < b->id;
  });
  VramLedger memory = d.memory;
  CpuLedger cores = d.cores;
  const int64_t need = NewRunnerBytes(req, d);
  std::vector<int64_t> victims;
  for (const RunnerView* r : candidates) {
    memory = Charge(memory, -(r->weights_bytes + r->streams * r->stream_bytes));
    cores = Charge(cores, -CpuThreadsHeld(r->streams, r->busy_threads));
    victims.push_back(r->id);
    if (d.cpu ? cores.Fits(1) : memory.Fits(need)) return victims;
  }
  return {};
}

}  // namespace steno::sched
