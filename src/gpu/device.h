// GPU devices as steno sees them: one sample per device (identity, memory, telemetry and the
// per-process memory list) from a Devices backend (NVML, simulated, or none).
//
// The scheduler does not call a backend directly: it is given a DevicesFn (the "getGpuFn" seam
// of Ollama's scheduler) so tests swap in scripted devices. Backends are safe to call from any
// thread; a sample is a copy and never changes after it is returned.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"

namespace steno::gpu {

// Memory one process holds on one device, as the driver (or the simulation) accounts it.
struct ProcessMemory {
  int pid = 0;
  int64_t bytes = 0;  // -1 when the driver does not say (e.g. no permission to see it)
};

struct DeviceSample {
  // The CUDA ordinal: `cuda:<index>` as steno's users and runners name the device, after
  // CUDA_VISIBLE_DEVICES (see visible_devices.h). Devices hidden by it are not sampled at all.
  int index = 0;
  // The backend's own index: NVML's index, or the position in a --simulate-gpus spec.
  // NVML order and CUDA order differ in general; only uuid and pci_bus_id identify a card.
  int physical_index = 0;
  std::string uuid;        // "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6"
  std::string pci_bus_id;  // "00000000:01:00.0" (NVML's form: 8-digit domain, upper-case hex)
  std::string name;        // "NVIDIA H100 80GB HBM3"
  bool simulated = false;

  int64_t total_bytes = 0;
  int64_t used_bytes = 0;  // by anyone, driver reservations included
  int64_t free_bytes = 0;

  // Telemetry; -1 where the device or driver does not report it.
  int gpu_utilization_percent = -1;     // share of the last sample period a kernel ran
  int memory_utilization_percent = -1;  // share of it the memory controller was busy
  int temperature_c = -1;
  double power_watts = -1;
  double power_limit_watts = -1;

  // Compute processes holding memory here. processes_known is false when the driver would not
  // list them; then nothing can be attributed to a pid and all used memory counts as external.
  std::vector<ProcessMemory> processes;
  bool processes_known = true;
};

// `cuda:<index>`, the name users, flags and runners use for a device.
std::string DeviceName(const DeviceSample& sample);

// A source of device samples.
class Devices {
 public:
  virtual ~Devices() = default;
  // "nvml", "simulated" or "none": for logs and `steno gpus`.
  virtual std::string Backend() const = 0;
  // One sample of every visible device, ordered by CUDA ordinal. An empty list means no GPU
  // (steno runs on the CPU); an error means the backend failed this time (retry next period).
  virtual Result<std::vector<DeviceSample>> Sample() = 0;
};

// The seam the scheduler takes: how to read the devices now.
using DevicesFn = std::function<Result<std::vector<DeviceSample>>()>;

// Wraps a backend as a DevicesFn; the function keeps the backend alive.
DevicesFn AsDevicesFn(std::shared_ptr<Devices> devices);

// A device's used memory split between steno's own processes and everyone else.
struct MemorySplit {
  int64_t ours = 0;      // Σ bytes of listed processes for which is_ours(pid) holds
  int64_t external = 0;  // used − ours: other tenants, driver reservations, unlisted processes
};

// is_ours says whether a pid is one of steno's (the supervisor knows its runners' pids; a
// separate CLI process compares executables, see owner_process.h). "External" is deliberately
// used − ours rather than Σ of the other listed processes: memory nobody lists (other
// containers' processes, the driver's own) is just as unavailable to steno.
MemorySplit SplitMemory(const DeviceSample& sample, const std::function<bool(int pid)>& is_ours);

}  // namespace steno::gpu
