// Alert rules: what to watch, how bad is bad, and for how long, loaded from the config file (and
// again on SIGHUP). A rule set is validated whole: one bad rule rejects the set, so a reload
// with a typo keeps the rules that were running instead of half of the new ones.
//
// Kinds and what `threshold`, `for_ms`, `window_ms`, `resolve_after_ms` mean for each (value is
// what an alert reports; "fires when" is the condition that must hold for `for_ms`):
//
//   memory_usage_percent  one alert per present device (label "device"); value = used/total in
//                         percent; fires when value > threshold for for_ms.
//   queue_length          value = jobs waiting; fires when value > threshold for for_ms.
//   error_rate            value = failed / finished jobs over the last window_ms, in percent;
//                         fires when value > threshold and at least min_jobs jobs finished in the
//                         window (one failure out of one job is not a rate).
//   memory_not_released   an event: an unload left more than threshold bytes on a device (label
//                         "device"); value = the leftover bytes. Fires at the event.
//   runner_crash_loop     an event: a model's runner crashed and that model has now crashed at
//                         least threshold times within window_ms (label "model"); value = the
//                         crashes in the window. Fires at the crash that completes the loop;
//                         while it fires, any crash of the model counts as a recurrence.
//   device_missing        a device seen in an earlier observation is absent or not present now
//                         (label "device"); value = 1. for_ms tolerates short dropouts.
//   device_oversubscribed one alert per GPU (label "device"); value = what the scheduler's ledger
//                         charges there (our runners, as measured, plus other tenants) minus
//                         what the device can hold (total − reserve), in bytes; fires when value
//                         > threshold (bytes; default 0) for for_ms. It happens when runners grow
//                         past the footprint they were admitted with; the message names them.
//   disk_space_low        value = free bytes on the data dir's filesystem; fires when value <
//                         threshold (bytes) for for_ms. threshold 0 (the default) means the
//                         server's upload margin (--min-free-disk: below it uploads get 507), and
//                         the alert reports that margin as its threshold; with no margin either
//                         it never fires.
//
// Resolving: a firing alert resolves once its condition has not been seen true for
// resolve_after_ms (0: at the first evaluation where it is false). For the event kinds that is
// the quiet period without a recurrence; device_missing resolves when the device is back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace steno::alerts {

enum class RuleKind {
  kMemoryUsagePercent,
  kQueueLength,
  kErrorRate,
  kMemoryNotReleased,
  kRunnerCrashLoop,
  kDeviceMissing,
  kDiskSpaceLow,
  kDeviceOversubscribed,
};

// "memory_usage_percent", "queue_length", ... (the JSON spelling).
const char* RuleKindName(RuleKind kind);
std::optional<RuleKind> ParseRuleKind(std::string_view name);
// memory_not_released and runner_crash_loop: conditions that are instants, not states, so they
// fire at once (for_ms must be 0) and resolve after a quiet period.
bool IsEventKind(RuleKind kind);

enum class Severity { kInfo, kWarning, kCritical };
const char* SeverityName(Severity severity);  // "info", "warning", "critical"
std::optional<Severity> ParseSeverity(std::string_view name);

struct AlertRule {
  std::string name;  // unique in a set; [a-z0-9_]+, 1..64 chars (it becomes a metric label)
  RuleKind kind = RuleKind::kQueueLength;
  double threshold = 0;
  int64_t for_ms = 0;            // the condition must hold this long before the alert fires
  int64_t window_ms = 0;         // error_rate and runner_crash_loop only (> 0 there)
  int64_t resolve_after_ms = 0;  // see above
  int64_t min_jobs = 0;          // error_rate only
  Severity severity = Severity::kWarning;
  std::string description;  // optional; prefixed to messages when set
};

// The defaults from the original design: memory > 90 % for 5 min (per device), queue > 10 for
// 10 min, error rate > 10 % over 5 min (at least 5 jobs), an unload leaving any bytes behind, 3
// crashes of one model within 10 min, a device that disappeared, the data dir's free space
// below the upload margin, a device charged more than it holds; the event alerts resolve after
// 10 quiet minutes. Names: memory_usage, queue_length, error_rate, memory_not_released,
// runner_crash_loop, device_missing, disk_space_low, device_oversubscribed.
std::vector<AlertRule> DefaultRules();

// The defaults for one kind under `name` (what a JSON rule starts from before its fields).
AlertRule DefaultRuleFor(RuleKind kind, std::string name);

// Checks one rule; kBadInput "bad_alert_rule" naming the rule and field.
Status ValidateRule(const AlertRule& rule);
// Checks a set: every rule, and that names are unique.
Status ValidateRules(const std::vector<AlertRule>& rules);

// Parses a JSON array of rule objects:
//   [{"name": "gpu_hot", "kind": "memory_usage_percent", "threshold": 95, "for_ms": 60000,
//     "severity": "critical"}, ...]
// Required: name, kind. Every other field falls back to DefaultRuleFor(kind). Fields: threshold
// (number), for_ms, window_ms, resolve_after_ms, min_jobs (non-negative integers), severity
// ("info" | "warning" | "critical"), description (string). Unknown fields are errors (a typo
// such as "for" must not silently become a default). Errors are kBadInput "bad_alert_rule" whose
// message names the rule (by name, else by index) and the field, e.g.
//   alert rule "gpu_hot" (#1): "threshold" must be a number, got string
Result<std::vector<AlertRule>> ParseRulesJson(const nlohmann::json& rules);
// Same, from text; malformed JSON is kBadInput "bad_alert_rules_json".
Result<std::vector<AlertRule>> ParseRulesJsonText(std::string_view text);

// The rule as JSON (round-trips through ParseRulesJson).
nlohmann::json RuleToJson(const AlertRule& rule);

}  // namespace steno::alerts
