// SchedulerState: admission — the pass over the queue, starvation, assigning and sending jobs.
#include <algorithm>

#include "core/log.h"
#include "sched/scheduler_state.h"

namespace steno::sched {

void SchedulerState::Pass() {
  if (queue_.size() == 0 && pending_loads_.empty()) return;
  const int64_t now = clock_.NowMs();
  queue_.PromoteDue(now);
  std::set<std::string> evicting;  // devices with an unload in flight: wait for its memory
  for (const auto& [id, r] : runners_) {
    if (r.info.state == RunnerState::kStopping) evicting.insert(r.info.view.device);
  }
  if (!pending_loads_.empty()) TryPendingLoads(evicting);
  if (queue_.size() == 0) return;
  if (config_.starvation_ms > 0) CheckStarvation(evicting);

  std::vector<DeviceView> devices = BuildDevices();
  std::vector<RunnerView> views = Views();
  // Groups (same model and requested device) whose best job could not be placed: no other job
  // of theirs can be in this pass either, since starting or evicting only takes resources away.
  std::unordered_set<std::string> skipped;
  std::string group;
  const QueueConfig& limits = config_.queue;
  while (limits.max_running <= 0 || running_.total < limits.max_running) {
    const QueuedJob* c = queue_.Best(skipped, &group);
    if (!c) break;
    if (limits.max_running_per_model > 0) {
      auto m = running_.per_model.find(c->model);
      if (m != running_.per_model.end() && m->second >= limits.max_running_per_model) {
        skipped.insert(group);
        continue;
      }
    }
    JobEntry& job = jobs_.at(c->id);
    const PlacementRequest req = RequestFor(job);
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
        samples_stale_ = true;
        break;
      case PlacementAction::kNewRunner: {
        const MemoryEstimate est = EstimateOn(req.model, d.device);
        auto started = StartRunner(req.model, d.device, est.weights_bytes, est.stream_bytes,
                                   job.info.job.params.keep_alive_s);
        if (!started.ok()) {
          // Like a runner that crashed while loading: retried with backoff, never dropped.
          queue_.Remove(job.info.job.id);  // `c` is invalid from here
          RunFailed(job, RunnerErrorKind::kCrash, started.error().message);
          continue;
        }
        runner = *started;
        break;
      }
      case PlacementAction::kEvict:
        // A stopping runner must not be offered to later candidates of this pass (its jobs
        // would be lost when it exits).
        if (Evict(d.device, d.evict, req.model, "to place a job", evicting)) views = Views();
        break;
      case PlacementAction::kWait: break;
    }
    if (!runner) {
      skipped.insert(group);
      continue;
    }
    // Set on every placement: a retried job may have run on the CPU before.
    job.threads = runner->info.view.device == "cpu" ? CpuThreadsOn(req, devices) : 0;
    queue_.Remove(job.info.job.id);  // `c` is invalid from here
    Assign(job, *runner);
    devices = BuildDevices();
    views = Views();
  }
}

int SchedulerState::CpuThreadsOn(const PlacementRequest& req,
                                 const std::vector<DeviceView>& devices) const {
  auto cpu =
      std::find_if(devices.begin(), devices.end(), [](const DeviceView& d) { return d.cpu; });
  if (cpu == devices.end()) return config_.max_threads_per_job;
  // The jobs that could start on the CPU now, this one included (it is still queued).
  int waiting = 0;
  for (const QueuedJob* head : queue_.GroupHeads()) {
    if (!DeviceAllowed(RequestFor(head->model, head->device, head->priority), *cpu)) continue;
    waiting += static_cast<int>(queue_.GroupSize(QueueGroupOf(*head)));
    if (waiting >= cpu->cores.cores) break;  // more cannot start at once anyway
  }
  const int room =
      req.needs_compute && cpu->compute_limit > 0 ? cpu->compute_limit - cpu->running : -1;
  return CpuThreadsFor(cpu->cores.idle_threads(), req.cpu_threads, config_.max_threads_per_job,
                       waiting, room);
}

