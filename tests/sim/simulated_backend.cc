#include "sim/simulated_backend.h"

#include <algorithm>

namespace steno::sched {

using Kind = BackendEvent::Kind;

SimulatedBackend::SimulatedBackend(Clock& clock, std::vector<SimCard> cards, int64_t load_ms)
    : clock_(clock), load_ms_(load_ms) {
  for (auto& c : cards) {
    card_order_.push_back(c.name);
    cards_[c.name].total = c.total_bytes;
  }
  plan_ = [](const JobRunSpec&, int) { return SimJobPlan{}; };
}

void SimulatedBackend::SetSink(BackendSink sink) {
  std::lock_guard<std::mutex> lock(mu_);
  sink_ = std::move(sink);
}

void SimulatedBackend::SetJobPlan(SimJobPlanFn plan) {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = std::move(plan);
}

void SimulatedBackend::Emit(std::vector<BackendEvent> events) {
  BackendSink sink;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sink = sink_;
  }
  if (!sink) return;
  for (auto& e : events) sink(std::move(e));
}

void SimulatedBackend::Later(int64_t delay_ms, std::function<void()> fn) {
  clock_.Schedule(clock_.NowMs() + std::max<int64_t>(0, delay_ms), std::move(fn));
}

bool SimulatedBackend::ChargeLocked(const std::string& card, int64_t bytes) {
  auto it = cards_.find(card);
  if (it == cards_.end()) return true;  // the CPU: no memory ledger
  Card& c = it->second;
  if (bytes > 0 && c.ours + c.external + bytes > c.total) {
    ++oom_refusals_;
    return false;
  }
  c.ours += bytes;
  c.peak = std::max(c.peak, c.ours + c.external);
  return true;
}

Status SimulatedBackend::Start(const RunnerStartSpec& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  ++started_;
  SimRunner& r = runners_[spec.runner_id];
  r.card = spec.device;
  r.model = spec.model;
  r.stream_bytes = spec.stream_bytes;
  const int64_t id = spec.runner_id;
  const int64_t bytes = spec.weights_bytes + spec.streams * spec.stream_bytes;
  const bool fits = ChargeLocked(r.card, bytes);
  if (fits) {
    r.held = bytes;
    r.streams = spec.streams;
  }
  r.load_timer = clock_.Schedule(clock_.NowMs() + load_ms_, [this, id, fits] {
    std::vector<BackendEvent> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = runners_.find(id);
      if (it == runners_.end()) return;
      it->second.load_timer = 0;
      if (fits) {
        BackendEvent e;
        e.kind = Kind::kReady;
        e.runner_id = id;
        if (list_processes_) e.pids = {static_cast<int>(10000 + id)};
        if (auto f = footprints_.find(it->second.model); f != footprints_.end()) {
          e.weights_bytes = f->second.first;
          e.stream_bytes = f->second.second;
        }
        out.push_back(e);
      } else {
        BackendEvent e;
        e.kind = Kind::kError;
        e.runner_id = id;
        e.error_kind = RunnerErrorKind::kOom;
        e.message = "the simulated device refused the model's memory";
        out.push_back(e);
        ExitLocked(id, "load failed", RunnerErrorKind::kCrash, out);
      }
    }
    Emit(std::move(out));
  });
  return Status();
}

Status SimulatedBackend::SendJob(int64_t runner_id, const JobRunSpec& job) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = runners_.find(runner_id);
  if (it == runners_.end() || it->second.exiting) {
    return Error(ErrorKind::kUnavailable, "peer_closed", "the runner is gone");
  }
  const int run_index = runs_[job.job_id]++;
  max_concurrent_ = std::max(max_concurrent_, ++running_[job.job_id]);
  SimJobPlan plan = plan_(job, run_index);
  const std::string job_id = job.job_id;
  if (plan.hang) {
    it->second.jobs[job_id].timer = 0;  // no end: only Cancel, Stop or Crash remove it
    return Status();
  }
  if (job.timeout_s > 0 && plan.duration_ms > job.timeout_s * 1000LL && !plan.fail_kind &&
      !plan.crash) {
    plan.duration_ms = job.timeout_s * 1000LL;
    plan.fail_kind = RunnerErrorKind::kTimeout;
  }
  const int64_t at = clock_.NowMs() + (plan.crash ? plan.duration_ms / 2 : plan.duration_ms);
  it->second.jobs[job_id].timer = clock_.Schedule(at, [this, runner_id, job_id, plan] {
    if (plan.crash) {
      Crash(runner_id);
      return;
    }
    std::vector<BackendEvent> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto r = runners_.find(runner_id);
      if (r == runners_.end() || !r->second.jobs.erase(job_id)) return;
      --running_[job_id];
      BackendEvent e;
      e.runner_id = runner_id;
      e.job_id = job_id;
      if (!plan.fail_kind) {
        e.kind = Kind::kDone;
        e.payload = {{"text", "simulated " + job_id}};
        if (plan.audio_s > 0) e.payload["duration"] = plan.audio_s;
      } else {
        e.kind = Kind::kError;
        e.error_kind = *plan.fail_kind;
        e.message = std::string("simulated ") + runner::ErrorKindName(*plan.fail_kind);
      }
      out.push_back(std::move(e));
    }
    Emit(std::move(out));
  });
  return Status();
}

