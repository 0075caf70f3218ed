#include "sched/scheduler_state.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "core/log.h"

namespace steno::sched {
namespace {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

bool Transient(RunnerErrorKind kind) {
  return kind == RunnerErrorKind::kOom || kind == RunnerErrorKind::kCrash;
}

// The audio a result says it covered (a transcript's "duration"); 0 when it says none.
double AudioSecondsOf(const nlohmann::json& result) {
  if (!result.is_object()) return 0;
  auto d = result.find("duration");
  return d != result.end() && d->is_number() ? d->get<double>() : 0;
}

ErrorKind KindFor(RunnerErrorKind kind) {
  switch (kind) {
    case RunnerErrorKind::kBadInput: return ErrorKind::kBadInput;
    case RunnerErrorKind::kTimeout: return ErrorKind::kTimeout;
    case RunnerErrorKind::kOom: return ErrorKind::kOutOfMemory;
    case RunnerErrorKind::kCancelled: return ErrorKind::kCancelled;
    case RunnerErrorKind::kCrash: return ErrorKind::kUnavailable;
    case RunnerErrorKind::kInternal: return ErrorKind::kInternal;
  }
  return ErrorKind::kInternal;
}

}  // namespace

SchedulerState::SchedulerState(SchedulerConfig config, Clock& clock, RunnerBackend& backend,
                               ModelInfoFn models, PostFn post, SchedulerHooks hooks)
    : config_(std::move(config)),
      clock_(clock),
      backend_(backend),
      models_(std::move(models)),
      post_(std::move(post)),
      hooks_(std::move(hooks)),
      queue_(config_.queue) {
  if (config_.cpu_cores <= 0) {
    config_.cpu_cores = std::max(1u, std::thread::hardware_concurrency());
  }
  // (A stream figure of 0 is plausible only for a model declared without one: ChooseEstimate.)
  for (const auto& [key, m] : config_.known_footprints) {
    if (m.weights_bytes > 0 && m.stream_bytes >= 0) {
      measured_[key] = MemoryEstimate{m.weights_bytes, m.stream_bytes, true};
    }
  }
}

void SchedulerState::Handle(Event event) {
  ++events_handled_;
  std::visit(Overloaded{
                 [&](event::Submit& e) { OnSubmit(e); },
                 [&](event::Cancel& e) { OnCancel(e); },
                 [&](event::Feed& e) { OnFeed(e); },
                 [&](event::Runner& e) { OnRunner(e.event); },
                 [&](event::KeepAliveExpired& e) { OnExpired(e); },
                 [&](event::RetryDue&) {},
                 [&](event::StarvationCheck&) { starvation_timer_ = 0; },
                 [&](event::DeviceSampleReady& e) {
                   if (e.samples.ok()) {
                     SetSamples(std::move(e.samples.value()), e.charged);
                     ChargeMeasured();
                     CheckGrowth();
                   }
                 },
                 [&](event::Load& e) { OnLoad(e); },
                 [&](event::Unload& e) { OnUnload(e); },
                 [&](event::StopAdmitting& e) {
                   admitting_ = false;
                   e.done();
                 },
                 [&](event::Reconfigure& e) {
                   OnReconfigure(e.config);
                   e.done();
                 },
                 [&](event::Redeclare& e) {
                   OnRedeclare(e.models);
                   e.done();
                 },
                 [&](event::JobTimeout& e) { OnTimeout(e); },
                 [&](event::Placeable& e) { e.reply(PlaceableModels(e.models)); },
             },
             event);
  Pass();
  Prune();
}

bool SchedulerState::TakeSampleRequest() {
  const bool wanted = samples_stale_;
  samples_stale_ = false;
  return wanted;
}

void SchedulerState::OnSubmit(event::Submit& e) {
  Job job = std::move(e.request.job);
  if (!admitting_) {
    e.reply(Error(ErrorKind::kUnavailable, "shutting_down", "the scheduler is not admitting"));
    return;
  }
  if (jobs_.count(job.id)) {
    e.reply(Error(ErrorKind::kBadInput, "duplicate_job", "job " + job.id + " already exists"));
    return;
  }
  if (auto spec = SpecOf(job.model); !spec.ok()) {
    e.reply(spec.error());
    return;
  }
  if (auto st = CheckDevices(job.model, job.params.device); !st) {
    e.reply(st.error());
    return;
  }
  const int64_t now = clock_.NowMs();
  QueuedJob q{job.id, job.model,         job.priority,
              now,    job.not_before_ms, job.params.device == "auto" ? "" : job.params.device};
  if (auto st = queue_.Push(q); !st) {
    e.reply(st.error());
    return;
  }
  job.state = JobState::kPending;
  job.created_ms = job.created_ms ? job.created_ms : now;
  job.updated_ms = now;
  JobEntry entry;
  entry.info.job = std::move(job);
  entry.input = std::move(e.request.input);
  entry.enqueued_ms = now;
  changed_.insert(entry.info.job.id);
  jobs_.emplace(entry.info.job.id, std::move(entry));
  e.reply(Status());
}

void SchedulerState::OnCancel(event::Cancel& e) {
  auto it = jobs_.find(e.job_id);
  if (it == jobs_.end()) {
    e.reply(Error(ErrorKind::kNotFound, "job_not_found", "no job " + e.job_id));
    return;
  }
  JobEntry& job = it->second;
  const JobState state = job.info.job.state;
  if (IsFinal(state)) {
    e.reply(Error(ErrorKind::kBadInput, "job_final",
                  "job " + e.job_id + " is already " + JobStateName(state)));
    return;
  }
  const Error why(ErrorKind::kCancelled, "cancelled", "cancelled on request");
  if (state == JobState::kPending) {
    queue_.Remove(job.info.job.id);
    Finish(job, JobState::kCancelled, why);
  } else {
    auto r = runners_.find(job.info.runner_id);
    if (r != runners_.end() && r->second.sent.count(job.info.job.id)) {
      // The runner aborts it and answers; the job ends with that answer.
      job.cancel_requested = true;
      backend_.Cancel(r->first, job.info.job.id);
    } else {
      Release(job);  // still waiting for its runner to load
      Finish(job, JobState::kCancelled, why);
    }
  }
  e.reply(Status());
}

void SchedulerState::OnFeed(const event::Feed& e) {
  auto it = jobs_.find(e.job_id);
  if (it == jobs_.end() || it->second.info.job.state != JobState::kProcessing) {
    spdlog::debug("input for job {} dropped: it is not processing", e.job_id);
    return;
  }
  auto r = runners_.find(it->second.info.runner_id);
  if (r == runners_.end() || !r->second.sent.count(e.job_id)) {
    spdlog::debug("input for job {} dropped: its runner does not run it", e.job_id);
    return;
  }
  if (Status st = backend_.Feed(r->first, e.job_id, e.input); !st) {
    spdlog::warn("input for job {} refused by runner {}: {}", e.job_id, r->first,
                 st.error().message);
  }
}

void SchedulerState::OnRunner(const BackendEvent& e) {
  auto rit = runners_.find(e.runner_id);
  if (rit == runners_.end()) return;
  RunnerEntry& runner = rit->second;
  auto job_it = e.job_id.empty() ? jobs_.end() : jobs_.find(e.job_id);
  JobEntry* job = job_it == jobs_.end() ? nullptr : &job_it->second;
  if (job && job->info.runner_id != e.runner_id) job = nullptr;  // stale: not its run now
  const int64_t now = clock_.NowMs();

  switch (e.kind) {
    case BackendEvent::Kind::kReady: OnReady(runner, e); break;
    case BackendEvent::Kind::kProgress:
      if (job) {
        job->info.progress_percent = e.percent;
        changed_.insert(job->info.job.id);
        Report(*job, JobUpdate::Kind::kProgress, e.percent);
      }
      break;
    case BackendEvent::Kind::kProcesses:
      if (runner.info.state == RunnerState::kReady) {
        runner.info.pids = e.pids;
        samples_stale_ = true;  // the device's per-process list credits the new set
      }
      break;
    case BackendEvent::Kind::kSegment:
      if (job) Report(*job, JobUpdate::Kind::kSegment, 0, &e.payload);
      break;
    case BackendEvent::Kind::kDone:
      if (!job) break;
      job->info.result = e.payload;
      if (!job->live()) queue_.RecordJobDuration(now - job->info.job.started_ms);
      ++runner.info.jobs_done;
      Release(*job, AudioSecondsOf(e.payload));
      Finish(*job, JobState::kCompleted, std::nullopt);
      MaybeRecycle(runner);
      break;
    case BackendEvent::Kind::kError:
      if (job) {
        if (e.error_kind == RunnerErrorKind::kCancelled && job->cancel_requested) {
          Release(*job);
          Finish(*job, JobState::kCancelled,
                 Error(ErrorKind::kCancelled, "cancelled", "cancelled on request"));
        } else {
          RunFailed(*job, e.error_kind, e.message);
        }
      } else if (e.job_id.empty()) {
        // The runner itself failed (its load): jobs waiting on it run elsewhere or fail.
        spdlog::warn("runner {} failed: {} ({})", e.runner_id, e.message,
                     runner::ErrorKindName(e.error_kind));
        auto spec = model_specs_.find(runner.info.view.model);  // gone: removed meanwhile
        if (e.error_kind == RunnerErrorKind::kOom && spec != model_specs_.end()) {
          const bool gpu = runner.info.view.device != "cpu";
          spec->second.estimate.weights_bytes = static_cast<int64_t>(
              (runner.info.view.weights_bytes - (gpu ? config_.cuda_context_bytes : 0)) *
              config_.oom_raise);
        }
        auto waiting = runner.waiting;
        for (const auto& id : waiting) {
          if (auto j = jobs_.find(id); j != jobs_.end())
            RunFailed(j->second, e.error_kind, e.message);
        }
        runner.info.state = RunnerState::kStopping;
        runner.load_failed = true;
        if (runner.stop_reason.empty()) {
          runner.stop_reason = "load failed";
          runner.stop_ms = now;
        }
      }
      break;
    case BackendEvent::Kind::kExited: {
      // Every job still on it lost its run (the backend normally failed them already).
      std::vector<std::string> lost(runner.waiting.begin(), runner.waiting.end());
      lost.insert(lost.end(), runner.sent.begin(), runner.sent.end());
      for (const auto& id : lost) {
        if (auto j = jobs_.find(id); j != jobs_.end()) {
          RunFailed(j->second, RunnerErrorKind::kCrash, "runner exited: " + e.message);
        }
      }
      if (runner.expiry_timer) clock_.CancelTimer(runner.expiry_timer);
      const bool asked = !runner.stop_reason.empty();
      ReportRunner(runner, RunnerUpdate::Kind::kUnloaded, asked ? now - runner.stop_ms : 0,
                   asked ? runner.stop_reason : "crash");
      runners_.erase(rit);
      samples_stale_ = true;
      break;
    }
  }
}

void SchedulerState::OnReady(RunnerEntry& runner, const BackendEvent& e) {
  if (runner.info.state != RunnerState::kLoading) return;
  runner.info.state = RunnerState::kReady;
  runner.info.pids = e.pids;
  samples_stale_ = true;  // its memory is allocated now, and attributable by its pids
  RunnerView& v = runner.info.view;
  // A stream figure of 0 is a measurement only for a model declared without one.
  const auto spec = model_specs_.find(v.model);  // gone: removed meanwhile (Redeclare)
  const bool no_streams = spec != model_specs_.end() && spec->second.estimate.stream_bytes == 0;
  if (e.weights_bytes > 0 && (e.stream_bytes > 0 || (e.stream_bytes == 0 && no_streams))) {
    const bool gpu = v.device != "cpu";
    // A greedy warm-up measures what it allocates; an out-of-memory run of this model proved the
    // streams need more, so the raises it earned stay on every later measurement. So does what
    // its runners' processes were measured to hold while loaded (ChargeMeasured).
    const auto raised = oom_factor_.find(v.model);
    const double factor = raised == oom_factor_.end() ? 1.0 : raised->second;
    const auto grown = grown_weights_.find({v.model, runner.device_name});
    const int64_t weights =
        std::max(e.weights_bytes, grown == grown_weights_.end() ? 0 : grown->second);
    runner.reported_stream = e.stream_bytes;
    measured_[{v.model, runner.device_name}] = MemoryEstimate{
        weights, static_cast<int64_t>(static_cast<double>(e.stream_bytes) * factor), true};
    // Charged as planned: the measurement grown by what a greedy warm-up cannot see.
    const MemoryEstimate charged = EstimateOn(v.model, v.device);
    v.weights_bytes = charged.weights_bytes + (gpu ? config_.cuda_context_bytes : 0);
    v.stream_bytes = charged.stream_bytes;
    if (hooks_.on_footprint) {
      hooks_.on_footprint(FootprintUpdate{v.model, runner.device_name, weights, e.stream_bytes});
    }
  }
  ReportRunner(runner, RunnerUpdate::Kind::kLoaded, clock_.NowMs() - v.loaded_ms, "");
  auto waiting = std::move(runner.waiting);
  runner.waiting.clear();
  for (const auto& id : waiting) {
    if (auto j = jobs_.find(id); j != jobs_.end()) SendJob(j->second, runner);
  }
  // Its job may have been cancelled while it loaded: its keep-alive starts now.
  if (!runner.keep_alive.busy()) ArmKeepAlive(runner);
}

void SchedulerState::OnExpired(const event::KeepAliveExpired& e) {
  auto it = runners_.find(e.runner_id);
  if (it == runners_.end() || it->second.generation != e.generation) return;
  it->second.expiry_timer = 0;
  if (it->second.keep_alive.busy() || it->second.info.state != RunnerState::kReady) return;
  StopRunner(it->second, "keep-alive expired");
}

void SchedulerState::OnTimeout(const event::JobTimeout& e) {
  auto it = jobs_.find(e.job_id);
  if (it == jobs_.end()) return;
  JobEntry& job = it->second;
  job.timeout_timer = 0;
  if (job.info.job.state != JobState::kProcessing || job.info.runner_id != e.runner_id ||
      job.info.job.attempt != e.attempt) {
    return;  // it ended, or this is another run
  }
  // The runner did not enforce the timeout (hung in a call its abort hook cannot reach): the
  // job fails now, and the runner, whose state is unknown, is killed. Other jobs on it are lost
  // runs (crash) and are retried elsewhere.
  const int timeout_s = job.info.job.params.timeout_s.value_or(config_.default_timeout_s);
  spdlog::warn("job {} still running {} s past its timeout on runner {}: killing the runner",
               e.job_id, config_.timeout_grace_ms / 1000, e.runner_id);
  auto r = runners_.find(e.runner_id);
  RunFailed(job, RunnerErrorKind::kTimeout,
            "no result within the timeout of " + std::to_string(timeout_s) +
                " s (the runner did not stop it; killed)");
  if (r != runners_.end()) StopRunner(r->second, "timeout");
}

void SchedulerState::RunFailed(JobEntry& job, RunnerErrorKind kind, const std::string& msg) {
  // A live session that reached its runner (one still waiting for a load has lost nothing).
  const bool live_run = job.live() && job.info.job.state == JobState::kProcessing;
  Release(job);
  Job& j = job.info.job;
  const Error error(KindFor(kind), runner::ErrorKindName(kind), msg);
  if (job.cancel_requested) {
    Finish(job, JobState::kCancelled,
           Error(ErrorKind::kCancelled, "cancelled", "cancelled on request"));
    return;
  }
  // A model that was removed meanwhile (Redeclare) has no spec: its job cannot run again.
  const auto spec = model_specs_.find(j.model);
  // A live session's state (its audio, its open utterance) lived on the runner it lost: it
  // cannot run again elsewhere as if nothing happened, so its client is told (it may reconnect).
  if (!Transient(kind) || j.attempt > config_.max_retries || spec == model_specs_.end() ||
      live_run) {
    Finish(job, JobState::kFailed, error);
    return;
  }
  if (kind == RunnerErrorKind::kOom) {
    // The estimate was too low for this model: raise it so the retry asks for more.
    auto& est = spec->second.estimate;
    auto [factor, fresh] = oom_factor_.try_emplace(j.model, 1.0);
    factor->second *= config_.oom_raise;
    est.stream_bytes = static_cast<int64_t>(est.stream_bytes * config_.oom_raise);
    for (auto& [key, m] : measured_) {
      if (key.first == j.model)
        m.stream_bytes = static_cast<int64_t>(m.stream_bytes * config_.oom_raise);
    }
  }
  const int64_t now = clock_.NowMs();
  const int64_t delay = config_.retry_base_ms << std::min(j.attempt - 1, 20);
  j.error = error;
  j.attempt += 1;
  j.updated_ms = now;
  j.not_before_ms = now + delay;
  spdlog::info("job {} lost its run ({}): retry {} in {} ms", j.id, runner::ErrorKindName(kind),
               j.attempt - 1, delay);
  (void)queue_.Push(QueuedJob{j.id, j.model, j.priority, job.enqueued_ms, j.not_before_ms,
                              j.params.device == "auto" ? "" : j.params.device});
  SetState(job, JobState::kPending);
  clock_.Schedule(j.not_before_ms, [post = post_] { post(event::RetryDue{}); });
}

void SchedulerState::Release(JobEntry& job, double audio_s) {
  if (job.timeout_timer) clock_.CancelTimer(job.timeout_timer);
  job.timeout_timer = 0;
  auto it = runners_.find(job.info.runner_id);
  if (job.info.runner_id >= 0) job.ran = true;
  job.info.runner_id = -1;
  if (const int64_t since = std::exchange(job.computing_since_ms, -1); since >= 0) {
    ConcurrencyLimiter& limiter = LimiterOn(job.last_device);
    const int before = limiter.limit();
    limiter.OnEnd(clock_.NowMs(), since, audio_s);
    if (limiter.limit() != before) {
      const ConcurrencyView v = limiter.View();
      spdlog::debug(
          "compute limit on {}: {} -> {} (last window: {:.2f} audio s/s, {:.2f} jobs in "
          "flight, real-time factor {:.3f})",
          job.last_device, before, v.limit, v.throughput, v.mean_running, v.real_time_factor);
    }
  }
  if (it == runners_.end()) return;
  RunnerEntry& runner = it->second;
  const std::string& id = job.info.job.id;
  const bool was_sent = runner.sent.erase(id) > 0;
  auto w = std::find(runner.waiting.begin(), runner.waiting.end(), id);
  const bool was_waiting = w != runner.waiting.end();
  if (was_waiting) runner.waiting.erase(w);
  if (!was_sent && !was_waiting) return;
  runner.info.view.busy_streams = std::max(0, runner.info.view.busy_streams - 1);
  runner.info.view.busy_threads = std::max(0, runner.info.view.busy_threads - job.threads);
  job.threads = 0;
  if (job.live()) runner.live_streams = std::max(0, runner.live_streams - 1);
  runner.keep_alive.JobEnded(clock_.NowMs());
  if (!runner.keep_alive.busy()) runner.info.view.last_used_ms = clock_.NowMs();
  if (runner.draining && !runner.keep_alive.busy()) {
    StopRunner(runner, runner.drain_reason);
    return;
  }
  ArmKeepAlive(runner);
}

void SchedulerState::Finish(JobEntry& job, JobState state, std::optional<Error> error) {
  Job& j = job.info.job;
  if (error) j.error = std::move(error);
  j.finished_ms = j.updated_ms = clock_.NowMs();
  finished_order_.push_back(j.id);
  SetState(job, state);
}

void SchedulerState::SetState(JobEntry& job, JobState state) {
  Job& j = job.info.job;
  const bool was_active = IsActive(j.state);
  const bool active = IsActive(state);
  if (was_active != active) {
    const int delta = active ? 1 : -1;
    running_.total += delta;
    int& per_model = running_.per_model[j.model];
    per_model += delta;
    if (per_model == 0) running_.per_model.erase(j.model);
  }
  j.state = state;
  if (state == JobState::kPending) job.ran = false;
  changed_.insert(j.id);
  Report(job, JobUpdate::Kind::kState, 0,
         state == JobState::kCompleted ? &job.info.result : nullptr);
}

void SchedulerState::Report(const JobEntry& job, JobUpdate::Kind kind, int percent,
                            const nlohmann::json* payload) {
  if (!hooks_.on_job) return;
  JobUpdate u;
  u.kind = kind;
  u.job = job.info.job;
  const bool on_runner = IsActive(job.info.job.state) || (IsFinal(job.info.job.state) && job.ran);
  if (on_runner && job.last_runner >= 0) {
    u.runner_id = job.last_runner;
    u.device = job.last_device;
  }
  u.percent = percent;
  if (payload) u.payload = *payload;
  hooks_.on_job(u);
}

void SchedulerState::ReportRunner(const RunnerEntry& runner, RunnerUpdate::Kind kind,
                                  int64_t duration_ms, const std::string& reason) {
  if (!hooks_.on_runner) return;
  const RunnerView& v = runner.info.view;
  RunnerUpdate u;
  u.kind = kind;
  u.runner_id = v.id;
  u.model = v.model;
  u.device = v.device;
  u.bytes = v.weights_bytes + v.streams * v.stream_bytes;
  u.duration_ms = duration_ms;
  u.reason = reason;
  u.crashed = kind == RunnerUpdate::Kind::kUnloaded && runner.stop_reason.empty();
  hooks_.on_runner(u);
}

void SchedulerState::TakeJobChanges(
    const std::function<void(const std::string& id, const JobInfo* info)>& fn) {
  for (const auto& id : changed_) {
    auto it = jobs_.find(id);
    fn(id, it == jobs_.end() ? nullptr : &it->second.info);
  }
  changed_.clear();
}

void SchedulerState::Prune() {
  while (finished_order_.size() > config_.finished_jobs_kept) {
    jobs_.erase(finished_order_.front());
    changed_.insert(finished_order_.front());
    finished_order_.pop_front();
  }
}

void SchedulerState::OnReconfigure(const SchedulerConfig& c) {
  config_.queue.max_length = c.queue.max_length;
  config_.queue.max_running = c.queue.max_running;
  config_.queue.max_running_per_model = c.queue.max_running_per_model;
  queue_.SetLimits(c.queue.max_length, c.queue.max_running, c.queue.max_running_per_model);
  config_.placement = c.placement;
  config_.reserve = c.reserve;
  config_.safety_factor = c.safety_factor;
  config_.default_keep_alive_s = c.default_keep_alive_s;
  config_.default_timeout_s = c.default_timeout_s;
  config_.max_retries = c.max_retries;
  config_.retry_base_ms = c.retry_base_ms;
  config_.starvation_ms = c.starvation_ms;
  config_.timeout_grace_ms = c.timeout_grace_ms;
  if (!(c.concurrency == config_.concurrency)) {
    config_.concurrency = c.concurrency;
    limiters_.clear();  // learning starts again under the new setting
  }
  spdlog::info("scheduler settings reloaded");
}

}  // namespace steno::sched