std::vector<std::string> SchedulerState::PlaceableModels(const std::vector<std::string>& models) {
  std::vector<std::string> out;
  const QueueConfig& limits = config_.queue;
  if (!admitting_ || queue_.size() > 0 || !pending_loads_.empty()) return out;
  if (limits.max_running > 0 && running_.total >= limits.max_running) return out;
  const int64_t now = clock_.NowMs();
  const std::vector<DeviceView> devices = BuildDevices();
  const std::vector<RunnerView> views = Views();
  for (const std::string& model : models) {
    if (limits.max_running_per_model > 0) {
      auto m = running_.per_model.find(model);
      if (m != running_.per_model.end() && m->second >= limits.max_running_per_model) continue;
    }
    if (!SpecOf(model).ok()) continue;
    const PlacementRequest req = RequestFor(model, "", Priority::kNormal);
    if (Place(req, devices, views, config_.placement, now).action != PlacementAction::kWait) {
      out.push_back(model);
    }
  }
  return out;
}

void SchedulerState::TryPendingLoads(std::set<std::string>& evicting) {
  std::vector<LoadRequest> still;
  for (const LoadRequest& load : pending_loads_) {
    const LoadOutcome outcome = PlaceLoad(load, evicting);
    switch (outcome.kind) {
      case LoadOutcome::kDone: break;
      case LoadOutcome::kWaiting: still.push_back(load); break;
      case LoadOutcome::kNoRoom:
      case LoadOutcome::kStartFailed:
        spdlog::warn("load of {} dropped: {}", load.model, outcome.message);
        break;
    }
  }
  pending_loads_ = std::move(still);
}

SchedulerState::LoadOutcome SchedulerState::PlaceLoad(const LoadRequest& load,
                                                      std::set<std::string>& evicting) {
  PlacementRequest req = RequestFor(load.model, load.device, Priority::kNormal);
  req.needs_compute = false;  // a load runs no job
  const PlacementDecision d =
      Place(req, BuildDevices(), Views(), config_.placement, clock_.NowMs());
  switch (d.action) {
    case PlacementAction::kUseStream:
    case PlacementAction::kAddStream: return {LoadOutcome::kDone, ""};  // loaded already
    case PlacementAction::kNewRunner: {
      const MemoryEstimate est = EstimateOn(load.model, d.device);
      auto r = StartRunner(load.model, d.device, est.weights_bytes, est.stream_bytes,
                           load.keep_alive_s.value_or(KeepAliveOf(load.model)));
      if (!r.ok()) return {LoadOutcome::kStartFailed, r.error().message};
      if (load.keep_alive_s && *load.keep_alive_s < 0) (*r)->keep_alive.Pin();
      ArmKeepAlive(**r);
      return {LoadOutcome::kDone, ""};
    }
    case PlacementAction::kEvict:
      Evict(d.device, d.evict, load.model, "to load it", evicting);
      return {LoadOutcome::kWaiting, ""};
    case PlacementAction::kWait: break;
  }
  // Memory is on its way while a runner on an allowed device is stopping.
  const bool coming = std::any_of(evicting.begin(), evicting.end(), [&](const auto& dev) {
    return (load.device.empty() || load.device == dev) &&
           (req.allowed_devices.empty() ||
            std::find(req.allowed_devices.begin(), req.allowed_devices.end(), dev) !=
                req.allowed_devices.end());
  });
  if (coming) return {LoadOutcome::kWaiting, ""};
  return {LoadOutcome::kNoRoom, d.reason};
}

bool SchedulerState::Evict(const std::string& device, const std::vector<int64_t>& victims,
                           const std::string& model, const std::string& why,
                           std::set<std::string>& evicting) {
  if (victims.empty() || evicting.count(device)) return false;
  spdlog::info("evicting {} runner(s) on {} for {} ({})", victims.size(), device, model, why);
  bool stopped_now = false;
  for (int64_t victim : victims) {
    RunnerEntry& r = runners_.at(victim);
    Drain(r, "evicted");
    stopped_now = stopped_now || r.info.state == RunnerState::kStopping;
  }
  if (stopped_now) evicting.insert(device);
  return true;
}

