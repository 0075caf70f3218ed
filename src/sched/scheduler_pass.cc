// SchedulerState: admission (the pass), runner start and snapshots.
#include <algorithm>
#include <tuple>

#include "core/log.h"
#include "sched/scheduler_state.h"

namespace steno::sched {

void SchedulerState::Pass() {
  if (queue_.size() == 0) return;
  Resample();
  const int64_t now = clock_.NowMs();
  RunningCounts running;
  for (const auto& [id, job] : jobs_) {
    if (!IsActive(job.info.job.state)) continue;
    ++running.total;
    ++running.per_model[job.info.job.model];
  }
  std::set<std::string> evicting;  // devices with an unload in flight: wait for its memory
  for (const auto& [id, r] : runners_) {
    if (r.info.state == RunnerState::kStopping) evicting.insert(r.info.view.device);
  }
  std::vector<DeviceView> devices = BuildDevices();
  std::vector<RunnerView> views = Views();
  // Place() is pure: until the devices or runners change, a request identical to one that got
  // no runner gets none either. Remembering those keeps a pass over thousands of waiting jobs
  // of a few models cheap; any start or eviction forgets them.
  using RequestKey = std::tuple<std::string, std::string, int, int64_t, int64_t>;
  std::set<RequestKey> no_runner;
  // Every candidate is tried: one that must wait never blocks a later one that fits.
  for (const QueuedJob& c : queue_.Candidates(now, running)) {
    JobEntry& job = jobs_.at(c.id);
    const PlacementRequest req = RequestFor(job);
    RequestKey key{req.model, req.device, static_cast<int>(req.priority), req.weights_bytes,
                   req.stream_bytes};
    if (no_runner.count(key)) continue;
    const PlacementDecision d = Place(req, devices, views, config_.placement, now);
    RunnerEntry* runner = nullptr;
    switch (d.action) {
      case PlacementAction::kUseStream: runner = &runners_.at(d.runner_id); break;
      case PlacementAction::kAddStream:
        runner = &runners_.at(d.runner_id);
        ++runner->info.view.streams;
        if (auto st = backend_.SetStreams(d.runner_id, runner->info.view.streams); !st) {
          --runner->info.view.streams;
          runner = nullptr;
        }
        break;
      case PlacementAction::kNewRunner:
        StartRunner(job.info.job.model, d.device, req.weights_bytes, req.stream_bytes,
                    job.info.job.params.keep_alive_s, &runner);
        break;
      case PlacementAction::kEvict:
        if (evicting.count(d.device)) break;
        for (int64_t victim : d.evict) StopRunner(runners_.at(victim), "evicted for " + c.model);
        evicting.insert(d.device);
        // A stopping runner must not be offered to later candidates of this pass (its jobs
        // would be lost when it exits).
        views = Views();
        no_runner.clear();
        continue;
      case PlacementAction::kWait: break;
    }
    if (!runner) {
      no_runner.insert(std::move(key));
      continue;
    }
    queue_.Remove(c.id);
    Assign(job, *runner);
    devices = BuildDevices();
    views = Views();
    no_runner.clear();
  }
}

std::vector<DeviceView> SchedulerState::BuildDevices() const {
  std::vector<DeviceView> out;
  for (const auto& s : samples_) {
    DeviceView d;
    d.name = gpu::DeviceName(s);
    std::vector<RunnerCharge> charges;
    for (const auto& [id, r] : runners_) {
      if (r.info.view.device != d.name) continue;
      charges.push_back(RunnerCharge{0, r.info.view.weights_bytes, r.info.view.stream_bytes,
                                     r.info.view.streams});
    }
    d.memory = BuildLedger(s, charges, config_.reserve, config_.safety_factor);
    d.utilization_percent = s.gpu_utilization_percent;
    d.temperature_c = s.temperature_c;
    out.push_back(std::move(d));
  }
  if (config_.allow_cpu || samples_.empty()) {
    DeviceView d;
    d.name = "cpu";
    d.cpu = true;
    std::vector<CpuCharge> charges;
    for (const auto& [id, r] : runners_) {
      if (r.info.view.device == "cpu") {
        charges.push_back(CpuCharge{r.info.view.streams, r.info.view.threads_per_stream});
      }
    }
    d.cores = BuildCpuLedger(config_.cpu_cores, charges);
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<RunnerView> SchedulerState::Views() const {
  std::vector<RunnerView> out;
  out.reserve(runners_.size());
  for (const auto& [id, r] : runners_) {
    if (r.info.state != RunnerState::kStopping) out.push_back(r.info.view);
  }
  return out;
}

PlacementRequest SchedulerState::RequestFor(const JobEntry& job) const {
  const Job& j = job.info.job;
  PlacementRequest req;
  req.model = j.model;
  req.device = j.params.device == "auto" ? "" : j.params.device;
  req.priority = j.priority;
  req.threads_per_stream = config_.threads_per_stream;
  MemoryEstimate est;
  if (auto it = model_specs_.find(j.model); it != model_specs_.end()) est = it->second.estimate;
  if (auto m = measured_.find({j.model, req.device}); m != measured_.end()) {
    est.weights_bytes = std::max(est.weights_bytes, m->second.weights_bytes);
    est.stream_bytes = std::max(est.stream_bytes, m->second.stream_bytes);
  }
  req.weights_bytes = est.weights_bytes;
  req.stream_bytes = est.stream_bytes;
  return req;
}

void SchedulerState::Assign(JobEntry& job, RunnerEntry& runner) {
  const int64_t now = clock_.NowMs();
  Job& j = job.info.job;
  j.state = JobState::kLoading;
  j.started_ms = j.updated_ms = now;
  job.info.runner_id = runner.info.view.id;
  ++runner.info.view.busy_streams;
  runner.keep_alive.JobStarted(j.params.keep_alive_s, config_.default_keep_alive_s);
  ArmKeepAlive(runner);
  if (runner.info.state == RunnerState::kReady) {
    SendJob(job, runner);
  } else {
    runner.waiting.push_back(j.id);
  }
}

void SchedulerState::SendJob(JobEntry& job, RunnerEntry& runner) {
  Job& j = job.info.job;
  runner.sent.insert(j.id);
  j.state = JobState::kProcessing;
  j.updated_ms = clock_.NowMs();
  JobRunSpec spec;
  spec.job_id = j.id;
  spec.audio_path = job.audio_path;
  spec.params = nlohmann::json::parse(JobParamsToJson(j.params), nullptr, false);
  spec.timeout_s = j.params.timeout_s.value_or(config_.default_timeout_s);
  if (auto st = backend_.SendJob(runner.info.view.id, spec); !st) {
    RunFailed(job, "crash", st.error().message);
  }
}

void SchedulerState::StartRunner(const std::string& model, const std::string& device,
                                 int64_t weights, int64_t stream, std::optional<int> keep_alive_s,
                                 RunnerEntry** out) {
  *out = nullptr;
  const int64_t now = clock_.NowMs();
  const int64_t id = next_runner_id_++;
  RunnerEntry entry;
  RunnerView& v = entry.info.view;
  v.id = id;
  v.model = model;
  v.device = device;
  v.streams = 1;
  v.weights_bytes = weights;
  v.stream_bytes = stream;
  v.threads_per_stream = config_.threads_per_stream;
  v.loaded_ms = v.last_used_ms = now;
  entry.keep_alive = KeepAlive(now, keep_alive_s.value_or(config_.default_keep_alive_s));
  RunnerStartSpec spec{id, model, model_specs_[model].path, device, 1, weights, stream};
  if (auto st = backend_.Start(spec); !st) {
    spdlog::warn("could not start a runner for {} on {}: {}", model, device, st.error().message);
    return;
  }
  samples_stale_ = true;
  RunnerEntry& stored = runners_.emplace(id, std::move(entry)).first->second;
  ArmKeepAlive(stored);
  *out = &stored;
}

void SchedulerState::Resample() {
  if (!samples_stale_ || !devices_fn_) return;
  if (auto s = devices_fn_(); s.ok()) samples_ = std::move(s.value());
  samples_stale_ = false;
}

SchedulerSnapshot SchedulerState::Snapshot() const {
  SchedulerSnapshot s;
  s.now_ms = clock_.NowMs();
  s.events_handled = events_handled_;
  for (const auto& [id, r] : runners_) s.runners.push_back(r.info);
  s.jobs.reserve(jobs_.size());
  for (const auto& [id, j] : jobs_) s.jobs.push_back(j.info);
  for (const auto& d : BuildDevices()) s.devices.push_back({d.name, d.cpu, d.memory, d.cores});
  s.queued = queue_.size();
  return s;
}

const JobInfo* SchedulerSnapshot::FindJob(const std::string& id) const {
  for (const auto& j : jobs) {
    if (j.job.id == id) return &j;
  }
  return nullptr;
}

const char* RunnerStateName(RunnerState state) {
  switch (state) {
    case RunnerState::kLoading: return "loading";
    case RunnerState::kReady: return "ready";
    case RunnerState::kStopping: return "stopping";
  }
  return "loading";
}

}  // namespace steno::sched
