#include "sched/scheduler.h"

#include <future>

#include "sched/scheduler_state.h"

namespace steno::sched {

Scheduler::Scheduler(SchedulerConfig config, Clock& clock, RunnerBackend& backend,
                     gpu::DevicesFn devices, ModelInfoFn models)
    : config_(config), clock_(clock), devices_(devices) {
  alive_->self = this;
  state_ = std::make_unique<SchedulerState>(std::move(config), clock, backend, std::move(devices),
                                            std::move(models), GuardedPost());
  snapshot_ = state_->Snapshot();
  worker_ = std::thread([this] { Loop(); });
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
  worker_.join();
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

void Scheduler::Post(Event event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    events_.push_back(std::move(event));
  }
  cv_.notify_one();
}

Status Scheduler::Submit(SubmitRequest request) {
  auto done = std::make_shared<std::promise<Status>>();
  auto result = done->get_future();
  Post(event::Submit{std::move(request), [done](Status st) { done->set_value(std::move(st)); }});
  return result.get();
}

Status Scheduler::Cancel(const std::string& job_id) {
  auto done = std::make_shared<std::promise<Status>>();
  auto result = done->get_future();
  Post(event::Cancel{job_id, [done](Status st) { done->set_value(std::move(st)); }});
  return result.get();
}

void Scheduler::Preload(const std::string& model) {
  Post(event::Preload{model});
}

SchedulerSnapshot Scheduler::Snapshot() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return snapshot_;
}

void Scheduler::WaitIdle() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return stop_ || (events_.empty() && !busy_); });
}

void Scheduler::ArmSampling() {
  if (config_.sample_interval_ms <= 0 || !devices_) return;
  // Sampled on the clock's thread, so a slow driver call never stalls the worker.
  clock_.Schedule(clock_.NowMs() + config_.sample_interval_ms, [alive = alive_] {
    std::lock_guard<std::mutex> lock(alive->mu);
    if (!alive->self) return;
    alive->self->Post(event::DeviceSampleReady{alive->self->devices_()});
    alive->self->ArmSampling();
  });
}

void Scheduler::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !events_.empty(); });
    if (stop_) break;
    Event e = std::move(events_.front());
    events_.pop_front();
    busy_ = true;
    lock.unlock();
    state_->Handle(std::move(e));
    SchedulerSnapshot snap = state_->Snapshot();
    {
      std::lock_guard<std::mutex> snap_lock(snapshot_mu_);
      snapshot_ = std::move(snap);
    }
    lock.lock();
    busy_ = false;
    if (events_.empty()) idle_cv_.notify_all();
  }
  // Pending Submit/Cancel callers must not wait forever.
  for (auto& e : events_) {
    if (auto* s = std::get_if<event::Submit>(&e)) {
      s->reply(Error(ErrorKind::kUnavailable, "shutting_down", "the scheduler is stopping"));
    } else if (auto* c = std::get_if<event::Cancel>(&e)) {
      c->reply(Error(ErrorKind::kUnavailable, "shutting_down", "the scheduler is stopping"));
    }
  }
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