// Anti-thrash, the other half: hysteresis (placement.h) keeps a busy model's runners from being
// evicted, so a continuous flood of model A would keep model B off a card forever. Once the best
// job of a group whose model has no runner has waited starvation_ms, one runner of another
// model on a device where it would then fit is drained (no new jobs; unloaded when its jobs
// end), idle ones there evicted, and the freed memory goes to the starving job, which the pass
// then meets first in queue order or, being old, near it. One drain per device at a time, and
// never of a runner younger than the minimum residency, so cards change hands at most once per
// residency period.
void SchedulerState::CheckStarvation(std::set<std::string>& evicting) {
  const int64_t now = clock_.NowMs();
  int64_t next_check = 0;
  std::set<std::string> draining_on;  // devices where a drain is under way
  for (const auto& [id, r] : runners_) {
    if (r.draining && r.info.state != RunnerState::kStopping)
      draining_on.insert(r.info.view.device);
  }
  std::vector<DeviceView> devices;  // built on first need
  for (const QueuedJob* head : queue_.GroupHeads()) {
    const bool has_runner = std::any_of(runners_.begin(), runners_.end(), [&](const auto& kv) {
      const RunnerEntry& r = kv.second;
      return r.info.view.model == head->model && !r.draining &&
             r.info.state != RunnerState::kStopping &&
             (head->device.empty() || head->device == r.info.view.device);
    });
    if (has_runner) continue;
    const int64_t due = head->enqueued_ms + config_.starvation_ms;
    if (due > now) {
      next_check = next_check == 0 ? due : std::min(next_check, due);
      continue;
    }
    if (devices.empty()) devices = BuildDevices();
    PlacementRequest req = RequestFor(head->model, head->device, head->priority);
    // A drain frees memory, not compute: a job that fits but waits for a compute slot waits its
    // turn in the queue.
    req.needs_compute = false;
    const std::vector<RunnerView> views = Views();
    // Already placeable (or evicting for it): the pass handles it.
    const PlacementDecision d = Place(req, devices, views, config_.placement, now);
    if (d.action != PlacementAction::kWait) continue;
    // The device needing the fewest victims, ties by the order given.
    const DeviceView* best = nullptr;
    std::vector<int64_t> best_victims;
    for (const DeviceView& dev : devices) {
      if (!DeviceAllowed(req, dev)) continue;
      if (evicting.count(dev.name) || draining_on.count(dev.name)) continue;
      std::vector<int64_t> victims =
          ChooseVictims(req, dev, views, EvictionScope::kDrain, config_.placement, now);
      if (victims.empty()) continue;
      if (!best || victims.size() < best_victims.size()) {
        best = &dev;
        best_victims = std::move(victims);
      }
    }
    if (!best) continue;
    Evict(best->name, best_victims, head->model,
          "it waited " + std::to_string((now - head->enqueued_ms) / 1000) + " s without a runner",
          evicting);
    draining_on.insert(best->name);
    devices.clear();
  }
  // A head not starving yet: look again when it would be, even if nothing else happens.
  if (next_check > 0 && (starvation_timer_ == 0 || next_check < starvation_timer_at_)) {
    if (starvation_timer_) clock_.CancelTimer(starvation_timer_);
    starvation_timer_at_ = next_check;
    starvation_timer_ =
        clock_.Schedule(next_check, [post = post_] { post(event::StarvationCheck{}); });
  }
}

MemoryEstimate SchedulerState::EstimateOn(const std::string& model,
                                          const std::string& device) const {
  auto spec = model_specs_.find(model);
  if (spec == model_specs_.end()) return MemoryEstimate{};
  std::optional<MemoryEstimate> measured;
  if (auto m = measured_.find({model, DeviceNameOf(device)}); m != measured_.end()) {
    measured = m->second;
  }
  return ChooseEstimate(spec->second.estimate, measured, spec->second.measured_stream_extra_bytes);
}

std::string SchedulerState::DeviceNameOf(const std::string& device) const {
  if (device == "cpu") return "cpu";
  for (const auto& s : samples_) {
    if (gpu::DeviceName(s) == device) return s.name;
  }
  return device;
}

