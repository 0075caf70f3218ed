#include "gpu/sample_json.h"

namespace steno::gpu {
namespace {

using json = nlohmann::ordered_json;

json OrNull(int v) {
  return v < 0 ? json(nullptr) : json(v);
}
json OrNull(double v) {
  return v < 0 ? json(nullptr) : json(v);
}

}  // namespace

json SampleJson(const DeviceSample& s, const std::function<bool(int pid)>& is_ours,
                const ReserveConfig& reserve, double safety_factor) {
  const MemorySplit split = SplitMemory(s, is_ours);
  const int64_t reserved = reserve.For(s.index);
  json processes = nullptr;
  if (s.processes_known) {
    processes = json::array();
    for (const auto& p : s.processes) {
      processes.push_back({{"pid", p.pid},
                           {"used_bytes", p.bytes < 0 ? json(nullptr) : json(p.bytes)},
                           {"ours", is_ours(p.pid)}});
    }
  }
  return {{"device", DeviceName(s)},
          {"index", s.index},
          {"physical_index", s.physical_index},
          {"uuid", s.uuid},
          {"pci_bus_id", s.pci_bus_id},
          {"name", s.name},
          {"simulated", s.simulated},
          {"total_bytes", s.total_bytes},
          {"used_bytes", s.used_bytes},
          {"free_bytes", s.free_bytes},
          {"ours_bytes", split.ours},
          {"external_bytes", split.external},
          {"reserved_bytes", reserved},
          {"allocatable_bytes", AllocatableBytes(s.total_bytes, reserved, safety_factor)},
          {"gpu_utilization_percent", OrNull(s.gpu_utilization_percent)},
          {"memory_utilization_percent", OrNull(s.memory_utilization_percent)},
          {"temperature_c", OrNull(s.temperature_c)},
          {"power_watts", OrNull(s.power_watts)},
          {"power_limit_watts", OrNull(s.power_limit_watts)},
          {"processes", processes}};
}

}  // namespace steno::gpu
