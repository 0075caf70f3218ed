#include "alerts/alert_rules.h"

#include <cmath>
#include <set>

#include <fmt/format.h>

namespace steno::alerts {
namespace {

constexpr int64_t kMinute = 60'000;
// Longer than any sensible alert duration; keeps sums of times far from overflow.
constexpr int64_t kMaxDurationMs = 30LL * 24 * 60 * kMinute;

struct KindInfo {
  RuleKind kind;
  const char* name;
};
constexpr KindInfo kKinds[] = {
    {RuleKind::kMemoryUsagePercent, "memory_usage_percent"},
    {RuleKind::kQueueLength, "queue_length"},
    {RuleKind::kErrorRate, "error_rate"},
    {RuleKind::kMemoryNotReleased, "memory_not_released"},
    {RuleKind::kRunnerCrashLoop, "runner_crash_loop"},
    {RuleKind::kDeviceMissing, "device_missing"},
    {RuleKind::kDiskSpaceLow, "disk_space_low"},
    {RuleKind::kDeviceOversubscribed, "device_oversubscribed"},
};

bool UsesWindow(RuleKind k) {
  return k == RuleKind::kErrorRate || k == RuleKind::kRunnerCrashLoop;
}

// A field problem: which field and what is wrong with it.
struct FieldError {
  std::string field;
  std::string problem;
};

std::optional<FieldError> CheckRule(const AlertRule& r) {
  if (r.name.empty() || r.name.size() > 64) {
    return FieldError{"name", "must be 1 to 64 characters"};
  }
  for (char c : r.name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return FieldError{"name", "may hold only a-z, 0-9 and _"};
    }
  }
  const char* kind = RuleKindName(r.kind);
  if (!std::isfinite(r.threshold) || r.threshold < 0) {
    return FieldError{"threshold", "must be a finite number >= 0"};
  }
  switch (r.kind) {
    case RuleKind::kMemoryUsagePercent:
    case RuleKind::kErrorRate:
      if (r.threshold >= 100) {
        return FieldError{"threshold", "is a percentage and must be below 100 (it fires above)"};
      }
      break;
    case RuleKind::kRunnerCrashLoop:
      if (r.threshold < 1 || r.threshold != std::floor(r.threshold)) {
        return FieldError{"threshold", "is a number of crashes and must be a whole number >= 1"};
      }
      break;
    case RuleKind::kDeviceMissing:
      if (r.threshold != 0) {
        return FieldError{"threshold", fmt::format("has no meaning for {}; leave it out", kind)};
      }
      break;
    default: break;
  }
  const std::pair<const char*, int64_t> durations[] = {
      {"for_ms", r.for_ms}, {"window_ms", r.window_ms}, {"resolve_after_ms", r.resolve_after_ms}};
  for (const auto& [field, v] : durations) {
    if (v < 0 || v > kMaxDurationMs) {
      return FieldError{field, fmt::format("must be between 0 and {} (30 days)", kMaxDurationMs)};
    }
  }
  if (IsEventKind(r.kind) && r.for_ms != 0) {
    return FieldError{"for_ms", fmt::format("must be 0 for {} (it fires at the event)", kind)};
  }
  if (UsesWindow(r.kind) && r.window_ms <= 0) {
    return FieldError{"window_ms", fmt::format("must be > 0 for {}", kind)};
  }
  if (!UsesWindow(r.kind) && r.window_ms != 0) {
    return FieldError{"window_ms", fmt::format("has no meaning for {}; leave it out", kind)};
  }
  if (r.kind == RuleKind::kErrorRate && r.min_jobs < 1) {
    return FieldError{"min_jobs", "must be >= 1 for error_rate"};
  }
  if (r.kind != RuleKind::kErrorRate && r.min_jobs != 0) {
    return FieldError{"min_jobs", fmt::format("has no meaning for {}; leave it out", kind)};
  }
  return std::nullopt;
}

Error BadRule(const std::string& who, const FieldError& e) {
  return Error(ErrorKind::kBadInput, "bad_alert_rule",
               fmt::format("alert rule {}: \"{}\" {}", who, e.field, e.problem));
}

const char* JsonTypeName(const nlohmann::json& v) {
  if (v.is_number()) return "number";
  return v.type_name();
}

}  // namespace

