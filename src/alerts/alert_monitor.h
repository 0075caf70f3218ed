// AlertMonitor: runs the alert engine every interval on a sched::Clock, and tells the world.
//
// Every `interval_ms` (a clock timer; no polling thread of its own) it calls the caller's
// `observe` function, adds the events reported since the last evaluation (ReportRunnerCrash,
// ReportUnreleased: they are stamped with that evaluation's time), evaluates the rules and, for
// each transition, in order: logs it (warn when firing, info when resolved), queues it on the
// webhook notifier (if any) and calls the listener (if any; the API feeds SSE and metrics).
//
// Threading: evaluations run on the clock's timer thread (RealClock) or inside FireNext
// (VirtualClock). `observe` and the listener must be quick and must not call Stop or SetRules
// (they may call Active). Give the monitor its own RealClock so that a slow device sample never
// delays another component's timers. Every public method is thread-safe. Evaluations never
// overlap, and transitions reach the notifier and listener in the order they happened.
//
// Times: evaluations happen at start, start + interval, start + 2 × interval, ... (a late one
// does not shift the later ones; evaluations missed entirely are skipped, not replayed).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "alerts/alert_engine.h"
#include "alerts/webhook.h"
#include "core/result.h"
#include "sched/clock.h"

namespace steno::alerts {

struct AlertMonitorOptions {
  int64_t interval_ms = 15'000;
  std::vector<AlertRule> rules = DefaultRules();
};

using ObserveFn = std::function<Observation()>;
using TransitionListener = std::function<void(const AlertTransition&)>;

class AlertMonitor {
 public:
  // Validates the rules (as SetRules) and interval_ms >= 1 (kBadInput "bad_alert_interval").
  // `clock`, and `notifier` when given, must outlive the monitor. Does not start it.
  static Result<std::unique_ptr<AlertMonitor>> Create(sched::Clock& clock,
                                                      AlertMonitorOptions options,
                                                      ObserveFn observe,
                                                      WebhookNotifier* notifier = nullptr,
                                                      TransitionListener listener = {});
  ~AlertMonitor();  // Stop()

  AlertMonitor(const AlertMonitor&) = delete;
  AlertMonitor& operator=(const AlertMonitor&) = delete;

  // Schedules the first evaluation at the clock's now, then every interval. Once only.
  void Start();
  // Cancels the timer and waits for an evaluation in progress. No callback runs afterwards.
  void Stop();

  // Replaces the rules (a reload). An invalid set is rejected whole and the running rules stay
  // (kBadInput "bad_alert_rule"). Transitions it causes (firing alerts of removed rules resolve)
  // are dispatched like an evaluation's.
  Status SetRules(std::vector<AlertRule> rules);
  std::vector<AlertRule> Rules() const;

  // The alerts firing now, oldest first (see AlertEngine::Active).
  std::vector<ActiveAlert> Active() const;

  // Events for the next evaluation (at most 1,000 of each kind are kept; older ones are dropped).
  void ReportRunnerCrash(RunnerCrash crash);
  void ReportUnreleased(UnreleasedMemory unreleased);

  // One evaluation now, on the caller's thread (what the timer does).
  void EvaluateNow();
  int64_t evaluations() const;

 private:
  struct TimerState;  // shared with timer callbacks, which may outlive a Stop race otherwise
  AlertMonitor(sched::Clock& clock, AlertMonitorOptions options, ObserveFn observe,
               WebhookNotifier* notifier, TransitionListener listener);
  static void OnTimer(const std::shared_ptr<TimerState>& state, int64_t scheduled_ms);
  void Dispatch(const std::vector<AlertTransition>& transitions);

  sched::Clock& clock_;
  const int64_t interval_ms_;
  const ObserveFn observe_;
  WebhookNotifier* const notifier_;
  const TransitionListener listener_;
  std::shared_ptr<TimerState> timer_;

  std::mutex evaluate_mu_;  // one evaluation or rule change at a time, dispatch included
  mutable std::mutex mu_;   // engine_, evaluations_
  AlertEngine engine_;
  int64_t evaluations_ = 0;
  std::mutex events_mu_;
  std::vector<RunnerCrash> crashes_;
  std::vector<UnreleasedMemory> unreleased_;
};

}  // namespace steno::alerts
