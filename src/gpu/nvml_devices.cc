#include "gpu/nvml_devices.h"

#include <cstdio>
#include <map>
#include <mutex>
#include <set>

#include "core/log.h"

namespace steno::gpu {
namespace {

class EmptyDevices : public Devices {
 public:
  std::string Backend() const override { return "none"; }
  Result<std::vector<DeviceSample>> Sample() override { return std::vector<DeviceSample>{}; }
};

// Processes come and go between the size query and the fetch, so the fetch gets some slack
// and is retried a few times before the list is declared unknown.
constexpr unsigned kProcessSlack = 8;
constexpr int kProcessAttempts = 4;

}  // namespace

struct NvmlDevices::Impl {
  nvml::Api api;
  std::mutex mu;                 // guards warned
  std::set<std::string> warned;  // "index:what" already logged

  std::string Why(nvml::Return r) const {
    const char* s = api.ErrorString ? api.ErrorString(r) : nullptr;
    return s ? s : "NVML error " + std::to_string(r);
  }

  // Logs a failed query once per device and query, not once per sample period.
  void WarnOnce(unsigned index, const char* what, nvml::Return r, const char* consequence) {
    std::lock_guard<std::mutex> hold(mu);
    if (!warned.insert(std::to_string(index) + ":" + what).second) return;
    spdlog::warn("NVML device {}: {} failed: {}; {}", index, what, Why(r), consequence);
  }

  // A device whose identity or memory cannot be read cannot be scheduled on: leave it out.
  bool Drop(unsigned index, const char* what, nvml::Return r) {
    WarnOnce(index, what, r, "the device is left out");
    return false;
  }

  // The compute processes on `h` using NVML's size-query protocol: ask with a zero-length
  // buffer, which yields SUCCESS (none) or INSUFFICIENT_SIZE with the count, then fetch.
  bool Processes(unsigned index, nvml::Device h, std::vector<ProcessMemory>& out) {
    if (!api.DeviceGetComputeRunningProcesses) return false;
    unsigned count = 0;
    nvml::Return r = api.DeviceGetComputeRunningProcesses(h, &count, nullptr);
    if (r == nvml::kSuccess) return true;  // no process holds memory here
    std::vector<nvml::ProcessInfo> infos;
    for (int attempt = 0; attempt < kProcessAttempts && r == nvml::kErrorInsufficientSize;
         ++attempt) {
      infos.resize(count + kProcessSlack);
      count = static_cast<unsigned>(infos.size());
      r = api.DeviceGetComputeRunningProcesses(h, &count, infos.data());
      if (r == nvml::kSuccess) {
        infos.resize(count);
        std::map<int, int64_t> per_pid;  // MIG can list one pid once per instance
        for (const auto& info : infos) {
          int64_t& bytes = per_pid[static_cast<int>(info.pid)];
          if (info.usedGpuMemory == nvml::kValueNotAvailable || bytes < 0) {
            bytes = -1;
          } else {
            bytes += static_cast<int64_t>(info.usedGpuMemory);
          }
        }
        for (const auto& [pid, bytes] : per_pid) out.push_back({pid, bytes});
        return true;
      }
    }
    WarnOnce(index, "process list", r, "its memory all counts as external");
    return false;
  }

