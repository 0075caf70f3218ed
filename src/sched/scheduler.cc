#include "sched/scheduler.h"

#include <algorithm>
#include <chrono>
#include <future>

#include "sched/scheduler_state.h"

namespace steno::sched {

Scheduler::Scheduler(SchedulerConfig config, Clock& clock, RunnerBackend& backend,
                     gpu::DevicesFn devices, ModelInfoFn models, SchedulerHooks hooks)
    : config_(config), clock_(clock), devices_(devices) {
  alive_->self = this;
  state_ = std::make_unique<SchedulerState>(std::move(config), clock, backend, std::move(models),
                                            GuardedPost(), std::move(hooks));
  // The first sample is taken here, on the constructing thread (the worker does not run yet), so
  // the very first snapshot already has every device's ledger: a server is never ready, nor a
  // placement made, while the machine looks as if it had no GPU.
  if (devices_) state_->Handle(event::DeviceSampleReady{devices_(), std::nullopt});
  (void)state_->TakeSampleRequest();  // just sampled
  snapshot_ = state_->Snapshot();
  worker_ = std::thread([this] { Loop(); });
  if (devices_) sampler_ = std::thread([this] { SampleLoop(); });
  ArmSampling();
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(alive_->mu);
    alive_->self = nullptr;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  sampler_cv_.notify_all();
  idle_cv_.notify_all();
  worker_.join();
  if (sampler_.joinable()) sampler_.join();
}

std::function<void(Event)> Scheduler::GuardedPost() {
  return [alive = alive_](Event e) {
    std::lock_guard<std::mutex> lock(alive->mu);
    if (alive->self) alive->self->Post(std::move(e));
  };
}

BackendSink Scheduler::Sink() {
  return [post = GuardedPost()](BackendEvent e) { post(event::Runner{std::move(e)}); };
}

namespace {

// A caller blocked on this event's reply must not wait forever once the worker is gone.
void RejectStopping(Event& e) {
  const Error stopping(ErrorKind::kUnavailable, "shutting_down", "the scheduler is stopping");
  if (auto* s = std::get_if<event::Submit>(&e)) {
    s->reply(stopping);
  } else if (auto* c = std::get_if<event::Cancel>(&e)) {
    c->reply(stopping);
  } else if (auto* l = std::get_if<event::Load>(&e); l && l->reply) {
    l->reply(stopping);
  } else if (auto* u = std::get_if<event::Unload>(&e)) {
    u->reply(stopping);
  } else if (auto* a = std::get_if<event::StopAdmitting>(&e)) {
    a->done();
  } else if (auto* r = std::get_if<event::Reconfigure>(&e)) {
    r->done();
  } else if (auto* d = std::get_if<event::Redeclare>(&e)) {
    d->done();
  } else if (auto* p = std::get_if<event::Placeable>(&e)) {
    p->reply({});
  }
}

// Makes the event's reply record its answer in `answers` instead of answering at once.
void DeferReplies(Event& e, std::vector<std::function<void()>>& answers) {
  auto defer = [&answers](std::function<void(Status)>& reply) {
    if (!reply) return;
    reply = [&answers, original = std::move(reply)](Status st) {
      answers.push_back([original, st = std::move(st)] { original(st); });
    };
  };
  if (auto* s = std::get_if<event::Submit>(&e)) {
    defer(s->reply);
  } else if (auto* c = std::get_if<event::Cancel>(&e)) {
    defer(c->reply);
  } else if (auto* l = std::get_if<event::Load>(&e)) {
    defer(l->reply);
  } else if (auto* u = std::get_if<event::Unload>(&e)) {
    defer(u->reply);
  } else if (auto* a = std::get_if<event::StopAdmitting>(&e); a && a->done) {
    a->done = [&answers, original = std::move(a->done)] { answers.push_back(original); };
  } else if (auto* r = std::get_if<event::Reconfigure>(&e); r && r->done) {
    r->done = [&answers, original = std::move(r->done)] { answers.push_back(original); };
  } else if (auto* d = std::get_if<event::Redeclare>(&e); d && d->done) {
    d->done = [&answers, original = std::move(d->done)] { answers.push_back(original); };
  }
}

using Reply = std::function<void(Status)>;

// Posts the event `make(reply)` builds and blocks until the worker answers through `reply` (or
// Post rejects it because the scheduler is stopping).
template <class Make>
Status PostAndWait(Scheduler& scheduler, Make make) {
  auto done = std::make_shared<std::promise<Status>>();
  auto result = done->get_future();
  scheduler.Post(make([done](Status st) { done->set_value(std::move(st)); }));
  return result.get();
}

}  // namespace

void Scheduler::Post(Event event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_) {
      events_.push_back(std::move(event));
      cv_.notify_one();
      return;
    }
  }
  RejectStopping(event);
}

