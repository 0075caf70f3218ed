// Alert rules: the defaults from the original design, JSON parsing (fields fall back to the
// kind's defaults) and the precise errors that reject a whole rule set.
#include "alerts/alert_rules.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace steno::alerts {
namespace {

const AlertRule* Find(const std::vector<AlertRule>& rules, const std::string& name) {
  for (const auto& r : rules) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

TEST(AlertRulesDefaults, MatchTheOriginalDesign) {
  const auto rules = DefaultRules();
  ASSERT_TRUE(ValidateRules(rules).ok());
  ASSERT_EQ(rules.size(), 8u);

  const AlertRule* over = Find(rules, "device_oversubscribed");
  ASSERT_NE(over, nullptr);
  EXPECT_EQ(over->kind, RuleKind::kDeviceOversubscribed);
  EXPECT_EQ(over->threshold, 0) << "any byte charged beyond total − reserve";
  EXPECT_EQ(over->for_ms, 0);
  EXPECT_EQ(over->severity, Severity::kCritical);

  const AlertRule* mem = Find(rules, "memory_usage");
  ASSERT_NE(mem, nullptr);
  EXPECT_EQ(mem->kind, RuleKind::kMemoryUsagePercent);
  EXPECT_EQ(mem->threshold, 90);
  EXPECT_EQ(mem->for_ms, 5 * 60'000);

  const AlertRule* queue = Find(rules, "queue_length");
  ASSERT_NE(queue, nullptr);
  EXPECT_EQ(queue->threshold, 10);
  EXPECT_EQ(queue->for_ms, 10 * 60'000);

  const AlertRule* err = Find(rules, "error_rate");
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(err->threshold, 10);
  EXPECT_EQ(err->window_ms, 5 * 60'000);

  for (const char* event : {"memory_not_released", "runner_crash_loop"}) {
    const AlertRule* r = Find(rules, event);
    ASSERT_NE(r, nullptr) << event;
    EXPECT_EQ(r->for_ms, 0) << event;  // fires at the event
    EXPECT_EQ(r->resolve_after_ms, 10 * 60'000) << event;
  }
  EXPECT_EQ(Find(rules, "runner_crash_loop")->threshold, 3);
  const AlertRule* missing = Find(rules, "device_missing");
  ASSERT_NE(missing, nullptr);
  EXPECT_EQ(missing->for_ms, 0);
  EXPECT_EQ(missing->resolve_after_ms, 0);  // resolves when the device is back
  const AlertRule* disk = Find(rules, "disk_space_low");
  ASSERT_NE(disk, nullptr);
  EXPECT_EQ(disk->kind, RuleKind::kDiskSpaceLow);
  EXPECT_EQ(disk->threshold, 0);  // the server's --min-free-disk
  EXPECT_EQ(disk->for_ms, 0);
  EXPECT_EQ(disk->severity, Severity::kCritical);
}

TEST(AlertRulesParse, ValidSetWithDefaultsFilledIn) {
  auto rules = ParseRulesJsonText(R"([
    {"name": "gpu_hot", "kind": "memory_usage_percent", "threshold": 95.5, "for_ms": 60000,
     "severity": "critical", "description": "GPU nearly full"},
    {"name": "backlog", "kind": "queue_length"},
    {"name": "errors", "kind": "error_rate", "threshold": 25, "window_ms": 120000,
     "min_jobs": 2, "resolve_after_ms": 30000},
    {"name": "crashes", "kind": "runner_crash_loop", "threshold": 2},
    {"name": "lost_gpu", "kind": "device_missing", "for_ms": 30000, "severity": "info"},
    {"name": "leak", "kind": "memory_not_released", "threshold": 1048576}
  ])");
  ASSERT_TRUE(rules.ok()) << rules.error().message;
  ASSERT_EQ(rules->size(), 6u);
  const auto& hot = (*rules)[0];
  EXPECT_EQ(hot.kind, RuleKind::kMemoryUsagePercent);
  EXPECT_DOUBLE_EQ(hot.threshold, 95.5);
  EXPECT_EQ(hot.for_ms, 60000);
  EXPECT_EQ(hot.severity, Severity::kCritical);
  EXPECT_EQ(hot.description, "GPU nearly full");
  EXPECT_EQ(hot.resolve_after_ms, 60'000);  // the kind's default

  const auto& backlog = (*rules)[1];
  EXPECT_EQ(backlog.threshold, 10);
  EXPECT_EQ(backlog.for_ms, 600'000);
  EXPECT_EQ(backlog.severity, Severity::kWarning);

  const auto& errors = (*rules)[2];
  EXPECT_EQ(errors.window_ms, 120000);
  EXPECT_EQ(errors.min_jobs, 2);
  EXPECT_EQ(errors.resolve_after_ms, 30000);

  EXPECT_EQ((*rules)[3].threshold, 2);
  EXPECT_EQ((*rules)[3].window_ms, 600'000);
  EXPECT_EQ((*rules)[4].for_ms, 30000);
  EXPECT_EQ((*rules)[4].severity, Severity::kInfo);
  EXPECT_EQ((*rules)[5].threshold, 1048576);
}

TEST(AlertRulesParse, EmptyArrayDisablesAlerts) {
  auto rules = ParseRulesJsonText("[]");
  ASSERT_TRUE(rules.ok());
  EXPECT_TRUE(rules->empty());
}

TEST(AlertRulesParse, RoundTripsThroughJson) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : DefaultRules()) j.push_back(RuleToJson(r));
  auto back = ParseRulesJson(j);
  ASSERT_TRUE(back.ok()) << back.error().message;
  const auto defaults = DefaultRules();
  ASSERT_EQ(back->size(), defaults.size());
  for (size_t i = 0; i < back->size(); ++i) {
    const auto& a = (*back)[i];
    const auto& b = defaults[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.kind, b.kind);
    EXPECT_EQ(a.threshold, b.threshold);
    EXPECT_EQ(a.for_ms, b.for_ms);
    EXPECT_EQ(a.window_ms, b.window_ms);
    EXPECT_EQ(a.resolve_after_ms, b.resolve_after_ms);
    EXPECT_EQ(a.min_jobs, b.min_jobs);
    EXPECT_EQ(a.severity, b.severity);
  }
}

struct BadCase {
  const char* name;  // the test's name
  const char* json;
  const char* expected;  // a substring of the message
};

class AlertRulesParseBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(AlertRulesParseBad, RejectsTheWholeSetNamingRuleAndField) {
  auto rules = ParseRulesJsonText(GetParam().json);
  ASSERT_FALSE(rules.ok()) << GetParam().json;
  EXPECT_EQ(rules.error().kind, ErrorKind::kBadInput);
  EXPECT_NE(rules.error().message.find(GetParam().expected), std::string::npos)
      << "message: " << rules.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AlertRulesParseBad,
    ::testing::Values(
        BadCase{"NotAnArray", R"({"name": "x"})", "must be a JSON array of objects, got object"},
        BadCase{"NotAnObject", R"([42])", "alert rule #1 must be an object, got number"},
        BadCase{"NameMissing", R"([{"kind": "queue_length"}])",
                "alert rule #1: \"name\" is required"},
        BadCase{"NameNotString", R"([{"name": 7, "kind": "queue_length"}])",
                "alert rule #1: \"name\" must be a string, got number"},
        BadCase{"NameBadCharacters", R"([{"name": "Bad Name", "kind": "queue_length"}])",
                "alert rule \"Bad Name\" (#1): \"name\" may hold only a-z, 0-9 and _"},
        BadCase{"KindMissing", R"([{"name": "q"}])", "alert rule \"q\" (#1): \"kind\" is required"},
        BadCase{"KindUnknown", R"([{"name": "q", "kind": "cpu_usage"}])",
                "alert rule \"q\" (#1): \"kind\" must be one of memory_usage_percent, "
                "queue_length, error_rate, memory_not_released, runner_crash_loop, "
                "device_missing, disk_space_low, device_oversubscribed; got \"cpu_usage\""},
        BadCase{"ThresholdNotNumber", R"([{"name": "a", "kind": "queue_length"},
                    {"name": "gpu_hot", "kind": "memory_usage_percent", "threshold": "95"}])",
                "alert rule \"gpu_hot\" (#2): \"threshold\" must be a number, got string"},
        BadCase{"PercentAbove100",
                R"([{"name": "m", "kind": "memory_usage_percent", "threshold": 150}])",
                "alert rule \"m\" (#1): \"threshold\" is a percentage and must be below 100"},
        BadCase{"NegativeDuration", R"([{"name": "q", "kind": "queue_length", "for_ms": -5}])",
                "alert rule \"q\" (#1): \"for_ms\" must be >= 0, got -5"},
        BadCase{"FractionalDuration", R"([{"name": "q", "kind": "queue_length", "for_ms": 1.5}])",
                "alert rule \"q\" (#1): \"for_ms\" must be a whole number, got 1.5"},
        BadCase{"UnknownField", R"([{"name": "q", "kind": "queue_length", "for": 60000}])",
                "alert rule \"q\" (#1): \"for\" is not a known field"},
        BadCase{"SeverityUnknown", R"([{"name": "q", "kind": "queue_length", "severity": "page"}])",
                "alert rule \"q\" (#1): \"severity\" must be info, warning or critical; got "
                "\"page\""},
        BadCase{"ForMsOnEventKind",
                R"([{"name": "leak", "kind": "memory_not_released", "for_ms": 1000}])",
                "alert rule \"leak\" (#1): \"for_ms\" must be 0 for memory_not_released"},
        BadCase{"ZeroWindow", R"([{"name": "e", "kind": "error_rate", "window_ms": 0}])",
                "alert rule \"e\" (#1): \"window_ms\" must be > 0 for error_rate"},
        BadCase{"WindowOnQueue", R"([{"name": "q", "kind": "queue_length", "window_ms": 1000}])",
                "alert rule \"q\" (#1): \"window_ms\" has no meaning for queue_length"},
        BadCase{"FractionalCrashCount",
                R"([{"name": "c", "kind": "runner_crash_loop", "threshold": 2.5}])",
                "alert rule \"c\" (#1): \"threshold\" is a number of crashes"},
        BadCase{"ThresholdOnDeviceMissing",
                R"([{"name": "d", "kind": "device_missing", "threshold": 1}])",
                "alert rule \"d\" (#1): \"threshold\" has no meaning for device_missing"},
        BadCase{"ZeroMinJobs", R"([{"name": "e", "kind": "error_rate", "min_jobs": 0}])",
                "alert rule \"e\" (#1): \"min_jobs\" must be >= 1 for error_rate"},
        BadCase{"DuplicateName",
                R"([{"name": "q", "kind": "queue_length"}, {"name": "q", "kind": "error_rate"}])",
                "alert rule \"q\" (#2): \"name\" is used by an earlier rule"},
        BadCase{"MalformedJson", R"([{"name": "q", "kind": "queue_length",)", "not valid JSON"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return std::string(info.param.name); });

TEST(AlertRulesValidate, DuplicateNamesAndBadFieldsInCodeBuiltSets) {
  auto rules = DefaultRules();
  rules.push_back(DefaultRuleFor(RuleKind::kQueueLength, "memory_usage"));
  Status s = ValidateRules(rules);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "bad_alert_rule");
  EXPECT_NE(s.error().message.find("alert rule \"memory_usage\": \"name\" is used by more"),
            std::string::npos)
      << s.error().message;

  AlertRule r = DefaultRuleFor(RuleKind::kErrorRate, "e");
  r.threshold = std::numeric_limits<double>::quiet_NaN();
  s = ValidateRule(r);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("\"threshold\" must be a finite number"), std::string::npos);
}

TEST(AlertRulesNames, KindsAndSeveritiesRoundTrip) {
  for (RuleKind k :
       {RuleKind::kMemoryUsagePercent, RuleKind::kQueueLength, RuleKind::kErrorRate,
        RuleKind::kMemoryNotReleased, RuleKind::kRunnerCrashLoop, RuleKind::kDeviceMissing}) {
    EXPECT_EQ(ParseRuleKind(RuleKindName(k)), k);
  }
  EXPECT_FALSE(ParseRuleKind("Queue_Length").has_value());
  for (Severity s : {Severity::kInfo, Severity::kWarning, Severity::kCritical}) {
    EXPECT_EQ(ParseSeverity(SeverityName(s)), s);
  }
}

}  // namespace
}  // namespace steno::alerts
