#include "gpu/device.h"

#include <algorithm>
#include <memory>

namespace steno::gpu {

std::string DeviceName(const DeviceSample& sample) {
  return "cuda:" + std::to_string(sample.index);
}

DevicesFn AsDevicesFn(std::shared_ptr<Devices> devices) {
  return [devices = std::move(devices)] { return devices->Sample(); };
}

MemorySplit SplitMemory(const DeviceSample& sample, const std::function<bool(int pid)>& is_ours) {
  MemorySplit split;
  if (sample.processes_known) {
    for (const auto& p : sample.processes) {
      if (p.bytes > 0 && is_ours(p.pid)) split.ours += p.bytes;
    }
  }
  split.ours = std::min(split.ours, sample.used_bytes);
  split.external = std::max<int64_t>(0, sample.used_bytes - split.ours);
  return split;
}

}  // namespace steno::gpu