Status Scheduler::Submit(SubmitRequest request) {
  return PostAndWait(*this, [&](Reply reply) {
    return event::Submit{std::move(request), std::move(reply)};
  });
}

Status Scheduler::Cancel(const std::string& job_id) {
  return PostAndWait(*this, [&](Reply reply) { return event::Cancel{job_id, std::move(reply)}; });
}

void Scheduler::Feed(const std::string& job_id, nlohmann::json input) {
  Post(event::Feed{job_id, std::move(input)});
}

void Scheduler::Preload(const std::string& model) {
  Post(event::Load{LoadRequest{model, "", kKeepForever}, {}});
}

Status Scheduler::Load(const LoadRequest& request) {
  return PostAndWait(*this, [&](Reply reply) { return event::Load{request, std::move(reply)}; });
}

Status Scheduler::Unload(const std::string& model) {
  return PostAndWait(*this, [&](Reply reply) { return event::Unload{model, std::move(reply)}; });
}

std::vector<std::string> Scheduler::Placeable(const std::vector<std::string>& models) {
  auto done = std::make_shared<std::promise<std::vector<std::string>>>();
  auto result = done->get_future();
  Post(event::Placeable{models, [done](std::vector<std::string> placeable) {
                          done->set_value(std::move(placeable));
                        }});
  return result.get();
}

// These two have no outcome to report: PostAndWait only waits for the worker.
void Scheduler::StopAdmitting() {
  (void)PostAndWait(*this, [](Reply reply) {
    return event::StopAdmitting{[reply = std::move(reply)] { reply(Status()); }};
  });
}

void Scheduler::Reconfigure(const SchedulerConfig& config) {
  (void)PostAndWait(*this, [&](Reply reply) {
    return event::Reconfigure{config, [reply = std::move(reply)] { reply(Status()); }};
  });
}

void Scheduler::Redeclare(const std::vector<std::string>& models) {
  (void)PostAndWait(*this, [&](Reply reply) {
    return event::Redeclare{models, [reply = std::move(reply)] { reply(Status()); }};
  });
}

SchedulerSnapshot Scheduler::Snapshot() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return snapshot_;
}

std::optional<JobInfo> Scheduler::FindJob(const std::string& id) const {
  std::lock_guard<std::mutex> lock(jobs_mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return it->second;
}

std::vector<JobInfo> Scheduler::Jobs() const {
  std::vector<JobInfo> out;
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    out.reserve(jobs_.size());
    for (const auto& [id, j] : jobs_) out.push_back(j);
  }
  std::sort(out.begin(), out.end(), [](const JobInfo& a, const JobInfo& b) {
    return a.job.created_ms != b.job.created_ms ? a.job.created_ms < b.job.created_ms
                                                : a.job.id < b.job.id;
  });
  return out;
}

void Scheduler::PublishJobs() {
  std::lock_guard<std::mutex> lock(jobs_mu_);
  state_->TakeJobChanges([this](const std::string& id, const JobInfo* info) {
    if (info) {
      jobs_[id] = *info;
    } else {
      jobs_.erase(id);
    }
  });
}