const char* RuleKindName(RuleKind kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) return k.name;
  }
  return "unknown";
}

std::optional<RuleKind> ParseRuleKind(std::string_view name) {
  for (const auto& k : kKinds) {
    if (name == k.name) return k.kind;
  }
  return std::nullopt;
}

bool IsEventKind(RuleKind kind) {
  return kind == RuleKind::kMemoryNotReleased || kind == RuleKind::kRunnerCrashLoop;
}

const char* SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kInfo: return "info";
    case Severity::kWarning: return "warning";
    case Severity::kCritical: return "critical";
  }
  return "warning";
}

std::optional<Severity> ParseSeverity(std::string_view name) {
  for (Severity s : {Severity::kInfo, Severity::kWarning, Severity::kCritical}) {
    if (name == SeverityName(s)) return s;
  }
  return std::nullopt;
}

AlertRule DefaultRuleFor(RuleKind kind, std::string name) {
  AlertRule r;
  r.name = std::move(name);
  r.kind = kind;
  switch (kind) {
    case RuleKind::kMemoryUsagePercent:
      r.threshold = 90;
      r.for_ms = 5 * kMinute;
      r.resolve_after_ms = kMinute;  // a card hovering at 90 % resolves once, not every sample
      break;
    case RuleKind::kQueueLength:
      r.threshold = 10;
      r.for_ms = 10 * kMinute;
      r.resolve_after_ms = kMinute;
      break;
    case RuleKind::kErrorRate:
      r.threshold = 10;
      r.window_ms = 5 * kMinute;
      r.min_jobs = 5;
      r.severity = Severity::kCritical;
      break;
    case RuleKind::kMemoryNotReleased:
      r.threshold = 0;
      r.resolve_after_ms = 10 * kMinute;
      break;
    case RuleKind::kRunnerCrashLoop:
      r.threshold = 3;
      r.window_ms = 10 * kMinute;
      r.resolve_after_ms = 10 * kMinute;
      r.severity = Severity::kCritical;
      break;
    case RuleKind::kDeviceMissing: r.severity = Severity::kCritical; break;
    case RuleKind::kDiskSpaceLow:
      r.threshold = 0;  // the server's --min-free-disk
      r.resolve_after_ms = kMinute;
      r.severity = Severity::kCritical;  // uploads are being refused
      break;
    case RuleKind::kDeviceOversubscribed:
      r.threshold = 0;  // bytes beyond what the device holds
      r.resolve_after_ms = kMinute;
      r.severity = Severity::kCritical;  // an allocation may fail any moment
      break;
  }
  return r;
}

std::vector<AlertRule> DefaultRules() {
  return {
      DefaultRuleFor(RuleKind::kMemoryUsagePercent, "memory_usage"),
      DefaultRuleFor(RuleKind::kQueueLength, "queue_length"),
      DefaultRuleFor(RuleKind::kErrorRate, "error_rate"),
      DefaultRuleFor(RuleKind::kMemoryNotReleased, "memory_not_released"),
      DefaultRuleFor(RuleKind::kRunnerCrashLoop, "runner_crash_loop"),
      DefaultRuleFor(RuleKind::kDeviceMissing, "device_missing"),
      DefaultRuleFor(RuleKind::kDiskSpaceLow, "disk_space_low"),
      DefaultRuleFor(RuleKind::kDeviceOversubscribed, "device_oversubscribed"),
  };
}

Status ValidateRule(const AlertRule& rule) {
  if (auto e = CheckRule(rule)) return BadRule(fmt::format("\"{}\"", rule.name), *e);
  return {};
}

Status ValidateRules(const std::vector<AlertRule>& rules) {
  std::set<std::string> names;
  for (const auto& r : rules) {
    if (Status s = ValidateRule(r); !s) return s;
    if (!names.insert(r.name).second) {
      return BadRule(fmt::format("\"{}\"", r.name), {"name", "is used by more than one rule"});
    }
  }
  return {};
}

