#include "gpu/simulated_devices.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>

#include "core/log.h"
#include "gpu/owner_process.h"
#include "gpu/simulated_state.h"
#include "gpu/size.h"

namespace steno::gpu {
namespace {

constexpr int kMaxCards = 64;

Error BadSpec(std::string_view spec, const std::string& why) {
  return Error(ErrorKind::kBadInput, "bad_simulate_spec",
               "invalid simulated GPU spec '" + std::string(spec) + "': " + why +
                   " (write COUNTxSIZE or SIZE, comma-separated, e.g. 2x24GiB,1x12GiB)");
}

int64_t Used(const sim::State& s, int device) {
  int64_t used = s.devices[static_cast<size_t>(device)].external_bytes;
  for (const auto& c : s.charges) {
    if (c.device == device) used += c.bytes;
  }
  return used;
}

// Drops the charges of processes that are gone: the driver's exit-time cleanup.
void PruneDead(sim::State& s) {
  std::erase_if(s.charges, [](const sim::Charge& c) { return !IsAlive(c.owner); });
}

std::vector<int64_t> Totals(const sim::State& s) {
  std::vector<int64_t> totals;
  for (const auto& d : s.devices) totals.push_back(d.total_bytes);
  return totals;
}

sim::State Fresh(const std::vector<int64_t>& capacities) {
  sim::State s;
  for (int64_t c : capacities) {
    sim::DeviceState d;
    d.total_bytes = c;
    s.devices.push_back(d);
  }
  return s;
}

std::string Where(int device) {
  return "simulated GPU " + std::to_string(device);
}

// Runs `change` on the current state under the lock and saves the result if it succeeds.
Status Mutate(const std::string& lock_path, const std::string& state_path,
              const std::vector<int64_t>& capacities,
              const std::function<Status(sim::State&)>& change) {
  auto lock = sim::Lock::Acquire(lock_path);
  if (!lock.ok()) return lock.error();
  auto state = sim::Load(state_path);
  if (!state.ok()) return state.error();
  if (Totals(*state) != capacities) {
    return Error(ErrorKind::kUnavailable, "simulation_replaced",
                 "the simulated GPUs in " + state_path + " were replaced by " +
                     FormatSimulatedGpuSpec(Totals(*state)) + " since this process opened " +
                     FormatSimulatedGpuSpec(capacities));
  }
  PruneDead(*state);
  if (Status s = change(*state); !s.ok()) return s;
  return sim::Save(state_path, *state);
}

}  // namespace

Result<std::vector<int64_t>> ParseSimulatedGpuSpec(std::string_view spec) {
  std::vector<int64_t> capacities;
  if (spec.find_first_not_of(" \t") == std::string_view::npos) return BadSpec(spec, "it is empty");
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string_view::npos) comma = spec.size();
    std::string_view entry = spec.substr(start, comma - start);
    start = comma + 1;
    int count = 1;
    std::string_view size_text = entry;
    if (size_t x = entry.find_first_of("xX"); x != std::string_view::npos) {
      std::string count_text(entry.substr(0, x));
      count_text.erase(std::remove(count_text.begin(), count_text.end(), ' '), count_text.end());
      if (count_text.empty() || count_text.size() > 3 ||
          count_text.find_first_not_of("0123456789") != std::string::npos) {
        return BadSpec(spec, "'" + std::string(entry) + "' does not start with a card count");
      }
      count = std::stoi(count_text);
      size_text = entry.substr(x + 1);
    }
    if (count < 1 || count > kMaxCards) {
      return BadSpec(spec, "a count must be 1 to " + std::to_string(kMaxCards));
    }
    auto size = ParseSize(size_text);
    if (!size.ok()) {
      return BadSpec(spec, "'" + std::string(size_text) + "' is not a size like 24GiB or 1.5GB");
    }
    if (*size < kMiB) return BadSpec(spec, "a card needs at least 1 MiB");
    capacities.insert(capacities.end(), static_cast<size_t>(count), *size);
  }
  if (capacities.size() > static_cast<size_t>(kMaxCards)) {
    return BadSpec(spec, "at most " + std::to_string(kMaxCards) + " cards in all");
  }
  return capacities;
}

std::string FormatSimulatedGpuSpec(const std::vector<int64_t>& capacities) {
  std::string out;
  for (size_t i = 0; i < capacities.size();) {
    size_t run = 1;
    while (i + run < capacities.size() && capacities[i + run] == capacities[i]) ++run;
    std::string size = FormatSize(capacities[i]);
    size.erase(std::remove(size.begin(), size.end(), ' '), size.end());
    if (!out.empty()) out += ",";
    out += std::to_string(run) + "x" + size;
    i += run;
  }
  return out;
}

SimulatedDevices::SimulatedDevices(std::string dir, std::vector<int64_t> capacities)
    : state_path_(dir + "/simulated-gpus.json"),
      lock_path_(dir + "/simulated-gpus.lock"),
      capacities_(std::move(capacities)) {}

