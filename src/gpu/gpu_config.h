// GPU settings shared by `steno gpus`, `steno serve` and `steno transcribe`, parsed from the
// strings flags and STENO_* variables give (flags win over the environment; the CLI does that).
// Every parser rejects a bad value with kBadInput and a message naming the value and the form
// expected; nothing is silently clamped.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "gpu/device_selection.h"
#include "gpu/size.h"

namespace steno::gpu {

// Memory steno never plans to use on a device (other tenants' headroom, the CUDA context of
// tools like nvidia-smi). `--reserve 512MiB` sets every device, `--reserve cuda:0=2GiB` one
// device; both may be given, comma-separated or repeated, and the per-device value wins.
struct ReserveConfig {
  int64_t default_bytes = 512 * kMiB;
  std::map<int, int64_t> per_device;  // CUDA ordinal → bytes

  int64_t For(int cuda_index) const;
};

// Parses the --reserve values in order (later values override earlier ones for the same
// device). An empty list gives the default.
Result<ReserveConfig> ParseReserve(const std::vector<std::string>& values);

// Share of (total − reserve) steno plans with: 0 < f ≤ 1, default 0.9.
Result<double> ParseSafetyFactor(std::string_view text);

// "1s", "500ms", "2.5s", "1m", "1h" or a bare number of seconds; 10 ms to 1 hour.
Result<std::chrono::milliseconds> ParseInterval(std::string_view text);

inline constexpr double kDefaultSafetyFactor = 0.9;
inline constexpr std::chrono::milliseconds kDefaultSampleInterval{1000};

struct GpuConfig {
  DeviceSelection device;     // --device / STENO_DEVICE
  std::string simulate_spec;  // --simulate-gpus / STENO_SIMULATE_GPUS; empty: real GPUs (NVML)
  std::string data_dir;       // where simulated GPUs keep their shared state; empty: DataDir()
  ReserveConfig reserve;      // --reserve / STENO_RESERVE
  double safety_factor = kDefaultSafetyFactor;                         // --safety-factor
  std::chrono::milliseconds sample_interval = kDefaultSampleInterval;  // --sample-interval
};

// The ledger's planning capacity: (total − reserved) × safety factor, never below 0.
int64_t AllocatableBytes(int64_t total, int64_t reserved, double safety_factor);

}  // namespace steno::gpu
