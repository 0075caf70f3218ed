// The alert state machine: observations and times in, transitions out. Pure: no clock, threads,
// I/O or logging (AlertMonitor adds those), so every behaviour is testable by feeding numbers.
//
// Each alert series (a rule and a label set, e.g. memory_usage{device="cuda:0"}) moves through
//
//   inactive --condition true--> pending --true for for_ms--> FIRING --not true for
//   resolve_after_ms--> RESOLVED (= inactive again)
//
// and emits exactly two transitions per firing: one when it fires, one when it resolves.
// Hysteresis, both ways, so a value hovering around the threshold does not spam:
//   - pending needs the condition in every evaluation: one evaluation without it drops the
//     series back to inactive and the for_ms clock starts again from the next true one. No
//     transition is emitted for a pending series, ever.
//   - a firing alert resolves only after resolve_after_ms without the condition having been
//     seen; if it returns sooner, the alert simply stays firing (same started_ms, no new
//     transition). After it resolves, firing again takes a full pending cycle of for_ms.
// A series with for_ms = 0 fires in the evaluation that first sees its condition.
//
// A series with no reading in an evaluation (memory of a device that is gone) counts as its
// condition being false. Evaluations are expected at a steady interval; durations are measured
// between evaluation times, so an alert fires at the first evaluation at or after for_ms.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "alerts/alert_rules.h"
#include "alerts/alert_types.h"
#include "core/result.h"

namespace steno::alerts {

class AlertEngine {
 public:
  AlertEngine() = default;  // no rules: nothing fires until SetRules

  // Replaces the rule set (validated whole by ValidateRules; on error nothing changes). Alerts of
  // rules kept under the same name and kind keep their state (a reload does not re-fire them);
  // firing alerts of rules removed or changed in kind are resolved, and returned as transitions
  // so that whoever was told they fired hears that they ended.
  Result<std::vector<AlertTransition>> SetRules(std::vector<AlertRule> rules, int64_t now_ms);
  const std::vector<AlertRule>& rules() const { return rules_; }

  // One evaluation at `now_ms` (non-decreasing between calls). Returns the transitions, in rule
  // order, then label order.
  std::vector<AlertTransition> Evaluate(int64_t now_ms, const Observation& obs);

  // The alerts firing now, oldest first (ties by key).
  std::vector<ActiveAlert> Active() const;
  // How many series are pending (condition true, for_ms not reached); for tests and debugging.
  size_t PendingCount() const;

 private:
  struct Reading {
    bool active = false;    // the rule's condition holds for this series now
    bool recurred = false;  // an event of this series happened now (keeps a firing one alive)
    double value = 0;
    std::string detail{};  // more for the message (DescribeAlert)
  };
  struct Series {
    bool firing = false;
    int64_t pending_since_ms = 0;
    int64_t started_ms = 0;
    int64_t last_true_ms = 0;
    double value = 0;
    double threshold = 0;  // the rule's, as it applied at the latest evaluation
    std::string message;
    std::string detail;  // the latest reading's
  };
  struct JobSample {
    int64_t at_ms;
    int64_t finished;
    int64_t failed;
  };

  void Record(int64_t now_ms, const Observation& obs);
  std::map<Labels, Reading> Read(const AlertRule& rule, int64_t now_ms,
                                 const Observation& obs) const;
  AlertTransition MakeTransition(const AlertRule& rule, const Labels& labels, const Series& s,
                                 AlertState state, int64_t now_ms) const;
  int64_t MaxWindowMs(RuleKind kind) const;

  std::vector<AlertRule> rules_;
  std::map<std::string, std::map<Labels, Series>> series_;  // by rule name

  // History the windowed rules read, trimmed to the longest window in use.
  bool have_job_baseline_ = false;
  int64_t last_finished_ = 0, last_failed_ = 0;
  std::deque<JobSample> jobs_;                          // deltas per evaluation
  std::map<std::string, std::deque<int64_t>> crashes_;  // model -> crash times
  std::set<std::string> crashed_now_;                   // models that crashed this evaluation
  std::set<std::string> known_devices_;                 // every device ever seen present
};

// The message for one alert state, e.g. "cuda:0 memory usage is 95.0%, above 90% for 5m".
// `detail` (what the observation said beyond the value) is added to a firing one's.
std::string DescribeAlert(const AlertRule& rule, const Labels& labels, double value,
                          AlertState state, const std::string& detail = {});

}  // namespace steno::alerts
