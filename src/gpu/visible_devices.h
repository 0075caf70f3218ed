// Which physical devices a CUDA program sees, and under which ordinal (CUDA_VISIBLE_DEVICES).
//
// NVML and CUDA number cards differently. steno pins CUDA's order to PCI bus order (runners get
// CUDA_DEVICE_ORDER=PCI_BUS_ID, see RunnerCudaEnvironment), so ordinal k of the unrestricted
// order is the k-th card by PCI bus id. CUDA_VISIBLE_DEVICES then picks and reorders cards:
//   - unset: every card, in PCI bus order;
//   - "1,0": indices into that order; "GPU-8932f937,...": UUIDs or unique UUID prefixes;
//   - the list ends at the first entry that is invalid (unknown index, no or ambiguous UUID
//     match, a repeated card, a MIG instance, garbage), exactly as the CUDA runtime does: the
//     entries before it stay visible, the rest are hidden ("-1" or "" hides everything).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gpu/device.h"

namespace steno::gpu {

struct VisibleMapping {
  // visible[k] = position in the PCI-ordered card list of CUDA ordinal k.
  std::vector<int> visible;
  // Empty, or why the list was cut short ("entry 'GPU-ff' matches no device"); worth a warning.
  std::string problem;
};

// Maps a CUDA_VISIBLE_DEVICES value onto `uuids`, the cards' UUIDs in PCI bus order.
// nullopt means the variable is unset.
VisibleMapping MapCudaVisibleDevices(const std::optional<std::string>& value,
                                     const std::vector<std::string>& uuids);

// "0000:3b:00.0", "00000000:3B:00.0" and "3b:00.0" all become "00000000:3B:00.0" (NVML's form),
// so ids from NVML, CUDA (cudaDeviceGetPCIBusId) and ggml compare equal. Returns "" if `id` is
// not domain:bus:device.function.
std::string NormalizePciBusId(std::string_view id);

// The sample whose PCI bus id equals `pci_bus_id` (any form NormalizePciBusId accepts).
const DeviceSample* FindByPciBusId(const std::vector<DeviceSample>& samples,
                                   std::string_view pci_bus_id);

// Environment for a child process that must use exactly `device` (a runner): it sees the card
// as its only device, cuda:0, whatever the parent's ordering. Pairs of (name, value).
std::vector<std::pair<std::string, std::string>> RunnerCudaEnvironment(const DeviceSample& device);

// Wraps a backend that reports physical devices (in any order, `index` unset) and applies the
// mapping: sorts by PCI bus id, keeps and reorders what `cuda_visible_devices` names, and sets
// `index` to the CUDA ordinal. Logs the mapping's problem once.
std::unique_ptr<Devices> ApplyCudaVisibleDevices(std::unique_ptr<Devices> physical,
                                                 std::optional<std::string> cuda_visible_devices);

}  // namespace steno::gpu