Result<std::unique_ptr<SimulatedDevices>> SimulatedDevices::Open(const std::string& data_dir,
                                                                 std::string_view spec) {
  std::vector<int64_t> wanted;
  if (!spec.empty()) {
    auto parsed = ParseSimulatedGpuSpec(spec);
    if (!parsed.ok()) return parsed.error();
    wanted = std::move(parsed).value();
  }
  std::unique_ptr<SimulatedDevices> devices(new SimulatedDevices(data_dir, wanted));
  auto lock = sim::Lock::Acquire(devices->lock_path_);
  if (!lock.ok()) return lock.error();
  auto state = sim::Load(devices->state_path_);

  if (spec.empty()) {
    if (!state.ok()) {
      if (state.error().kind != ErrorKind::kNotFound) return state.error();
      return Error(ErrorKind::kNotFound, "no_simulated_gpus",
                   "no simulated GPUs in " + data_dir +
                       ": pass --simulate-gpus SPEC (or set STENO_SIMULATE_GPUS)");
    }
    devices->capacities_ = Totals(*state);
    return devices;
  }
  if (state.ok()) {
    if (Totals(*state) == wanted) return devices;  // join the running simulation
    PruneDead(*state);
    if (!state->charges.empty()) {
      return Error(
          ErrorKind::kUnavailable, "simulated_gpus_in_use",
          "the simulated GPUs in " + data_dir + " (" + FormatSimulatedGpuSpec(Totals(*state)) +
              ") are in use by pid " + std::to_string(state->charges.front().owner.pid) +
              "; stop it or use another data dir to simulate " + FormatSimulatedGpuSpec(wanted));
    }
    spdlog::info("simulated GPUs in {}: {} replaces {}", data_dir, FormatSimulatedGpuSpec(wanted),
                 FormatSimulatedGpuSpec(Totals(*state)));
  } else if (state.error().kind == ErrorKind::kIntegrity) {
    spdlog::warn("{}; starting afresh", state.error().message);
  } else if (state.error().kind != ErrorKind::kNotFound) {
    return state.error();
  }
  if (Status s = sim::Save(devices->state_path_, Fresh(wanted)); !s.ok()) return s.error();
  return devices;
}

Result<std::vector<DeviceSample>> SimulatedDevices::Sample() {
  sim::State state;
  {
    auto lock = sim::Lock::Acquire(lock_path_);
    if (!lock.ok()) return lock.error();
    auto loaded = sim::Load(state_path_);
    if (!loaded.ok()) return loaded.error();
    state = std::move(loaded).value();
  }
  PruneDead(state);
  std::vector<DeviceSample> out;
  for (size_t i = 0; i < state.devices.size(); ++i) {
    const auto& d = state.devices[i];
    const int device = static_cast<int>(i);
    DeviceSample s;
    s.index = device;
    s.physical_index = device;
    s.uuid = SimulatedUuid(device);
    s.pci_bus_id = SimulatedPciBusId(device);
    std::string size = FormatSize(d.total_bytes);
    size.erase(std::remove(size.begin(), size.end(), ' '), size.end());
    s.name = "Simulated GPU " + size;
    s.simulated = true;
    s.total_bytes = d.total_bytes;
    s.used_bytes = std::min(Used(state, device), d.total_bytes);
    s.free_bytes = d.total_bytes - s.used_bytes;
    s.gpu_utilization_percent = d.gpu_utilization_percent;
    s.memory_utilization_percent = d.memory_utilization_percent;
    s.temperature_c = d.temperature_c;
    s.power_watts = d.power_watts;
    s.power_limit_watts = d.power_limit_watts;
    std::map<int, int64_t> per_pid;  // one entry per process, as NVML lists them
    for (const auto& c : state.charges) {
      if (c.device == device) per_pid[c.owner.pid] += c.bytes;
    }
    for (const auto& [pid, bytes] : per_pid) s.processes.push_back({pid, bytes});
    out.push_back(std::move(s));
  }
  return out;
}

Status SimulatedDevices::CheckDevice(int device) const {
  if (device >= 0 && device < static_cast<int>(capacities_.size())) return {};
  return Error(ErrorKind::kBadInput, "no_such_device",
               "there is no simulated GPU " + std::to_string(device) + " (" +
                   std::to_string(capacities_.size()) + " simulated)");
}

Status SimulatedDevices::Charge(int device, int64_t bytes, int pid) {
  if (Status s = CheckDevice(device); !s.ok()) return s;
  if (bytes < 0) return Error(ErrorKind::kBadInput, "bad_size", "cannot charge a negative size");
  auto owner = IdentifyProcess(pid);
  if (!owner) {
    return Error(ErrorKind::kBadInput, "no_such_process",
                 "cannot charge GPU memory to pid " + std::to_string(pid) + ": no such process");
  }
  const std::string where = Where(device);
  return Mutate(lock_path_, state_path_, capacities_, [&](sim::State& s) -> Status {
    const int64_t total = s.devices[static_cast<size_t>(device)].total_bytes;
    const int64_t used = Used(s, device);
    if (bytes > total - used) {
      return Error(ErrorKind::kOutOfMemory, "cuda_out_of_memory",
                   "out of memory on " + where + ": tried to allocate " + FormatSize(bytes) +
                       " with " + FormatSize(total - used) + " free of " + FormatSize(total));
    }
    for (auto& c : s.charges) {
      if (c.device == device && c.owner == *owner) {
        c.bytes += bytes;
        return {};
      }
    }
    s.charges.push_back({device, *owner, bytes});
    return {};
  });
}