PlacementRequest SchedulerState::RequestFor(const std::string& model, const std::string& device,
                                            Priority priority) const {
  PlacementRequest req;
  req.model = model;
  req.device = device == "auto" ? "" : device;
  req.priority = priority;
  req.cpu_threads =
      std::clamp(config_.min_threads_per_job, 1,
                 std::max(1, std::min(config_.max_threads_per_job, config_.cpu_cores)));
  req.gpu_overhead_bytes = config_.cuda_context_bytes;
  if (auto spec = model_specs_.find(model); spec != model_specs_.end()) {
    req.allowed_devices = spec->second.allowed_devices;
    req.max_streams = spec->second.max_streams;
  }
  MemoryEstimate est;
  if (!req.device.empty()) {
    est = EstimateOn(model, req.device);
  } else {
    // Any device: plan with the largest footprint among the kinds present that the model may
    // use (a measurement on one kind of card says nothing about another); the runner is then
    // charged its own device's.
    bool any = false;
    auto take = [&](const std::string& dev) {
      const MemoryEstimate e = EstimateOn(model, dev);
      est.weights_bytes = any ? std::max(est.weights_bytes, e.weights_bytes) : e.weights_bytes;
      est.stream_bytes = any ? std::max(est.stream_bytes, e.stream_bytes) : e.stream_bytes;
      any = true;
    };
    const auto& allowed = req.allowed_devices;
    auto may = [&](const std::string& dev) {
      return allowed.empty() || std::find(allowed.begin(), allowed.end(), dev) != allowed.end();
    };
    for (const auto& s : samples_) {
      if (may(gpu::DeviceName(s))) take(gpu::DeviceName(s));
    }
    if (allowed.empty() ? config_.allow_cpu || samples_.empty() : CpuInUse() && may("cpu")) {
      take("cpu");
    }
  }
  req.weights_bytes = est.weights_bytes;
  req.stream_bytes = est.stream_bytes;
  return req;
}

PlacementRequest SchedulerState::RequestFor(const JobEntry& job) const {
  const Job& j = job.info.job;
  PlacementRequest req = RequestFor(j.model, j.params.device, j.priority);
  // A live session computes at the pace of the speech it is sent, a small share of a device for
  // as long as it is open; the compute limit, learned from batch jobs (which the limiter alone
  // measures), would make sessions wait minutes for each other. Memory alone admits them.
  req.needs_compute = !job.live();
  return req;
}

void SchedulerState::Assign(JobEntry& job, RunnerEntry& runner) {
  const int64_t now = clock_.NowMs();
  Job& j = job.info.job;
  j.started_ms = j.updated_ms = now;
  job.info.runner_id = runner.info.view.id;
  job.last_runner = runner.info.view.id;
  job.last_device = runner.info.view.device;
  job.info.progress_percent = 0;
  ++runner.info.view.busy_streams;
  runner.info.view.busy_threads += job.threads;
  if (job.live()) ++runner.live_streams;
  runner.keep_alive.JobStarted(j.params.keep_alive_s, KeepAliveOf(j.model));
  ArmKeepAlive(runner);
  SetState(job, JobState::kLoading);
  if (runner.info.state == RunnerState::kReady) {
    SendJob(job, runner);
  } else {
    runner.waiting.push_back(j.id);
  }
}

void SchedulerState::SendJob(JobEntry& job, RunnerEntry& runner) {
  Job& j = job.info.job;
  runner.sent.insert(j.id);
  const int64_t now = clock_.NowMs();
  j.updated_ms = now;
  JobRunSpec spec;
  spec.job_id = j.id;
  spec.input = job.input;
  if (spec.input.name.empty()) spec.input.name = j.params.filename;
  spec.params = nlohmann::json::parse(JobParamsToJson(j.params), nullptr, false);
  spec.timeout_s = job.live() ? 0 : j.params.timeout_s.value_or(config_.default_timeout_s);
  spec.threads = job.threads;
  if (!job.live()) {
    job.computing_since_ms = now;
    LimiterOn(runner.info.view.device).OnStart(now);
  }
  SetState(job, JobState::kProcessing);
  if (auto st = backend_.SendJob(runner.info.view.id, spec); !st) {
    RunFailed(job, RunnerErrorKind::kCrash, st.error().message);
    return;
  }
  if (spec.timeout_s > 0 && config_.timeout_grace_ms >= 0) {
    // The runner enforces the timeout; this is the backstop for a runner that cannot.
    job.timeout_timer = clock_.Schedule(
        now + int64_t{spec.timeout_s} * 1000 + config_.timeout_grace_ms,
        [post = post_, id = j.id, runner_id = runner.info.view.id, attempt = j.attempt] {
          post(event::JobTimeout{id, runner_id, attempt});
        });
  }
}

}  // namespace steno::sched
