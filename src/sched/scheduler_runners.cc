// SchedulerState: runner lifecycle (start, keep-alive, drain, stop), explicit load and unload,
// device ledgers and snapshots.
#include <algorithm>

#include "core/log.h"
#include "sched/scheduler_state.h"

namespace steno::sched {

void SchedulerState::OnLoad(event::Load& e) {
  auto reply = [&](Status st) {
    if (e.reply) e.reply(std::move(st));
  };
  const LoadRequest& load = e.request;
  if (!admitting_) {
    reply(Error(ErrorKind::kUnavailable, "shutting_down", "the scheduler is not admitting"));
    return;
  }
  if (auto spec = SpecOf(load.model); !spec.ok()) {
    spdlog::warn("load of {} failed: {}", load.model, spec.error().message);
    reply(spec.error());
    return;
  }
  if (auto st = CheckDevices(load.model, load.device); !st) {
    spdlog::warn("load of {} failed: {}", load.model, st.error().message);
    reply(st.error());
    return;
  }
  const std::vector<DeviceView> devices = BuildDevices();
  const std::string device = load.device == "auto" ? "" : load.device;
  if (!device.empty() && std::none_of(devices.begin(), devices.end(),
                                      [&](const DeviceView& d) { return d.name == device; })) {
    reply(Error(ErrorKind::kBadInput, "bad_device", "device " + device + " is not in use"));
    return;
  }
  const int64_t now = clock_.NowMs();
  // Loaded already: renew its keep-alive.
  bool renewed = false;
  for (auto& [id, r] : runners_) {
    if (r.info.view.model != load.model || r.draining || r.info.state == RunnerState::kStopping ||
        (!device.empty() && r.info.view.device != device)) {
      continue;
    }
    r.keep_alive.Renew(now, load.keep_alive_s.value_or(KeepAliveOf(load.model)));
    ArmKeepAlive(r);
    renewed = true;
  }
  if (renewed) {
    reply(Status());
    return;
  }
  for (const auto& p : pending_loads_) {
    if (p.model == load.model && p.device == device) {
      reply(Status());  // already waiting for memory
      return;
    }
  }
  std::set<std::string> evicting;
  for (const auto& [id, r] : runners_) {
    if (r.info.state == RunnerState::kStopping) evicting.insert(r.info.view.device);
  }
  const LoadRequest normalized{load.model, device, load.keep_alive_s};
  const LoadOutcome outcome = PlaceLoad(normalized, evicting);
  switch (outcome.kind) {
    case LoadOutcome::kDone: reply(Status()); return;
    case LoadOutcome::kWaiting:
      pending_loads_.push_back(normalized);
      reply(Status());
      return;
    case LoadOutcome::kStartFailed:
      reply(Error(ErrorKind::kUnavailable, "runner_start_failed", outcome.message));
      return;
    case LoadOutcome::kNoRoom:
      spdlog::warn("load of {}: no room ({})", load.model, outcome.message);
      reply(Error(ErrorKind::kUnavailable, "no_room", outcome.message));
      return;
  }
}

void SchedulerState::OnUnload(event::Unload& e) {
  bool found = false;
  const size_t before = pending_loads_.size();
  std::erase_if(pending_loads_, [&](const LoadRequest& l) { return l.model == e.model; });
  found = pending_loads_.size() != before;
  for (auto& [id, r] : runners_) {
    if (r.info.view.model != e.model || r.info.state == RunnerState::kStopping) continue;
    found = true;
    if (r.keep_alive.busy()) {
      Drain(r, "unload requested");
    } else {
      StopRunner(r, "unload requested");
    }
  }
  if (!found) {
    e.reply(Error(ErrorKind::kNotFound, "not_loaded", "model " + e.model + " is not loaded"));
    return;
  }
  e.reply(Status());
}

void SchedulerState::OnRedeclare(const std::vector<std::string>& models) {
  for (const std::string& model : models) {
    std::erase_if(pending_loads_, [&](const LoadRequest& l) { return l.model == model; });
    for (auto& [id, r] : runners_) {
      if (r.info.view.model != model || r.info.state == RunnerState::kStopping) continue;
      if (r.keep_alive.busy()) {
        Drain(r, "redeclared");
      } else {
        StopRunner(r, "redeclared");
      }
    }
    // What was measured or learned (OOM raises, growth) belongs to the old declaration.
    std::erase_if(measured_, [&](const auto& m) { return m.first.first == model; });
    std::erase_if(grown_weights_, [&](const auto& g) { return g.first.first == model; });
    oom_factor_.erase(model);
    model_specs_.erase(model);
    if (SpecOf(model).ok()) continue;
    const Error removed(
        ErrorKind::kNotFound, "model_removed",
        "model " + model + " was removed from the configuration before this job ran");
    for (auto& [id, job] : jobs_) {
      if (job.info.job.model != model || job.info.job.state != JobState::kPending) continue;
      queue_.Remove(id);
      Finish(job, JobState::kFailed, removed);
    }
  }
}

Result<SchedulerState::RunnerEntry*> SchedulerState::StartRunner(const std::string& model,
                                                                 const std::string& device,
                                                                 int64_t weights, int64_t stream,
                                                                 std::optional<int> keep_alive_s) {
  const int64_t now = clock_.NowMs();
  const int64_t id = next_runner_id_++;
  RunnerEntry entry;
  RunnerView& v = entry.info.view;
  v.id = id;
  v.model = model;
  v.device = device;
  v.streams = 1;
  v.weights_bytes = weights + (device == "cpu" ? 0 : config_.cuda_context_bytes);
  v.stream_bytes = stream;
  v.loaded_ms = v.last_used_ms = now;
  entry.device_name = DeviceNameOf(device);
  entry.keep_alive = KeepAlive(now, keep_alive_s.value_or(KeepAliveOf(model)));
  // The backend is given what the ledger charges (context included): a simulated card charges
  // it, so an estimate that forgot the context would show up as a refusal.
  const ModelSpec& m = model_specs_[model];
  entry.info.kind = m.kind;
  entry.info.load = m.load;
  RunnerStartSpec spec{id, model, m.path, device, 1, v.weights_bytes, stream, m.kind, m.load};
  if (auto st = backend_.Start(spec); !st) {
    Error failed(
        st.error().kind, st.error().code,
        "could not start a runner for " + model + " on " + device + ": " + st.error().message);
    spdlog::warn("{}", failed.message);
    return failed;
  }
  samples_stale_ = true;
  RunnerEntry& stored = runners_.emplace(id, std::move(entry)).first->second;
  ArmKeepAlive(stored);
  return &stored;
}

void SchedulerState::ArmKeepAlive(RunnerEntry& runner) {
  if (runner.expiry_timer) clock_.CancelTimer(runner.expiry_timer);
  runner.expiry_timer = 0;
  ++runner.generation;
  const auto at = runner.keep_alive.ExpiresAt();
  runner.info.expires_at_ms = at;
  runner.info.keep_alive_s = runner.keep_alive.effective_s();
  if (!at || runner.info.state == RunnerState::kStopping) return;
  if (*at <= clock_.NowMs() && runner.info.state == RunnerState::kReady) {
    StopRunner(runner, "keep-alive expired");
    return;
  }
  runner.expiry_timer =
      clock_.Schedule(*at, [post = post_, id = runner.info.view.id, gen = runner.generation] {
        post(event::KeepAliveExpired{id, gen});
      });
}

void SchedulerState::Drain(RunnerEntry& runner, const std::string& why) {
  if (runner.info.state == RunnerState::kStopping) return;
  if (!runner.keep_alive.busy()) {
    StopRunner(runner, why);
    return;
  }
  runner.draining = runner.info.draining = true;
  runner.drain_reason = why;
  runner.info.expires_at_ms.reset();
  if (runner.expiry_timer) clock_.CancelTimer(runner.expiry_timer);
  runner.expiry_timer = 0;
}

void SchedulerState::StopRunner(RunnerEntry& runner, const std::string& why) {
  if (runner.info.state == RunnerState::kStopping) return;
  spdlog::info("unloading runner {} ({} on {}): {}", runner.info.view.id, runner.info.view.model,
               runner.info.view.device, why);
  runner.info.state = RunnerState::kStopping;
  runner.info.expires_at_ms.reset();
  if (runner.stop_reason.empty()) {
    runner.stop_reason = why;
    runner.stop_ms = clock_.NowMs();
  }
  if (runner.expiry_timer) clock_.CancelTimer(runner.expiry_timer);
  runner.expiry_timer = 0;
  backend_.Stop(runner.info.view.id);
}

void SchedulerState::StopAll() {
  // Their exits are not awaited (the worker is stopping): reported as unloaded now.
  for (auto& [id, runner] : runners_) {
    if (runner.info.state == RunnerState::kStopping) continue;
    StopRunner(runner, "shutdown");
    ReportRunner(runner, RunnerUpdate::Kind::kUnloaded, 0, "shutdown");
  }
}

void SchedulerState::SetSamples(std::vector<gpu::DeviceSample> samples,
                                const std::optional<std::map<std::string, int64_t>>& charged) {
  samples_ = std::move(samples);
  sample_charged_.clear();
  for (const auto& s : samples_) {
    const std::string name = gpu::DeviceName(s);
    if (!charged) {
      sample_charged_.push_back(ChargedOn(name));
    } else {
      auto it = charged->find(name);
      sample_charged_.push_back(it == charged->end() ? 0 : it->second);
    }
  }
}

int64_t SchedulerState::ChargedOn(const std::string& device) const {
  int64_t sum = 0;
  for (const auto& [id, r] : runners_) {
    const RunnerView& v = r.info.view;
    if (v.device == device) sum += v.weights_bytes + v.streams * v.stream_bytes;
  }
  return sum;
}

ConcurrencyConfig SchedulerState::ConcurrencyFor(const std::string& device) const {
  ConcurrencyConfig c = config_.concurrency;
  if (device == "cpu") {
    // The cores already bound the CPU's jobs (one core each at least): learning starts there,
    // not at one, and never goes above it (placement would not run more anyway, so a limit
    // above it would only be shown, never tested: windows there never fill). A job more on the
    // CPU brings no cores of its own: the jobs share them (CpuThreadsFor), so it is worth its
    // place when the device's throughput grows at all.
    c.initial_limit = std::max(1, config_.cpu_cores);
    c.max_limit = std::min(c.max_limit, c.initial_limit);
    c.min_marginal_gain = 0;
  }
  return c;
}

ConcurrencyLimiter& SchedulerState::LimiterOn(const std::string& device) {
  auto it = limiters_.find(device);
  if (it == limiters_.end()) it = limiters_.emplace(device, ConcurrencyFor(device)).first;
  return it->second;
}

ConcurrencyView SchedulerState::ComputeOn(const std::string& device, int running) const {
  auto it = limiters_.find(device);
  ConcurrencyView v =
      it != limiters_.end() ? it->second.View() : ConcurrencyLimiter(ConcurrencyFor(device)).View();
  v.running = running;
  return v;
}

std::vector<DeviceView> SchedulerState::BuildDevices() const {
  std::vector<DeviceView> out;
  out.reserve(samples_.size() + 1);
  // Jobs computing, per device: every runner's busy streams, draining and stopping ones
  // included, less those live sessions hold (they are admitted by memory alone: RequestFor).
  std::map<std::string, int> running;
  for (const auto& [id, r] : runners_) {
    running[r.info.view.device] += r.info.view.busy_streams - r.live_streams;
  }
  auto compute = [&](DeviceView& d) {
    const auto n = running.find(d.name);
    d.running = n == running.end() ? 0 : n->second;
    const auto l = limiters_.find(d.name);
    d.compute_limit = l != limiters_.end() ? l->second.limit()
                                           : ConcurrencyLimiter(ConcurrencyFor(d.name)).limit();
  };
  std::vector<RunnerCharge> charges;
  for (size_t i = 0; i < samples_.size(); ++i) {
    const gpu::DeviceSample& s = samples_[i];
    DeviceView d;
    d.name = gpu::DeviceName(s);
    charges.clear();
    int64_t charged = 0;
    for (const auto& [id, r] : runners_) {
      if (r.info.view.device != d.name) continue;
      charged += r.info.view.weights_bytes + r.info.view.streams * r.info.view.stream_bytes;
      // With its pids, the device's process list attributes the runner's memory to us; without
      // them (still loading) that memory is counted twice, as ours and as a tenant's: cautious.
      charges.push_back(RunnerCharge{r.info.pids, r.info.view.weights_bytes,
                                     r.info.view.stream_bytes, r.info.view.streams});
    }
    if (!s.processes_known && i < sample_charged_.size() && charged != sample_charged_[i]) {
      // Project the sample to now: the device will hold what we charged since it was taken.
      gpu::DeviceSample now = s;
      now.used_bytes += charged - sample_charged_[i];
      d.memory = BuildLedger(now, charges, config_.reserve, config_.safety_factor);
    } else {
      d.memory = BuildLedger(s, charges, config_.reserve, config_.safety_factor);
    }
    d.utilization_percent = s.gpu_utilization_percent;
    d.temperature_c = s.temperature_c;
    compute(d);
    out.push_back(std::move(d));
  }
  if (CpuInUse()) {
    DeviceView d;
    d.name = "cpu";
    d.cpu = true;
    // Beside GPUs without allow_cpu, only for the models that list it.
    d.only_if_allowed = !config_.allow_cpu && !samples_.empty();
    std::vector<CpuCharge> cpu;
    for (const auto& [id, r] : runners_) {
      if (r.info.view.device == "cpu") {
        cpu.push_back(CpuCharge{r.info.view.streams, r.info.view.busy_threads});
      }
    }
    d.cores = BuildCpuLedger(config_.cpu_cores, cpu);
    compute(d);
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<RunnerView> SchedulerState::Views() const {
  // Runners not to evict: pinned ones (--preload, keep-alive −1), and those of models with jobs
  // waiting (about to be used).
  std::vector<const QueuedJob*> heads = queue_.GroupHeads();
  std::vector<RunnerView> out;
  out.reserve(runners_.size());
  for (const auto& [id, r] : runners_) {
    if (r.info.state == RunnerState::kStopping || r.draining) continue;
    out.push_back(r.info.view);
    RunnerView& v = out.back();
    v.pinned = r.keep_alive.pinned();
    v.wanted = v.pinned || std::any_of(heads.begin(), heads.end(), [&](const QueuedJob* h) {
                 return h->model == v.model && (h->device.empty() || h->device == v.device);
               });
  }
  return out;
}

SchedulerSnapshot SchedulerState::Snapshot() const {
  SchedulerSnapshot s;
  s.now_ms = clock_.NowMs();
  s.events_handled = events_handled_;
  s.runners.reserve(runners_.size());
  for (const auto& [id, r] : runners_) s.runners.push_back(r.info);
  for (const auto& d : BuildDevices()) {
    s.devices.push_back({d.name, d.cpu, d.memory, d.cores, ComputeOn(d.name, d.running)});
  }
  s.queued_by_priority = queue_.size_by_priority();
  s.queued = queue_.size();
  s.running = static_cast<size_t>(std::max(0, running_.total));
  s.admitting = admitting_;
  return s;
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
