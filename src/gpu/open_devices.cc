#include "gpu/open_devices.h"

#include <cstdlib>

#include "core/paths.h"
#include "gpu/nvml_devices.h"
#include "gpu/simulated_devices.h"
#include "gpu/visible_devices.h"

namespace steno::gpu {

Result<std::unique_ptr<Devices>> OpenDevices(const OpenOptions& options) {
  std::optional<std::string> visible = options.cuda_visible_devices;
  if (!options.simulate_spec.empty()) {
    const std::string dir = options.data_dir.empty() ? steno::DataDir() : options.data_dir;
    auto sim = SimulatedDevices::Open(dir, options.simulate_spec);
    if (!sim.ok()) return sim.error();
    return ApplyCudaVisibleDevices(std::move(sim).value(), visible);
  }
  if (!visible) {
    if (const char* env = std::getenv("CUDA_VISIBLE_DEVICES")) visible = std::string(env);
  }
  return ApplyCudaVisibleDevices(OpenNvmlDevices(options.nvml_library), visible);
}

}  // namespace steno::gpu
