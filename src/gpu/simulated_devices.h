// Simulated GPUs (`--simulate-gpus 2x24GiB,1x12GiB`, STENO_SIMULATE_GPUS): devices whose memory
// is really accounted, so every scheduling path runs on a machine without a GPU.
//
// The simulation lives in a state file in the data dir (simulated_state.h), so all processes
// using one data dir see the same cards: runners charge what they hold, `steno gpus
// simulate-external` plays another tenant, and the server's samples see both. Promises:
//   - A charge that does not fit (used + bytes > total) is refused with kOutOfMemory, exactly as
//     a card refuses an allocation; nothing changes.
//   - Memory is charged to a process (pid + start time). When that process is gone (exited,
//     killed, or a zombie not yet reaped) its memory is free again, as the driver frees a dead
//     process's memory; no one has to release it. Only external memory outlives processes.
//   - Utilization, temperature and power are whatever was last scripted (defaults: idle, 35 °C).
// Samples are in physical (spec) order with index == physical_index; ApplyCudaVisibleDevices
// turns that into CUDA ordinals.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "gpu/device.h"

namespace steno::gpu {

// "2x24GiB,1x12GiB", "24GiB", "24GiB,12GiB" → each card's capacity, in order. Counts are 1..64
// and capacities at least 1 MiB; anything else is kBadInput ("bad_simulate_spec").
Result<std::vector<int64_t>> ParseSimulatedGpuSpec(std::string_view spec);

// Canonical text of a spec: runs of equal capacities as NxSIZE ("2x24GiB,1x12GiB").
std::string FormatSimulatedGpuSpec(const std::vector<int64_t>& capacities);

// Telemetry to script; fields left empty keep their current value.
struct SimulatedTelemetry {
  std::optional<int> gpu_utilization_percent;     // 0..100
  std::optional<int> memory_utilization_percent;  // 0..100
  std::optional<int> temperature_c;               // 0..150
  std::optional<double> power_watts;              // ≥ 0
  std::optional<double> power_limit_watts;        // > 0
};

class SimulatedDevices : public Devices {
 public:
  // The simulation in `data_dir` (created if needed). With a spec: if the directory already
  // simulates the same cards, that state (external tenants, live charges, telemetry) is kept;
  // different cards replace it, unless a live process still holds memory there (kUnavailable).
  // With an empty spec: joins whatever the directory simulates (kNotFound if nothing).
  // A bad spec is kBadInput.
  static Result<std::unique_ptr<SimulatedDevices>> Open(const std::string& data_dir,
                                                        std::string_view spec);

  std::string Backend() const override { return "simulated"; }
  Result<std::vector<DeviceSample>> Sample() override;

  const std::vector<int64_t>& Capacities() const { return capacities_; }
  std::string StatePath() const { return state_path_; }

  // Charges `bytes` more on `device` (a physical index) to process `pid` (which must be
  // running). kOutOfMemory if it does not fit; kBadInput for an unknown device or bad pid.
  Status Charge(int device, int64_t bytes, int pid = ::getpid());
  // Returns `bytes` that `pid` holds on `device`; more than it holds is kBadInput.
  Status Release(int device, int64_t bytes, int pid = ::getpid());
  // Returns everything `pid` holds on every device (what exiting does implicitly).
  Status ReleaseAll(int pid = ::getpid());

  // Another tenant holds exactly `bytes` on `device` from now on (0 clears it). kOutOfMemory if
  // that does not fit beside what processes hold now.
  Status SetExternal(int device, int64_t bytes);
  Status ClearExternal();  // on every device

  Status SetTelemetry(int device, const SimulatedTelemetry& telemetry);

  // The physical index of the card with this UUID (a runner given CUDA_VISIBLE_DEVICES=UUID
  // finds the card it must charge); kNotFound otherwise.
  Result<int> PhysicalIndexOf(std::string_view uuid) const;

  // The identity simulated card `device` reports; stable for a given index.
  static std::string SimulatedUuid(int device);
  static std::string SimulatedPciBusId(int device);

 private:
  SimulatedDevices(std::string dir, std::vector<int64_t> capacities);
  Status CheckDevice(int device) const;

  std::string state_path_;
  std::string lock_path_;
  std::vector<int64_t> capacities_;
};

}  // namespace steno::gpu
