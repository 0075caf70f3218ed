#include "sched/vram_ledger.h"

#include <algorithm>
#include <unordered_set>

namespace steno::sched {

VramLedger BuildLedger(const gpu::DeviceSample& sample, const std::vector<RunnerCharge>& charges,
                       const gpu::ReserveConfig& reserve, double safety_factor) {
  VramLedger l;
  l.device_index = sample.index;
  l.total = sample.total_bytes;
  l.reserved = reserve.For(sample.index);
  l.allocatable = gpu::AllocatableBytes(l.total, l.reserved, safety_factor);

  std::unordered_set<int> ours;
  for (const auto& c : charges) {
    l.allocated += c.Bytes();
    for (int pid : c.pids) {
      if (pid > 0) ours.insert(pid);
    }
  }

  // With a per-process list, external is what the driver does not attribute to our pids. If the
  // list is missing, or hides the size of one of ours, our share can only be our own charges.
  bool list_usable = sample.processes_known;
  for (const auto& p : sample.processes) {
    if (ours.count(p.pid) && p.bytes < 0) list_usable = false;
  }
  if (list_usable) {
    l.external = gpu::SplitMemory(sample, [&](int pid) { return ours.count(pid) > 0; }).external;
  } else {
    l.external = std::max<int64_t>(0, sample.used_bytes - l.allocated);
  }

  l.available = std::max<int64_t>(0, l.allocatable - l.allocated - l.external);
  l.usage_percent = l.allocatable > 0 ? 100.0 * static_cast<double>(l.allocated) /
                                            static_cast<double>(l.allocatable)
                                      : 0.0;
  return l;
}

VramLedger Charge(VramLedger l, int64_t bytes) {
  l.allocated += bytes;
  l.available = std::max<int64_t>(0, l.allocatable - l.allocated - l.external);
  l.usage_percent = l.allocatable > 0 ? 100.0 * static_cast<double>(l.allocated) /
                                            static_cast<double>(l.allocatable)
                                      : 0.0;
  return l;
}

CpuLedger BuildCpuLedger(int cores, const std::vector<CpuCharge>& charges) {
  CpuLedger l;
  l.cores = std::max(0, cores);
  for (const auto& c : charges) {
    l.used_threads += CpuThreadsHeld(c.streams, c.busy_threads);
    l.busy_threads += c.busy_threads;
  }
  l.available_threads = std::max(0, l.cores - l.used_threads);
  return l;
}

CpuLedger Charge(CpuLedger l, int threads) {
  l.used_threads = std::max(0, l.used_threads + threads);
  l.available_threads = std::max(0, l.cores - l.used_threads);
  return l;
}

}  // namespace steno::sched