void Scheduler::WaitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] {
    return stop_ || (events_.empty() && !busy_ && !sample_requested_ && !sampling_);
  });
}

void Scheduler::ArmSampling() {
  if (config_.sample_interval_ms <= 0 || !devices_) return;
  // The timer only signals the sampler: alive->mu is never held across a driver call.
  clock_.Schedule(clock_.NowMs() + config_.sample_interval_ms, [alive = alive_] {
    std::lock_guard<std::mutex> lock(alive->mu);
    if (!alive->self) return;
    alive->self->RequestSample();
    alive->self->ArmSampling();
  });
}

void Scheduler::RequestSample() {
  if (!devices_) return;
  std::lock_guard<std::mutex> lock(mu_);
  sample_requested_ = true;
  sampler_cv_.notify_one();
}

void Scheduler::SampleLoop() {
  // How often a sample is retaken because an event ran while it was taken; then the last one is
  // sent as it is (its charges were read first: a runner started meanwhile counts twice until
  // the next sample, which that event asked for; never zero times).
  constexpr int kTries = 4;
  constexpr auto kWaitBetweenEvents = std::chrono::milliseconds(100);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    sampler_cv_.wait(lock, [&] { return stop_ || sample_requested_; });
    if (stop_) break;
    sample_requested_ = false;
    sampling_ = true;
    Result<std::vector<gpu::DeviceSample>> samples = std::vector<gpu::DeviceSample>{};
    std::map<std::string, int64_t> charged;
    for (int attempt = 1;; ++attempt) {
      idle_cv_.wait_for(lock, kWaitBetweenEvents, [&] { return stop_ || !busy_; });
      const uint64_t started = events_started_;
      const bool between = !busy_;
      lock.unlock();
      charged.clear();
      for (const DeviceLedger& d : Snapshot().devices) {
        if (!d.cpu) charged[d.name] = d.memory.allocated;
      }
      samples = devices_();  // the driver: no lock held
      lock.lock();
      if (stop_ || attempt >= kTries || (between && events_started_ == started)) break;
    }
    sampling_ = false;
    if (stop_) break;
    events_.push_back(event::DeviceSampleReady{std::move(samples), std::move(charged)});
    cv_.notify_one();
    idle_cv_.notify_all();
  }
  sampling_ = false;
  idle_cv_.notify_all();
}

void Scheduler::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !events_.empty(); });
    if (stop_) break;
    Event e = std::move(events_.front());
    events_.pop_front();
    busy_ = true;
    ++events_started_;
    lock.unlock();
    // Callers are answered once what the event did is published: a Submit that returned finds
    // its job with FindJob, a StopAdmitting that returned sees admitting = false.
    std::vector<std::function<void()>> answers;
    DeferReplies(e, answers);
    state_->Handle(std::move(e));
    PublishJobs();
    SchedulerSnapshot snap = state_->Snapshot();
    {
      std::lock_guard<std::mutex> snap_lock(snapshot_mu_);
      snapshot_ = std::move(snap);
    }
    for (auto& answer : answers) answer();
    const bool resample = state_->TakeSampleRequest() && devices_;
    lock.lock();
    busy_ = false;
    if (resample) {
      sample_requested_ = true;
      sampler_cv_.notify_one();
    }
    idle_cv_.notify_all();  // WaitIdle, and a sampler waiting for the worker to be between events
  }
  // Callers blocked on a reply must not wait forever.
  for (auto& e : events_) RejectStopping(e);
  events_.clear();
  idle_cv_.notify_all();
  lock.unlock();
  state_->StopAll();
}

void AdvanceTo(Scheduler& scheduler, VirtualClock& clock, int64_t until_ms) {
  scheduler.WaitIdle();
  while (clock.FireNext(until_ms)) scheduler.WaitIdle();
  clock.SetNow(until_ms);
  scheduler.WaitIdle();
}

}  // namespace steno::sched