  bool SampleOne(unsigned index, DeviceSample& s) {
    nvml::Device h = nullptr;
    nvml::Return r = api.DeviceGetHandleByIndex(index, &h);
    if (r != nvml::kSuccess) return Drop(index, "handle", r);
    char text[nvml::kUuidBufferSize] = {};
    r = api.DeviceGetUUID(h, text, sizeof text);
    if (r != nvml::kSuccess) return Drop(index, "uuid", r);
    s.uuid = text;
    nvml::Memory memory{};
    r = api.DeviceGetMemoryInfo(h, &memory);
    if (r != nvml::kSuccess) return Drop(index, "memory", r);
    s.index = static_cast<int>(index);
    s.physical_index = static_cast<int>(index);
    s.total_bytes = static_cast<int64_t>(memory.total);
    s.used_bytes = static_cast<int64_t>(memory.used);
    s.free_bytes = static_cast<int64_t>(memory.free);

    if (api.DeviceGetPciInfo) {
      nvml::PciInfo pci{};
      r = api.DeviceGetPciInfo(h, &pci);
      if (r == nvml::kSuccess) {
        // Built from the numeric fields: the strings' domain width differs between versions.
        char bus_id[32];
        std::snprintf(bus_id, sizeof bus_id, "%08X:%02X:%02X.0", pci.domain, pci.bus, pci.device);
        s.pci_bus_id = bus_id;
      } else {
        WarnOnce(index, "PCI info", r, "its PCI bus id is unknown");
      }
    }
    if (api.DeviceGetName) {
      char name[nvml::kNameBufferSize] = {};
      if (api.DeviceGetName(h, name, sizeof name) == nvml::kSuccess) s.name = name;
    }
    if (api.DeviceGetUtilizationRates) {
      nvml::Utilization u{};
      if (api.DeviceGetUtilizationRates(h, &u) == nvml::kSuccess) {
        s.gpu_utilization_percent = static_cast<int>(u.gpu);
        s.memory_utilization_percent = static_cast<int>(u.memory);
      }
    }
    unsigned value = 0;
    if (api.DeviceGetTemperature &&
        api.DeviceGetTemperature(h, nvml::kTemperatureGpu, &value) == nvml::kSuccess) {
      s.temperature_c = static_cast<int>(value);
    }
    if (api.DeviceGetPowerUsage && api.DeviceGetPowerUsage(h, &value) == nvml::kSuccess) {
      s.power_watts = value / 1000.0;
    }
    if (api.DeviceGetEnforcedPowerLimit &&
        api.DeviceGetEnforcedPowerLimit(h, &value) == nvml::kSuccess) {
      s.power_limit_watts = value / 1000.0;
    }
    s.processes_known = Processes(index, h, s.processes);
    return true;
  }
};

NvmlDevices::NvmlDevices(nvml::Api api) : impl_(std::make_unique<Impl>()) {
  impl_->api = api;
}

NvmlDevices::~NvmlDevices() {
  if (impl_->api.Shutdown) impl_->api.Shutdown();
  nvml::UnloadApi(impl_->api);
}

Result<std::unique_ptr<NvmlDevices>> NvmlDevices::Create(nvml::Api api) {
  nvml::Return r = api.Init();
  if (r != nvml::kSuccess) {
    const char* why = api.ErrorString ? api.ErrorString(r) : nullptr;
    Error e(ErrorKind::kUnavailable, "nvml_unavailable",
            std::string("NVML did not initialize: ") + (why ? why : std::to_string(r)));
    nvml::UnloadApi(api);
    return e;
  }
  return std::unique_ptr<NvmlDevices>(new NvmlDevices(api));
}

Result<std::vector<DeviceSample>> NvmlDevices::Sample() {
  unsigned count = 0;
  nvml::Return r = impl_->api.DeviceGetCount(&count);
  if (r != nvml::kSuccess) {
    return Error(ErrorKind::kUnavailable, "nvml_failed",
                 "NVML could not count devices: " + impl_->Why(r));
  }
  std::vector<DeviceSample> out;
  for (unsigned i = 0; i < count; ++i) {
    DeviceSample s;
    if (impl_->SampleOne(i, s)) out.push_back(std::move(s));
  }
  return out;
}

std::unique_ptr<Devices> NoDevices() {
  return std::make_unique<EmptyDevices>();
}

std::unique_ptr<Devices> OpenNvmlDevices(const std::string& library) {
  auto api = nvml::LoadApi(library);
  if (!api.ok()) {
    spdlog::info("no NVIDIA GPU: {}; running on the CPU", api.error().message);
    return NoDevices();
  }
  auto devices = NvmlDevices::Create(*api);
  if (!devices.ok()) {
    spdlog::info("no NVIDIA GPU: {}; running on the CPU", devices.error().message);
    return NoDevices();
  }
  return std::move(devices).value();
}

}  // namespace steno::gpu