Status SimulatedDevices::Release(int device, int64_t bytes, int pid) {
  if (Status s = CheckDevice(device); !s.ok()) return s;
  return Mutate(lock_path_, state_path_, capacities_, [&](sim::State& s) -> Status {
    for (auto it = s.charges.begin(); it != s.charges.end(); ++it) {
      if (it->device != device || it->owner.pid != pid) continue;
      if (bytes < 0 || bytes > it->bytes) break;
      it->bytes -= bytes;
      if (it->bytes == 0) s.charges.erase(it);
      return {};
    }
    return Error(ErrorKind::kBadInput, "release_not_held",
                 "pid " + std::to_string(pid) + " does not hold " + FormatSize(bytes) + " on " +
                     Where(device));
  });
}

Status SimulatedDevices::ReleaseAll(int pid) {
  return Mutate(lock_path_, state_path_, capacities_, [&](sim::State& s) -> Status {
    std::erase_if(s.charges, [pid](const sim::Charge& c) { return c.owner.pid == pid; });
    return {};
  });
}

Status SimulatedDevices::SetExternal(int device, int64_t bytes) {
  if (Status s = CheckDevice(device); !s.ok()) return s;
  if (bytes < 0)
    return Error(ErrorKind::kBadInput, "bad_size", "external memory cannot be negative");
  const std::string where = Where(device);
  return Mutate(lock_path_, state_path_, capacities_, [&](sim::State& s) -> Status {
    auto& d = s.devices[static_cast<size_t>(device)];
    const int64_t held_by_processes = Used(s, device) - d.external_bytes;
    if (bytes > d.total_bytes - held_by_processes) {
      return Error(ErrorKind::kOutOfMemory, "cuda_out_of_memory",
                   "out of memory: an external tenant cannot take " + FormatSize(bytes) + " on " +
                       where + ": processes hold " + FormatSize(held_by_processes) + " of " +
                       FormatSize(d.total_bytes));
    }
    d.external_bytes = bytes;
    return {};
  });
}

Status SimulatedDevices::ClearExternal() {
  return Mutate(lock_path_, state_path_, capacities_, [](sim::State& s) -> Status {
    for (auto& d : s.devices) d.external_bytes = 0;
    return {};
  });
}

Status SimulatedDevices::SetTelemetry(int device, const SimulatedTelemetry& t) {
  if (Status s = CheckDevice(device); !s.ok()) return s;
  auto bad = [](const std::string& what) {
    return Error(ErrorKind::kBadInput, "bad_telemetry", what);
  };
  auto percent = [](const std::optional<int>& v) { return !v || (*v >= 0 && *v <= 100); };
  if (!percent(t.gpu_utilization_percent) || !percent(t.memory_utilization_percent)) {
    return bad("utilization must be 0 to 100 percent");
  }
  if (t.temperature_c && (*t.temperature_c < 0 || *t.temperature_c > 150)) {
    return bad("temperature must be 0 to 150 °C");
  }
  if ((t.power_watts && *t.power_watts < 0) || (t.power_limit_watts && *t.power_limit_watts <= 0)) {
    return bad("power must be positive watts");
  }
  return Mutate(lock_path_, state_path_, capacities_, [&](sim::State& s) -> Status {
    auto& d = s.devices[static_cast<size_t>(device)];
    if (t.gpu_utilization_percent) d.gpu_utilization_percent = *t.gpu_utilization_percent;
    if (t.memory_utilization_percent) d.memory_utilization_percent = *t.memory_utilization_percent;
    if (t.temperature_c) d.temperature_c = *t.temperature_c;
    if (t.power_watts) d.power_watts = *t.power_watts;
    if (t.power_limit_watts) d.power_limit_watts = *t.power_limit_watts;
    return {};
  });
}

Result<int> SimulatedDevices::PhysicalIndexOf(std::string_view uuid) const {
  for (size_t i = 0; i < capacities_.size(); ++i) {
    if (SimulatedUuid(static_cast<int>(i)) == uuid) return static_cast<int>(i);
  }
  return Error(ErrorKind::kNotFound, "no_such_device",
               "no simulated GPU has UUID " + std::string(uuid));
}

std::string SimulatedDevices::SimulatedUuid(int device) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "GPU-5173e0%02x-0000-4000-8000-000000000000", device & 0xff);
  return buf;
}

std::string SimulatedDevices::SimulatedPciBusId(int device) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "00000000:%02X:00.0", (device + 1) & 0xff);
  return buf;
}

}  // namespace steno::gpu
