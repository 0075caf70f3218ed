// The GPU flags every command that uses devices shares (`steno gpus`, and `serve` /
// `transcribe` when they schedule on GPUs), each with its STENO_* variable; flags win.
//   --device auto|cpu|cuda|cuda:N[,M]   STENO_DEVICE
//   --simulate-gpus SPEC                STENO_SIMULATE_GPUS   e.g. 2x24GiB,1x12GiB
//   --reserve SIZE|cuda:N=SIZE          STENO_RESERVE         repeatable, default 512MiB
//   --safety-factor F                   STENO_SAFETY_FACTOR   default 0.9
//   --sample-interval DURATION          STENO_SAMPLE_INTERVAL default 1s
// Values are kept as text and checked by ToGpuConfig so that a bad value gets steno's own
// message (and exit code 2) rather than a generic parser error.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/result.h"
#include "gpu/gpu_config.h"

namespace steno::cli {

struct GpuFlags {
  std::string device = "auto";
  std::string simulate_gpus;
  std::vector<std::string> reserve;
  std::string safety_factor = "0.9";
  std::string sample_interval = "1s";
};

void AddGpuFlags(CLI::App& cmd, GpuFlags& flags);

// Parses and checks every value; the first bad one is returned (kBadInput).
Result<gpu::GpuConfig> ToGpuConfig(const GpuFlags& flags, const std::string& data_dir);

// ToGpuConfig for commands that start runners (`serve`, `transcribe`): a build without CUDA runs
// on the CPU under `auto` and refuses an explicit GPU (kBadInput "no_cuda") rather than silently
// using the CPU. Simulated GPUs need no CUDA.
Result<gpu::GpuConfig> ToRunnerGpuConfig(const GpuFlags& flags, const std::string& data_dir);

}  // namespace steno::cli