void SimulatedBackend::Cancel(int64_t runner_id, const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto r = runners_.find(runner_id);
  if (r == runners_.end()) return;
  auto j = r->second.jobs.find(job_id);
  if (j == r->second.jobs.end()) return;
  clock_.CancelTimer(j->second.timer);
  r->second.jobs.erase(j);
  --running_[job_id];
  Later(0, [this, runner_id, job_id] {
    BackendEvent e;
    e.kind = Kind::kError;
    e.runner_id = runner_id;
    e.job_id = job_id;
    e.error_kind = RunnerErrorKind::kCancelled;
    e.message = "cancelled";
    Emit({e});
  });
}

Status SimulatedBackend::Feed(int64_t runner_id, const std::string& job_id,
                              const nlohmann::json& input) {
  std::lock_guard<std::mutex> lock(mu_);
  auto r = runners_.find(runner_id);
  if (r == runners_.end() || !r->second.jobs.count(job_id)) {
    return Error(ErrorKind::kNotFound, "job_not_running", "the job does not run on that runner");
  }
  fed_.emplace_back(job_id, input);
  return Status();
}

std::vector<std::pair<std::string, nlohmann::json>> SimulatedBackend::fed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fed_;
}

Status SimulatedBackend::SetStreams(int64_t runner_id, int streams) {
  std::lock_guard<std::mutex> lock(mu_);
  auto r = runners_.find(runner_id);
  if (r == runners_.end()) return Error(ErrorKind::kUnavailable, "peer_closed", "runner gone");
  SimRunner& s = r->second;
  const int64_t delta = (streams - s.streams) * s.stream_bytes;
  if (!ChargeLocked(s.card, delta)) {
    return Error(ErrorKind::kOutOfMemory, "oom", "the simulated device refused a stream");
  }
  s.held += delta;
  s.streams = streams;
  return Status();
}

void SimulatedBackend::ExitLocked(int64_t id, const std::string& why, RunnerErrorKind job_kind,
                                  std::vector<BackendEvent>& out) {
  auto it = runners_.find(id);
  if (it == runners_.end()) return;
  SimRunner& r = it->second;
  if (r.load_timer) clock_.CancelTimer(r.load_timer);
  for (auto& [job_id, run] : r.jobs) {
    clock_.CancelTimer(run.timer);
    --running_[job_id];
    BackendEvent e;
    e.kind = Kind::kError;
    e.runner_id = id;
    e.job_id = job_id;
    e.error_kind = job_kind;
    e.message = "the runner died: " + why;
    out.push_back(std::move(e));
  }
  if (auto c = cards_.find(r.card); c != cards_.end()) c->second.ours -= r.held;
  runners_.erase(it);
  BackendEvent e;
  e.kind = Kind::kExited;
  e.runner_id = id;
  e.message = why;
  out.push_back(std::move(e));
}

void SimulatedBackend::Stop(int64_t runner_id) {
  Later(0, [this, runner_id] {
    std::vector<BackendEvent> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ExitLocked(runner_id, "stopped", RunnerErrorKind::kCrash, out);
    }
    Emit(std::move(out));
  });
}

void SimulatedBackend::SetFootprint(const std::string& model, int64_t weights_bytes,
                                    int64_t stream_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  footprints_[model] = {weights_bytes, stream_bytes};
}

void SimulatedBackend::ListProcesses(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  list_processes_ = on;
}

void SimulatedBackend::Crash(int64_t runner_id) {
  std::vector<BackendEvent> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ExitLocked(runner_id, "crashed", RunnerErrorKind::kCrash, out);
  }
  Emit(std::move(out));
}

void SimulatedBackend::SetExternal(const std::string& card, int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  Card& c = cards_[card];
  c.external = bytes;
  c.peak = std::max(c.peak, c.ours + c.external);
}

gpu::DevicesFn SimulatedBackend::Devices() {
  return [this]() -> Result<std::vector<gpu::DeviceSample>> {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<gpu::DeviceSample> out;
    for (size_t i = 0; i < card_order_.size(); ++i) {
      const Card& c = cards_.at(card_order_[i]);
      gpu::DeviceSample s;
      s.index = s.physical_index = static_cast<int>(i);
      s.name = "Simulated GPU";
      s.simulated = true;
      s.total_bytes = c.total;
      s.used_bytes = c.ours + c.external;
      s.free_bytes = c.total - s.used_bytes;
      s.processes_known = list_processes_;  // else no pids: external is used − our charges
      if (list_processes_) {
        for (const auto& [id, r] : runners_) {
          if (r.card == card_order_[i] && r.held > 0) {
            s.processes.push_back(gpu::ProcessMemory{static_cast<int>(10000 + id), r.held});
          }
        }
        if (c.external > 0) s.processes.push_back(gpu::ProcessMemory{1, c.external});
      }
      out.push_back(std::move(s));
    }
    return out;
  };
}

int64_t SimulatedBackend::used(const std::string& card) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cards_.find(card);
  return it == cards_.end() ? 0 : it->second.ours + it->second.external;
}

int64_t SimulatedBackend::peak(const std::string& card) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cards_.find(card);
  return it == cards_.end() ? 0 : it->second.peak;
}

int SimulatedBackend::oom_refusals() const {
  std::lock_guard<std::mutex> lock(mu_);
  return oom_refusals_;
}

int SimulatedBackend::live_runners() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(runners_.size());
}

int SimulatedBackend::runners_started() const {
  std::lock_guard<std::mutex> lock(mu_);
  return started_;
}

int SimulatedBackend::max_concurrent_runs_of_one_job() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_concurrent_;
}

}  // namespace steno::sched
