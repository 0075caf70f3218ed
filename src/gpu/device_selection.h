// Which devices steno may use: `--device` / STENO_DEVICE = auto | cpu | cuda | cuda:N[,M...].
//   auto   every visible GPU, and the CPU when there is none (the default)
//   cpu    the CPU only, even if GPUs exist
//   cuda   every visible GPU; an error if there is none
//   cuda:1,cuda:0 / cuda:0,1   exactly these CUDA ordinals (after CUDA_VISIBLE_DEVICES)
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "gpu/device.h"

namespace steno::gpu {

struct DeviceSelection {
  enum class Mode { kAuto, kCpu, kAllCuda, kCudaList };
  Mode mode = Mode::kAuto;
  std::vector<int> cuda;  // kCudaList only: ordinals in the order given, no repeats

  std::string ToString() const;  // canonical text: "auto", "cpu", "cuda", "cuda:0,1"
};

// kBadInput ("bad_device") for anything else, naming what is accepted.
Result<DeviceSelection> ParseDeviceSelection(std::string_view text);

// The samples the selection allows, in selection order. An ordinal that does not exist, or
// "cuda" with no GPU, is kBadInput ("no_such_device") listing the devices there are; auto and
// cpu never fail (an empty list means the CPU).
Result<std::vector<DeviceSample>> ApplyDeviceSelection(const DeviceSelection& selection,
                                                       const std::vector<DeviceSample>& samples);

// The sample named `name` ("cuda:N"), or kBadInput / no_such_device as above.
Result<DeviceSample> FindDevice(std::string_view name, const std::vector<DeviceSample>& samples);

}  // namespace steno::gpu
