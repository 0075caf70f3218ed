// The JSON form of device samples, shared by `steno gpus --json` and the HTTP API (/v1/gpus),
// so scripts see one schema. Unknown telemetry is null, never -1.
//
//   {"device": "cuda:0", "index": 0, "physical_index": 0, "uuid": "GPU-…",
//    "pci_bus_id": "00000000:01:00.0", "name": "…", "simulated": false,
//    "total_bytes": …, "used_bytes": …, "free_bytes": …, "ours_bytes": …, "external_bytes": …,
//    "reserved_bytes": …, "allocatable_bytes": …,
//    "gpu_utilization_percent": 0, "memory_utilization_percent": 0, "temperature_c": 35,
//    "power_watts": 60.0, "power_limit_watts": 300.0,
//    "processes": [{"pid": 123, "used_bytes": …, "ours": true}]}   // null if unknown
#pragma once

#include <functional>

#include <nlohmann/json.hpp>

#include "gpu/device.h"
#include "gpu/gpu_config.h"

namespace steno::gpu {

nlohmann::ordered_json SampleJson(const DeviceSample& sample,
                                  const std::function<bool(int pid)>& is_ours,
                                  const ReserveConfig& reserve, double safety_factor);

}  // namespace steno::gpu
