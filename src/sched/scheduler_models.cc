// SchedulerState: what a model declares for itself (the devices it may use, its keep-alive) and
// charging runners what the device measures them to hold.
#include <algorithm>

#include "core/log.h"
#include "sched/scheduler_state.h"

namespace steno::sched {
namespace {

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

int64_t Mib(int64_t bytes) {
  return bytes >> 20;
}

}  // namespace

Result<const ModelSpec*> SchedulerState::SpecOf(const std::string& model) {
  if (auto it = model_specs_.find(model); it != model_specs_.end()) return &it->second;
  auto spec = models_(model);
  if (!spec.ok()) return spec.error();
  if (Contains(spec->allowed_devices, "cpu")) cpu_wanted_ = true;
  return &model_specs_.emplace(model, std::move(spec).value()).first->second;
}

bool SchedulerState::CpuInUse() const {
  return config_.allow_cpu || samples_.empty() || cpu_wanted_;
}

Status SchedulerState::CheckDevices(const std::string& model, const std::string& device) const {
  auto it = model_specs_.find(model);
  if (it == model_specs_.end() || it->second.allowed_devices.empty()) return {};
  const std::vector<std::string>& allowed = it->second.allowed_devices;
  if (!device.empty() && device != "auto" && !Contains(allowed, device)) {
    return Error(ErrorKind::kBadInput, "device_not_allowed",
                 "device " + device + " is not allowed for model " + model +
                     " (its devices: " + Join(allowed) + ")");
  }
  std::vector<std::string> in_use;
  for (const auto& s : samples_) in_use.push_back(gpu::DeviceName(s));
  if (CpuInUse()) in_use.push_back("cpu");
  for (const auto& name : allowed) {
    if (Contains(in_use, name)) return {};
  }
  return Error(ErrorKind::kUnavailable, "no_allowed_device",
               "model " + model + " may run only on " + Join(allowed) +
                   ", and none of them is in use here (devices: " + Join(in_use) + ")");
}

int SchedulerState::KeepAliveOf(const std::string& model) const {
  auto it = model_specs_.find(model);
  if (it != model_specs_.end() && it->second.keep_alive_s) return *it->second.keep_alive_s;
  return config_.default_keep_alive_s;
}

bool SchedulerState::Oversubscribed(const DeviceView& d) const {
  return !d.cpu && d.memory.allocated + d.memory.external > d.memory.total - d.memory.reserved;
}

// A runner's charge only ever goes up here: a reading below it (memory not touched yet, freed
// caches, a sample taken before a stream was allocated) leaves it as admitted. The raise goes
// to weights_bytes, which every sum of the ledger, eviction's arithmetic and the reports read.
void SchedulerState::ChargeMeasured() {
  std::set<std::string> raised_on;
  for (auto& [id, r] : runners_) {
    if (r.info.state != RunnerState::kReady || r.info.pids.empty()) continue;
    const int64_t reading = ReadingOf(r);
    r.info.measured_bytes = reading;
    RunnerView& v = r.info.view;
    const int64_t charged = v.weights_bytes + v.streams * v.stream_bytes;
    if (reading <= charged) continue;
    const int64_t delta = reading - charged;
    spdlog::warn(
        "runner {} ({} on {}) holds {} MiB, {} MiB more than it was charged: charged {} MiB "
        "from now on",
        id, v.model, v.device, Mib(reading), Mib(delta), Mib(reading));
    v.weights_bytes += delta;
    r.info.grown_bytes += delta;
    // Growth is not a stream the scheduler added: the recycle policy's size at ready stays.
    if (r.first_reading > 0) r.charged_at_first_reading += delta;
    raised_on.insert(v.device);

    // The next runner of the model on this kind of device plans with it, and so does this
    // process's next measurement at ready (a floor, like the out-of-memory raises).
    const int64_t weights = v.weights_bytes - (v.device == "cpu" ? 0 : config_.cuda_context_bytes);
    const auto key = std::make_pair(v.model, r.device_name);
    int64_t& floor = grown_weights_[key];
    floor = std::max(floor, weights);
    auto m = measured_.find(key);
    if (m == measured_.end()) {
      const auto spec = model_specs_.find(v.model);  // gone: removed meanwhile (Redeclare)
      const int64_t extra =
          spec == model_specs_.end() ? 0 : spec->second.measured_stream_extra_bytes;
      m = measured_
              .emplace(key, MemoryEstimate{0, std::max<int64_t>(0, v.stream_bytes - extra), true})
              .first;
    }
    m->second.weights_bytes = std::max(m->second.weights_bytes, weights);
    if (hooks_.on_footprint) {
      const int64_t stream = r.reported_stream >= 0 ? r.reported_stream : m->second.stream_bytes;
      hooks_.on_footprint(FootprintUpdate{v.model, r.device_name, m->second.weights_bytes, stream});
    }
  }
  if (raised_on.empty()) return;
  for (const DeviceView& d : BuildDevices()) {
    if (!raised_on.count(d.name) || !Oversubscribed(d)) continue;
    spdlog::warn(
        "{} is oversubscribed: our runners are charged {} MiB and other tenants hold {} "
        "MiB, more than its {} MiB less the {} MiB reserve",
        d.name, Mib(d.memory.allocated), Mib(d.memory.external), Mib(d.memory.total),
        Mib(d.memory.reserved));
  }
}

}  // namespace steno::sched
