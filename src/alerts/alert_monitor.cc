#include "alerts/alert_monitor.h"

#include <condition_variable>
#include <thread>

#include "core/log.h"

namespace steno::alerts {
namespace {

constexpr size_t kMaxPendingEvents = 1000;

template <class T>
void AppendBounded(std::vector<T>& events, T event) {
  if (events.size() >= kMaxPendingEvents) events.erase(events.begin());
  events.push_back(std::move(event));
}

}  // namespace

struct AlertMonitor::TimerState {
  std::mutex mu;
  std::condition_variable cv;
  AlertMonitor* owner = nullptr;  // used only while !stopped (Stop waits for in_flight)
  bool started = false;
  bool stopped = false;
  bool in_flight = false;
  std::thread::id tick_thread;
  sched::Clock::TimerId timer = 0;
};

Result<std::unique_ptr<AlertMonitor>> AlertMonitor::Create(sched::Clock& clock,
                                                           AlertMonitorOptions options,
                                                           ObserveFn observe,
                                                           WebhookNotifier* notifier,
                                                           TransitionListener listener) {
  if (options.interval_ms < 1) {
    return Error(ErrorKind::kBadInput, "bad_alert_interval",
                 "the alert evaluation interval must be at least 1 ms");
  }
  if (Status s = ValidateRules(options.rules); !s) return s.error();
  return std::unique_ptr<AlertMonitor>(new AlertMonitor(
      clock, std::move(options), std::move(observe), notifier, std::move(listener)));
}

AlertMonitor::AlertMonitor(sched::Clock& clock, AlertMonitorOptions options, ObserveFn observe,
                           WebhookNotifier* notifier, TransitionListener listener)
    : clock_(clock),
      interval_ms_(options.interval_ms),
      observe_(std::move(observe)),
      notifier_(notifier),
      listener_(std::move(listener)),
      timer_(std::make_shared<TimerState>()) {
  timer_->owner = this;
  // Validated by Create; no alert can be firing yet, so there are no transitions.
  (void)engine_.SetRules(std::move(options.rules), clock_.NowMs());
}

AlertMonitor::~AlertMonitor() {
  Stop();
}

void AlertMonitor::Start() {
  std::lock_guard<std::mutex> lock(timer_->mu);
  if (timer_->started || timer_->stopped) return;
  timer_->started = true;
  const int64_t first = clock_.NowMs();
  auto state = timer_;
  timer_->timer = clock_.Schedule(first, [state, first] { OnTimer(state, first); });
}

void AlertMonitor::Stop() {
  std::unique_lock<std::mutex> lock(timer_->mu);
  if (timer_->stopped) return;
  timer_->stopped = true;
  // From inside an evaluation (a listener calling Stop) waiting would never end.
  if (timer_->tick_thread != std::this_thread::get_id()) {
    timer_->cv.wait(lock, [&] { return !timer_->in_flight; });
  }
  clock_.CancelTimer(timer_->timer);
}

void AlertMonitor::OnTimer(const std::shared_ptr<TimerState>& state, int64_t scheduled_ms) {
  {
    std::lock_guard<std::mutex> lock(state->mu);
    if (state->stopped) return;
    state->in_flight = true;
    state->tick_thread = std::this_thread::get_id();
  }
  AlertMonitor* self = state->owner;
  self->EvaluateNow();
  std::lock_guard<std::mutex> lock(state->mu);
  state->in_flight = false;
  state->tick_thread = {};
  if (!state->stopped) {
    // Fixed rate from the first evaluation: a late timer does not shift the later ones, and
    // evaluations missed entirely (a suspended process) are skipped, not replayed.
    const int64_t now = self->clock_.NowMs();
    int64_t next = scheduled_ms + self->interval_ms_;
    if (next <= now) next = now + self->interval_ms_ - (now - scheduled_ms) % self->interval_ms_;
    state->timer = self->clock_.Schedule(next, [state, next] { OnTimer(state, next); });
  }
  state->cv.notify_all();
}

void AlertMonitor::EvaluateNow() {
  std::lock_guard<std::mutex> evaluating(evaluate_mu_);
  Observation obs = observe_ ? observe_() : Observation{};
  {
    std::lock_guard<std::mutex> lock(events_mu_);
    for (auto& c : crashes_) obs.runner_crashes.push_back(std::move(c));
    for (auto& u : unreleased_) obs.unreleased.push_back(std::move(u));
    crashes_.clear();
    unreleased_.clear();
  }
  std::vector<AlertTransition> transitions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    transitions = engine_.Evaluate(clock_.NowMs(), obs);
    ++evaluations_;
  }
  Dispatch(transitions);
}

Status AlertMonitor::SetRules(std::vector<AlertRule> rules) {
  std::lock_guard<std::mutex> evaluating(evaluate_mu_);
  Result<std::vector<AlertTransition>> transitions = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    return engine_.SetRules(std::move(rules), clock_.NowMs());
  }();
  if (!transitions.ok()) {
    spdlog::error("alert rules rejected, keeping the running ones: {}",
                  transitions.error().message);
    return transitions.error();
  }
  spdlog::info("alert rules loaded ({} rules)", Rules().size());
  Dispatch(*transitions);
  return {};
}

std::vector<AlertRule> AlertMonitor::Rules() const {
  std::lock_guard<std::mutex> lock(mu_);
  return engine_.rules();
}

std::vector<ActiveAlert> AlertMonitor::Active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return engine_.Active();
}

int64_t AlertMonitor::evaluations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return evaluations_;
}

void AlertMonitor::ReportRunnerCrash(RunnerCrash crash) {
  std::lock_guard<std::mutex> lock(events_mu_);
  AppendBounded(crashes_, std::move(crash));
}

void AlertMonitor::ReportUnreleased(UnreleasedMemory unreleased) {
  std::lock_guard<std::mutex> lock(events_mu_);
  AppendBounded(unreleased_, std::move(unreleased));
}

void AlertMonitor::Dispatch(const std::vector<AlertTransition>& transitions) {
  for (const AlertTransition& t : transitions) {
    const std::string key = AlertKey(t.rule, t.labels);
    if (t.state == AlertState::kFiring) {
      spdlog::warn("alert firing: {} [{}] {}", key, SeverityName(t.severity), t.message);
    } else {
      spdlog::info("alert resolved: {} [{}] {}", key, SeverityName(t.severity), t.message);
    }
    if (notifier_) notifier_->Notify(t);
    if (listener_) listener_(t);
  }
}

}  // namespace steno::alerts
