#include "sched/scheduler_state.h"

#include <algorithm>
#include <thread>

#include "core/log.h"

namespace steno::sched {
namespace {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

bool Transient(const std::string& kind) {
  return kind == "oom" || kind == "crash";
}

ErrorKind KindFor(const std::string& kind) {
  if (kind == "bad_input") return ErrorKind::kBadInput;
  if (kind == "timeout") return ErrorKind::kTimeout;
  if (kind == "oom") return ErrorKind::kOutOfMemory;
  if (kind == "cancelled") return ErrorKind::kCancelled;
  if (kind == "crash") return ErrorKind::kUnavailable;
  return ErrorKind::kInternal;
}

}  // namespace

SchedulerState::SchedulerState(SchedulerConfig config, Clock& clock, RunnerBackend& backend,
                               gpu::DevicesFn devices, ModelInfoFn models, PostFn post)
    : config_(std::move(config)),
      clock_(clock),
      backend_(backend),
      devices_fn_(std::move(devices)),
      models_(std::move(models)),
      post_(std::move(post)),
      queue_(config_.queue) {
  if (config_.cpu_cores <= 0) {
    config_.cpu_cores = std::max(1u, std::thread::hardware_concurrency());
  }
}

void SchedulerState::Handle(Event event) {
  ++events_handled_;
  std::visit(Overloaded{
                 [&](event::Submit& e) { OnSubmit(e); },
                 [&](event::Cancel& e) { OnCancel(e); },
                 [&](event::Runner& e) { OnRunner(e.event); },
                 [&](event::KeepAliveExpired& e) { OnExpired(e); },
                 [&](event::RetryDue&) {},
                 [&](event::DeviceSampleReady& e) {
                   if (e.samples.ok()) {
                     samples_ = std::move(e.samples.value());
                     samples_stale_ = false;
                   }
                 },
                 [&](event::Preload& e) {
                   auto spec = models_(e.model);
                   if (!spec.ok()) {
                     spdlog::warn("preload of {} failed: {}", e.model, spec.error().message);
                     return;
                   }
                   model_specs_[e.model] = *spec;
                   JobEntry probe;
                   probe.info.job.model = e.model;
                   Resample();
                   const PlacementDecision d = Place(RequestFor(probe), BuildDevices(), Views(),
                                                     config_.placement, clock_.NowMs());
                   if (d.action != PlacementAction::kNewRunner) {
                     spdlog::warn("preload of {}: no room ({})", e.model, d.reason);
                     return;
                   }
                   const PlacementRequest r = RequestFor(probe);
                   RunnerEntry* runner = nullptr;
                   StartRunner(e.model, d.device, r.weights_bytes, r.stream_bytes, kKeepForever,
                               &runner);
                   if (runner) runner->keep_alive.Pin();
                 },
             },
             event);
  Pass();
  Prune();
}

void SchedulerState::OnSubmit(event::Submit& e) {
  Job job = std::move(e.request.job);
  if (jobs_.count(job.id)) {
    e.reply(Error(ErrorKind::kBadInput, "duplicate_job", "job " + job.id + " already exists"));
    return;
  }
  if (!model_specs_.count(job.model)) {
    auto spec = models_(job.model);
    if (!spec.ok()) {
      e.reply(spec.error());
      return;
    }
    model_specs_[job.model] = *spec;
  }
  const int64_t now = clock_.NowMs();
  QueuedJob q{job.id, job.model, job.priority, now, job.not_before_ms};
  if (auto st = queue_.Push(q); !st) {
    e.reply(st.error());
    return;
  }
  job.state = JobState::kPending;
  job.created_ms = job.created_ms ? job.created_ms : now;
  job.updated_ms = now;
  JobEntry entry;
  entry.info.job = std::move(job);
  entry.audio_path = std::move(e.request.audio_path);
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

void SchedulerState::OnRunner(const BackendEvent& e) {
  auto rit = runners_.find(e.runner_id);
  if (rit == runners_.end()) return;
  RunnerEntry& runner = rit->second;
  auto job_it = e.job_id.empty() ? jobs_.end() : jobs_.find(e.job_id);
  JobEntry* job = job_it == jobs_.end() ? nullptr : &job_it->second;
  if (job && job->info.runner_id != e.runner_id) job = nullptr;  // stale: not its run now

  switch (e.kind) {
    case BackendEvent::Kind::kReady: {
      if (runner.info.state != RunnerState::kLoading) break;
      runner.info.state = RunnerState::kReady;
      RunnerView& v = runner.info.view;
      if (e.weights_bytes > 0 && e.stream_bytes > 0) {
        v.weights_bytes = e.weights_bytes;
        v.stream_bytes = e.stream_bytes;
        measured_[{v.model, v.device}] = MemoryEstimate{e.weights_bytes, e.stream_bytes, true};
      }
      auto waiting = std::move(runner.waiting);
      runner.waiting.clear();
      for (const auto& id : waiting) {
        if (auto j = jobs_.find(id); j != jobs_.end()) SendJob(j->second, runner);
      }
      // Its job may have been cancelled while it loaded: its keep-alive starts now.
      if (!runner.keep_alive.busy()) ArmKeepAlive(runner);
      break;
    }
    case BackendEvent::Kind::kProgress:
      if (job) job->info.progress_percent = e.percent;
      break;
    case BackendEvent::Kind::kSegment:
      break;  // streamed to clients by the API layer (not yet wired)
    case BackendEvent::Kind::kDone:
      if (!job) break;
      job->info.result = e.payload;
      queue_.RecordJobDuration(clock_.NowMs() - job->info.job.started_ms);
      ++runner.info.jobs_done;
      Release(*job);
      Finish(*job, JobState::kCompleted, std::nullopt);
      break;
    case BackendEvent::Kind::kError:
      if (job) {
        if (e.error_kind == "cancelled" && job->cancel_requested) {
          Release(*job);
          Finish(*job, JobState::kCancelled,
                 Error(ErrorKind::kCancelled, "cancelled", "cancelled on request"));
        } else {
          RunFailed(*job, e.error_kind, e.message);
        }
      } else if (e.job_id.empty()) {
        // The runner itself failed (its load): jobs waiting on it run elsewhere or fail.
        spdlog::warn("runner {} failed: {} ({})", e.runner_id, e.message, e.error_kind);
        if (e.error_kind == "oom") {
          model_specs_[runner.info.view.model].estimate.weights_bytes =
              static_cast<int64_t>(runner.info.view.weights_bytes * config_.oom_raise);
        }
        auto waiting = runner.waiting;
        for (const auto& id : waiting) {
          if (auto j = jobs_.find(id); j != jobs_.end())
            RunFailed(j->second, e.error_kind, e.message);
        }
        runner.info.state = RunnerState::kStopping;
      }
      break;
    case BackendEvent::Kind::kExited: {
      // Every job still on it lost its run (the backend normally failed them already).
      std::vector<std::string> lost(runner.waiting.begin(), runner.waiting.end());
      lost.insert(lost.end(), runner.sent.begin(), runner.sent.end());
      for (const auto& id : lost) {
        if (auto j = jobs_.find(id); j != jobs_.end()) {
          RunFailed(j->second, "crash", "runner exited: " + e.message);
        }
      }
      if (runner.expiry_timer) clock_.CancelTimer(runner.expiry_timer);
      runners_.erase(rit);
      samples_stale_ = true;
      break;
    }
  }
}

void SchedulerState::OnExpired(const event::KeepAliveExpired& e) {
  auto it = runners_.find(e.runner_id);
  if (it == runners_.end() || it->second.generation != e.generation) return;
  it->second.expiry_timer = 0;
  if (it->second.keep_alive.busy() || it->second.info.state != RunnerState::kReady) return;
  StopRunner(it->second, "keep-alive expired");
}

void SchedulerState::RunFailed(JobEntry& job, const std::string& kind, const std::string& msg) {
  Release(job);
  Job& j = job.info.job;
  const Error error(KindFor(kind), kind, msg);
  if (job.cancel_requested) {
    Finish(job, JobState::kCancelled,
           Error(ErrorKind::kCancelled, "cancelled", "cancelled on request"));
    return;
  }
  if (!Transient(kind) || j.attempt > config_.max_retries) {
    Finish(job, JobState::kFailed, error);
    return;
  }
  if (kind == "oom") {
    // The estimate was too low for this model: raise it so the retry asks for more.
    auto& est = model_specs_[j.model].estimate;
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
  j.state = JobState::kPending;
  j.updated_ms = now;
  j.not_before_ms = now + delay;
  spdlog::info("job {} lost its run ({}): retry {} in {} ms", j.id, kind, j.attempt - 1, delay);
  (void)queue_.Push(QueuedJob{j.id, j.model, j.priority, j.created_ms, j.not_before_ms});
  clock_.Schedule(j.not_before_ms, [post = post_] { post(event::RetryDue{}); });
}

void SchedulerState::Release(JobEntry& job) {
  auto it = runners_.find(job.info.runner_id);
  job.info.runner_id = -1;
  if (it == runners_.end()) return;
  RunnerEntry& runner = it->second;
  const std::string& id = job.info.job.id;
  const bool was_sent = runner.sent.erase(id) > 0;
  auto w = std::find(runner.waiting.begin(), runner.waiting.end(), id);
  const bool was_waiting = w != runner.waiting.end();
  if (was_waiting) runner.waiting.erase(w);
  if (!was_sent && !was_waiting) return;
  runner.info.view.busy_streams = std::max(0, runner.info.view.busy_streams - 1);
  runner.keep_alive.JobEnded(clock_.NowMs());
  if (!runner.keep_alive.busy()) runner.info.view.last_used_ms = clock_.NowMs();
  ArmKeepAlive(runner);
}

void SchedulerState::Finish(JobEntry& job, JobState state, std::optional<Error> error) {
  Job& j = job.info.job;
  j.state = state;
  if (error) j.error = std::move(error);
  j.finished_ms = j.updated_ms = clock_.NowMs();
  finished_order_.push_back(j.id);
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
    StopRunner(runner, "keep-alive 0");
    return;
  }
  runner.expiry_timer =
      clock_.Schedule(*at, [post = post_, id = runner.info.view.id, gen = runner.generation] {
        post(event::KeepAliveExpired{id, gen});
      });
}

void SchedulerState::StopRunner(RunnerEntry& runner, const std::string& why) {
  if (runner.info.state == RunnerState::kStopping) return;
  spdlog::info("unloading runner {} ({} on {}): {}", runner.info.view.id, runner.info.view.model,
               runner.info.view.device, why);
  runner.info.state = RunnerState::kStopping;
  runner.info.expires_at_ms.reset();
  if (runner.expiry_timer) clock_.CancelTimer(runner.expiry_timer);
  runner.expiry_timer = 0;
  backend_.Stop(runner.info.view.id);
}

void SchedulerState::StopAll() {
  for (auto& [id, runner] : runners_) StopRunner(runner, "shutdown");
}

void SchedulerState::Prune() {
  while (finished_order_.size() > config_.finished_jobs_kept) {
    jobs_.erase(finished_order_.front());
    finished_order_.pop_front();
  }
}

}  // namespace steno::sched