Result<std::vector<AlertRule>> ParseRulesJson(const nlohmann::json& rules) {
  if (!rules.is_array()) {
    return Error(
        ErrorKind::kBadInput, "bad_alert_rule",
        fmt::format("alert rules must be a JSON array of objects, got {}", JsonTypeName(rules)));
  }
  std::vector<AlertRule> out;
  std::set<std::string> names;
  for (size_t i = 0; i < rules.size(); ++i) {
    const auto& j = rules[i];
    std::string who = fmt::format("#{}", i + 1);
    auto bad = [&](std::string field, std::string problem) {
      return BadRule(who, {std::move(field), std::move(problem)});
    };
    if (!j.is_object()) {
      return Error(ErrorKind::kBadInput, "bad_alert_rule",
                   fmt::format("alert rule {} must be an object, got {}", who, JsonTypeName(j)));
    }
    if (!j.contains("name")) return bad("name", "is required");
    if (!j["name"].is_string()) {
      return bad("name", fmt::format("must be a string, got {}", JsonTypeName(j["name"])));
    }
    const std::string name = j["name"].get<std::string>();
    who = fmt::format("\"{}\" (#{})", name, i + 1);
    if (!j.contains("kind")) return bad("kind", "is required");
    const auto& jk = j["kind"];
    std::optional<RuleKind> kind;
    if (jk.is_string()) kind = ParseRuleKind(jk.get<std::string>());
    if (!kind) {
      std::string known;
      for (const auto& k : kKinds) known += fmt::format("{}{}", known.empty() ? "" : ", ", k.name);
      return bad("kind", fmt::format("must be one of {}; got {}", known, jk.dump()));
    }
    AlertRule r = DefaultRuleFor(*kind, name);
    for (const auto& [key, v] : j.items()) {
      if (key == "name" || key == "kind") continue;
      if (key == "threshold") {
        if (!v.is_number()) {
          return bad(key, fmt::format("must be a number, got {}", JsonTypeName(v)));
        }
        r.threshold = v.get<double>();
      } else if (key == "for_ms" || key == "window_ms" || key == "resolve_after_ms" ||
                 key == "min_jobs") {
        if (!v.is_number_integer()) {
          return bad(key, fmt::format("must be a whole number, got {}",
                                      v.is_number() ? v.dump() : JsonTypeName(v)));
        }
        if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{INT64_MAX}) {
          return bad(key, "is too large");
        }
        const int64_t n = v.get<int64_t>();
        if (n < 0) return bad(key, fmt::format("must be >= 0, got {}", n));
        (key == "for_ms"      ? r.for_ms
         : key == "window_ms" ? r.window_ms
         : key == "min_jobs"  ? r.min_jobs
                              : r.resolve_after_ms) = n;
      } else if (key == "severity") {
        std::optional<Severity> s;
        if (v.is_string()) s = ParseSeverity(v.get<std::string>());
        if (!s) return bad(key, fmt::format("must be info, warning or critical; got {}", v.dump()));
        r.severity = *s;
      } else if (key == "description") {
        if (!v.is_string()) {
          return bad(key, fmt::format("must be a string, got {}", JsonTypeName(v)));
        }
        r.description = v.get<std::string>();
      } else {
        return bad(key,
                   "is not a known field (name, kind, threshold, for_ms, window_ms, "
                   "resolve_after_ms, min_jobs, severity, description)");
      }
    }
    if (auto e = CheckRule(r)) return BadRule(who, *e);
    if (!names.insert(name).second) return bad("name", "is used by an earlier rule");
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<AlertRule>> ParseRulesJsonText(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Error(ErrorKind::kBadInput, "bad_alert_rules_json",
                 "alert rules are not valid JSON (expected an array of rule objects)");
  }
  return ParseRulesJson(j);
}

nlohmann::json RuleToJson(const AlertRule& r) {
  nlohmann::json j = {{"name", r.name},
                      {"kind", RuleKindName(r.kind)},
                      {"threshold", r.threshold},
                      {"for_ms", r.for_ms},
                      {"resolve_after_ms", r.resolve_after_ms},
                      {"severity", SeverityName(r.severity)}};
  if (r.window_ms != 0) j["window_ms"] = r.window_ms;
  if (r.min_jobs != 0) j["min_jobs"] = r.min_jobs;
  if (!r.description.empty()) j["description"] = r.description;
  return j;
}

}  // namespace steno::alerts
