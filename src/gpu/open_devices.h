// Picks and opens the device backend a process should use.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/result.h"
#include "gpu/device.h"

namespace steno::gpu {

struct OpenOptions {
  // --simulate-gpus: non-empty means simulated GPUs in `data_dir` instead of NVML.
  std::string simulate_spec;
  std::string data_dir;  // empty: steno::DataDir()
  // CUDA_VISIBLE_DEVICES to apply to NVML devices; nullopt: the process environment's.
  // Simulated devices are not CUDA devices and ignore the environment's value (a GPU host's
  // CUDA_VISIBLE_DEVICES would otherwise hide simulated cards); set this to test the mapping.
  std::optional<std::string> cuda_visible_devices;
  std::string nvml_library = "libnvidia-ml.so.1";
};

// Simulated devices if a spec is given (kBadInput for a bad spec, kUnavailable / kIo if the
// shared state cannot be used), else NVML, else no devices. Samples come out with CUDA
// ordinals (ApplyCudaVisibleDevices).
Result<std::unique_ptr<Devices>> OpenDevices(const OpenOptions& options);

}  // namespace steno::gpu
