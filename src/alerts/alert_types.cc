#include "alerts/alert_types.h"

#include <ctime>

#include <fmt/format.h>

namespace steno::alerts {

const char* AlertStateName(AlertState state) {
  return state == AlertState::kFiring ? "firing" : "resolved";
}

std::string AlertKey(const std::string& rule, const Labels& labels) {
  if (labels.empty()) return rule;
  std::string out = rule + "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    out += fmt::format("{}{}=\"{}\"", first ? "" : ",", k, v);
    first = false;
  }
  return out + "}";
}

std::string FormatDurationMs(int64_t ms) {
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms % 1000 != 0) return fmt::format("{:.1f}s", ms / 1000.0);
  int64_t s = ms / 1000;
  const int64_t h = s / 3600, m = s / 60 % 60;
  s %= 60;
  std::string out;
  if (h) out += fmt::format("{}h", h);
  if (m) out += fmt::format("{}m", m);
  if (s || out.empty()) out += fmt::format("{}s", s);
  return out;
}

std::string FormatRfc3339Ms(int64_t unix_ms) {
  int64_t secs = unix_ms / 1000, millis = unix_ms % 1000;
  if (millis < 0) {
    millis += 1000;
    secs -= 1;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, millis);
}

namespace {

nlohmann::json LabelsJson(const Labels& labels) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : labels) j[k] = v;
  return j;
}

}  // namespace

nlohmann::json ToJson(const AlertTransition& t) {
  nlohmann::json j = {{"name", t.rule},
                      {"key", AlertKey(t.rule, t.labels)},
                      {"kind", RuleKindName(t.kind)},
                      {"status", AlertStateName(t.state)},
                      {"severity", SeverityName(t.severity)},
                      {"labels", LabelsJson(t.labels)},
                      {"value", t.value},
                      {"threshold", t.threshold},
                      {"started_ms", t.started_ms},
                      {"started_at", FormatRfc3339Ms(t.started_ms)},
                      {"message", t.message}};
  if (t.state == AlertState::kResolved) {
    j["resolved_ms"] = t.at_ms;
    j["resolved_at"] = FormatRfc3339Ms(t.at_ms);
  }
  return j;
}

nlohmann::json ToJson(const ActiveAlert& a) {
  return {{"name", a.rule},
          {"key", AlertKey(a.rule, a.labels)},
          {"kind", RuleKindName(a.kind)},
          {"severity", SeverityName(a.severity)},
          {"labels", LabelsJson(a.labels)},
          {"value", a.value},
          {"threshold", a.threshold},
          {"since_ms", a.since_ms},
          {"since", FormatRfc3339Ms(a.since_ms)},
          {"message", a.message}};
}

nlohmann::json ToJson(const std::vector<ActiveAlert>& active) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& a : active) arr.push_back(ToJson(a));
  return {{"alerts", std::move(arr)}};
}

}  // namespace steno::alerts
