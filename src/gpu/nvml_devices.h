// Real NVIDIA GPUs through NVML. steno's supervisor only ever talks to NVML, never to CUDA, so
// it holds no CUDA context and no GPU memory of its own.
#pragma once

#include <memory>
#include <string>

#include "core/result.h"
#include "gpu/device.h"
#include "gpu/nvml_api.h"

namespace steno::gpu {

// Samples every GPU NVML reports, in NVML index order (index == physical_index; see
// ApplyCudaVisibleDevices for CUDA ordinals). A device NVML cannot read (lost, no permission)
// is left out of that sample and logged once. Values a device does not report (utilization,
// temperature, power on some boards; per-process memory without permission) are -1 / unknown.
class NvmlDevices : public Devices {
 public:
  // Calls Init on `api`; kUnavailable if NVML refuses (no driver loaded, no device node).
  // Takes ownership: Shutdown and dlclose happen when the object dies.
  static Result<std::unique_ptr<NvmlDevices>> Create(nvml::Api api);
  ~NvmlDevices() override;

  std::string Backend() const override { return "nvml"; }
  Result<std::vector<DeviceSample>> Sample() override;

 private:
  explicit NvmlDevices(nvml::Api api);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Devices of a host with no GPU (or no NVML): always an empty list, backend "none".
std::unique_ptr<Devices> NoDevices();

// NVML if `library` loads and initializes, otherwise NoDevices() after one info log line saying
// why (steno then runs on the CPU). Never fails.
std::unique_ptr<Devices> OpenNvmlDevices(const std::string& library = "libnvidia-ml.so.1");

}  // namespace steno::gpu
