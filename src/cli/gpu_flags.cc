#include "cli/gpu_flags.h"

#include "gpu/simulated_devices.h"

namespace steno::cli {

void AddGpuFlags(CLI::App& cmd, GpuFlags& flags) {
  cmd.add_option("--device", flags.device,
                 "Devices to use: auto, cpu, cuda (all GPUs) or cuda:N[,M...] (default auto)")
      ->envname("STENO_DEVICE");
  cmd.add_option("--simulate-gpus", flags.simulate_gpus,
                 "Simulate GPUs instead of using real ones, e.g. 2x24GiB,1x12GiB; their state is "
                 "shared through the data dir")
      ->envname("STENO_SIMULATE_GPUS");
  cmd.add_option("--reserve", flags.reserve,
                 "GPU memory never planned for: SIZE for every device or cuda:N=SIZE for one "
                 "(repeatable; default 512MiB)")
      ->envname("STENO_RESERVE");
  cmd.add_option("--safety-factor", flags.safety_factor,
                 "Share of (total - reserve) that steno plans with, above 0 and at most 1 "
                 "(default 0.9)")
      ->envname("STENO_SAFETY_FACTOR");
  cmd.add_option("--sample-interval", flags.sample_interval,
                 "How often devices are sampled, e.g. 500ms, 1s, 2.5s (default 1s)")
      ->envname("STENO_SAMPLE_INTERVAL");
}

Result<gpu::GpuConfig> ToGpuConfig(const GpuFlags& flags, const std::string& data_dir) {
  gpu::GpuConfig config;
  config.data_dir = data_dir;
  auto device = gpu::ParseDeviceSelection(flags.device);
  if (!device.ok()) return device.error();
  config.device = *device;
  if (!flags.simulate_gpus.empty()) {
    auto spec = gpu::ParseSimulatedGpuSpec(flags.simulate_gpus);
    if (!spec.ok()) return spec.error();
    config.simulate_spec = flags.simulate_gpus;
  }
  auto reserve = gpu::ParseReserve(flags.reserve);
  if (!reserve.ok()) return reserve.error();
  config.reserve = *reserve;
  auto factor = gpu::ParseSafetyFactor(flags.safety_factor);
  if (!factor.ok()) return factor.error();
  config.safety_factor = *factor;
  auto interval = gpu::ParseInterval(flags.sample_interval);
  if (!interval.ok()) return interval.error();
  config.sample_interval = *interval;
  return config;
}

Result<gpu::GpuConfig> ToRunnerGpuConfig(const GpuFlags& flags, const std::string& data_dir) {
  auto config = ToGpuConfig(flags, data_dir);
  if (!config) return config.error();
#ifndef STENO_HAVE_CUDA
  if (config->simulate_spec.empty()) {
    using Mode = gpu::DeviceSelection::Mode;
    if (config->device.mode == Mode::kAllCuda || config->device.mode == Mode::kCudaList) {
      return Error(ErrorKind::kBadInput, "no_cuda",
                   "this steno was built without CUDA; rebuild with make STENO_CUDA=1 or use "
                   "--device cpu");
    }
    config->device.mode = Mode::kCpu;
  }
#endif
  return config;
}

}  // namespace steno::cli
