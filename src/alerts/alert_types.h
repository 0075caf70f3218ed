// What the alert engine reads (an Observation of the service) and what it reports (transitions
// and the alerts firing now), with their JSON forms for the API, the dashboard and webhooks.
//
// Times are the clock's milliseconds (sched::Clock::NowMs). The JSON adds RFC 3339 strings that
// are only meaningful when the clock counts from the Unix epoch (RealClock(epoch_ms = the
// system time at start), which is how the server builds it).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "alerts/alert_rules.h"

namespace steno::alerts {

// Label name -> value, e.g. {"device": "cuda:0"} or {"model": "base.en"}; empty for the
// service-wide rules (queue_length, error_rate). Ordered, so a label set has one spelling.
using Labels = std::map<std::string, std::string>;

struct DeviceObservation {
  std::string name;          // "cuda:0"
  double usage_percent = 0;  // used / total × 100 as the device reports it (all tenants)
  bool present = true;       // false: listed (configured) but not answering now
};

struct RunnerCrash {
  std::string model;
  std::string device;  // informational
};

// An unload whose release was not verified: `leftover_bytes` were still in use on the device.
struct UnreleasedMemory {
  std::string device;
  int64_t leftover_bytes = 0;
  std::string model;  // informational
};

// What the scheduler's ledger charges on a GPU against what the device can hold
// (device_oversubscribed).
struct LedgerObservation {
  std::string device;          // "cuda:0"
  int64_t charged_bytes = 0;   // our runners' charges plus other tenants' memory
  int64_t capacity_bytes = 0;  // total − reserve
  // Models with a runner there that was charged more than it was admitted with, because its
  // processes were measured holding more (the likely cause), by name.
  std::vector<std::string> grown_models;
};

// The filesystem that holds the data dir (uploads, the job database).
struct DiskObservation {
  int64_t free_bytes = 0;      // what steno may still write
  int64_t min_free_bytes = 0;  // the upload margin (--min-free-disk); 0: none
};

// One look at the service, taken by the caller every evaluation.
struct Observation {
  // Devices in this sample. A device seen in an earlier observation that is missing here, or is
  // here with present = false, is "missing" (device_missing).
  std::vector<DeviceObservation> devices;
  int64_t queue_length = 0;  // jobs waiting to start
  // nullopt: not read this time (disk_space_low sees no reading: its condition is false).
  std::optional<DiskObservation> disk;
  // Cumulative counters since the process started (as /metrics exposes them), not deltas: a
  // skipped observation loses nothing. finished counts jobs that ended completed or failed
  // (cancelled ones are the user's choice and count in neither); failed ⊆ finished. The first
  // observation, and any observation where a counter went down (it was reset), only sets the
  // baseline that later ones are compared with.
  int64_t jobs_finished_total = 0;
  int64_t jobs_failed_total = 0;
  // Events since the previous observation (each reported once).
  std::vector<RunnerCrash> runner_crashes;
  std::vector<UnreleasedMemory> unreleased;
  // The scheduler's ledgers, one per GPU (none: not read this time).
  std::vector<LedgerObservation> ledgers;
};

enum class AlertState { kFiring, kResolved };
const char* AlertStateName(AlertState state);  // "firing", "resolved"

// An alert started firing or was resolved. Every firing transition is followed by exactly one
// resolved transition with the same rule, labels and started_ms (unless the process stops).
struct AlertTransition {
  std::string rule;
  RuleKind kind = RuleKind::kQueueLength;
  Severity severity = Severity::kWarning;
  Labels labels;
  AlertState state = AlertState::kFiring;
  double value = 0;  // the observed value at this transition (see alert_rules.h per kind)
  double threshold = 0;
  int64_t started_ms = 0;  // when the alert started firing
  int64_t at_ms = 0;       // when this transition happened (== started_ms when firing)
  std::string message;     // one sentence for a person
};

// An alert firing now (GET /v1/alerts).
struct ActiveAlert {
  std::string rule;
  RuleKind kind = RuleKind::kQueueLength;
  Severity severity = Severity::kWarning;
  Labels labels;
  double value = 0;  // the latest observed value
  double threshold = 0;
  int64_t since_ms = 0;  // when it started firing
  std::string message;   // describes the latest value
};

// "memory_usage{device=\"cuda:0\"}": identifies one alert series (rule and labels).
std::string AlertKey(const std::string& rule, const Labels& labels);

// "5m", "90s", "1h30m", "250ms": for messages.
std::string FormatDurationMs(int64_t ms);
// "2024-05-01T12:00:00.250Z" from Unix milliseconds.
std::string FormatRfc3339Ms(int64_t unix_ms);

// {"name", "key", "kind", "status", "severity", "labels", "value", "threshold", "started_ms",
//  "started_at", "message"} plus "resolved_ms", "resolved_at" when resolved: the webhook body.
nlohmann::json ToJson(const AlertTransition& t);
// {"name", "key", "kind", "severity", "labels", "value", "threshold", "since_ms", "since",
//  "message"}.
nlohmann::json ToJson(const ActiveAlert& a);
// {"alerts": [...]} in the order given.
nlohmann::json ToJson(const std::vector<ActiveAlert>& active);

}  // namespace steno::alerts
