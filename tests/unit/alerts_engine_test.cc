// The alert state machine fed numbers at explicit times (evaluations every 15 s): each default
// rule fires once at its duration, stays firing without repeating, resolves once; hysteresis;
// per-label series; error-rate window math; crash loops; devices that disappear; reloads.
#include "alerts/alert_engine.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace steno::alerts {
namespace {

constexpr int64_t kMin = 60'000;
constexpr int64_t kStep = 15'000;
constexpr int64_t kMiB = 1 << 20;

std::vector<AlertRule> Only(const std::string& name) {
  std::vector<AlertRule> out;
  for (auto& r : DefaultRules()) {
    if (r.name == name) out.push_back(r);
  }
  return out;
}

Observation Devices(std::vector<std::pair<std::string, double>> usage) {
  Observation o;
  for (auto& [name, pct] : usage) o.devices.push_back({name, pct, true});
  return o;
}

Observation Queue(int64_t n) {
  Observation o;
  o.queue_length = n;
  return o;
}

Observation Jobs(int64_t finished, int64_t failed) {
  Observation o;
  o.jobs_finished_total = finished;
  o.jobs_failed_total = failed;
  return o;
}

Observation Crash(std::vector<std::string> models) {
  Observation o;
  for (auto& m : models) o.runner_crashes.push_back({m, "cuda:0"});
  return o;
}

Observation Leftover(const std::string& device, int64_t bytes) {
  Observation o;
  o.unreleased.push_back({device, bytes, "base.en"});
  return o;
}

Observation Disk(int64_t free_bytes, int64_t min_free_bytes) {
  Observation o;
  o.disk = DiskObservation{free_bytes, min_free_bytes};
  return o;
}

// Evaluates an engine at explicit times and keeps every transition.
class Harness {
 public:
  explicit Harness(std::vector<AlertRule> rules = DefaultRules()) {
    auto r = engine.SetRules(std::move(rules), 0);
    EXPECT_TRUE(r.ok());
  }
  std::vector<AlertTransition> At(int64_t ms, const Observation& obs) {
    now = ms;
    auto t = engine.Evaluate(ms, obs);
    all.insert(all.end(), t.begin(), t.end());
    return t;
  }
  // Every step after the last evaluation up to and including `until_ms`, with the same input.
  std::vector<AlertTransition> RunUntil(int64_t until_ms, const Observation& obs) {
    std::vector<AlertTransition> out;
    for (int64_t t = now + kStep; t <= until_ms; t += kStep) {
      auto got = At(t, obs);
      out.insert(out.end(), got.begin(), got.end());
    }
    return out;
  }
  AlertEngine engine;
  std::vector<AlertTransition> all;
  int64_t now = -kStep;
};

TEST(AlertEngineMemory, FiresOnceAtForDurationStaysAndResolvesOnce) {
  Harness h;
  const Observation hot = Devices({{"cuda:0", 95}, {"cuda:1", 50}});
  EXPECT_TRUE(h.RunUntil(5 * kMin - kStep, hot).empty());
  EXPECT_EQ(h.engine.PendingCount(), 1u);  // pending is not firing
  EXPECT_TRUE(h.engine.Active().empty());

  auto fired = h.At(5 * kMin, hot);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].rule, "memory_usage");
  EXPECT_EQ(fired[0].state, AlertState::kFiring);
  EXPECT_EQ(fired[0].labels, (Labels{{"device", "cuda:0"}}));
  EXPECT_EQ(fired[0].value, 95);
  EXPECT_EQ(fired[0].started_ms, 5 * kMin);
  EXPECT_EQ(fired[0].severity, Severity::kWarning);
  EXPECT_NE(fired[0].message.find("cuda:0 memory usage is 95.0% (above 90% for at least 5m)"),
            std::string::npos)
      << fired[0].message;

  EXPECT_TRUE(h.RunUntil(20 * kMin, hot).empty());  // no repeats while it stays high
  auto active = h.engine.Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].since_ms, 5 * kMin);

  // Cleared: resolves once the condition has not been seen for resolve_after_ms (1 min).
  const Observation cool = Devices({{"cuda:0", 40}, {"cuda:1", 50}});
  EXPECT_TRUE(h.RunUntil(21 * kMin - kStep, cool).empty());
  EXPECT_EQ(h.engine.Active().size(), 1u);
  auto resolved = h.At(21 * kMin, cool);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].state, AlertState::kResolved);
  EXPECT_EQ(resolved[0].labels, (Labels{{"device", "cuda:0"}}));
  EXPECT_EQ(resolved[0].started_ms, 5 * kMin);
  EXPECT_EQ(resolved[0].at_ms, 21 * kMin);
  EXPECT_EQ(resolved[0].value, 40);
  EXPECT_NE(resolved[0].message.find("back to 40.0%"), std::string::npos);
  EXPECT_TRUE(h.engine.Active().empty());

  EXPECT_TRUE(h.RunUntil(60 * kMin, cool).empty());
  EXPECT_EQ(h.all.size(), 2u);
}

TEST(AlertEngineMemory, EachDeviceIsItsOwnAlert) {
  Harness h(Only("memory_usage"));
  h.RunUntil(kMin - kStep, Devices({{"cuda:0", 97}, {"cuda:1", 10}}));
  const Observation both = Devices({{"cuda:0", 97}, {"cuda:1", 92}});
  auto t = h.RunUntil(6 * kMin, both);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].labels.at("device"), "cuda:0");
  EXPECT_EQ(t[0].started_ms, 5 * kMin);
  EXPECT_EQ(t[1].labels.at("device"), "cuda:1");
  EXPECT_EQ(t[1].started_ms, 6 * kMin);
  auto active = h.engine.Active();
  ASSERT_EQ(active.size(), 2u);
  EXPECT_EQ(active[0].labels.at("device"), "cuda:0");  // oldest first
  EXPECT_EQ(active[1].value, 92);

  // cuda:1 recovers; cuda:0 keeps firing.
  t = h.RunUntil(10 * kMin, Devices({{"cuda:0", 97}, {"cuda:1", 20}}));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state, AlertState::kResolved);
  EXPECT_EQ(t[0].labels.at("device"), "cuda:1");
  ASSERT_EQ(h.engine.Active().size(), 1u);
  EXPECT_EQ(h.engine.Active()[0].labels.at("device"), "cuda:0");
}

TEST(AlertEngineMemory, PendingStartsOverWhenTheConditionClears) {
  Harness h(Only("memory_usage"));
  const Observation hot = Devices({{"cuda:0", 95}});
  EXPECT_TRUE(h.RunUntil(4 * kMin, hot).empty());
  EXPECT_TRUE(h.At(4 * kMin + kStep, Devices({{"cuda:0", 80}})).empty());  // one dip
  EXPECT_EQ(h.engine.PendingCount(), 0u);
  // High again from 4:30: the 5 minutes count from there, so nothing at 5:00.
  EXPECT_TRUE(h.RunUntil(9 * kMin + 15'000, hot).empty());
  auto t = h.At(9 * kMin + 30'000, hot);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].started_ms, 9 * kMin + 30'000);
}

TEST(AlertEngineMemory, ShortDipWhileFiringNeitherResolvesNorRefires) {
  Harness h(Only("memory_usage"));
  const Observation hot = Devices({{"cuda:0", 95}});
  const Observation cool = Devices({{"cuda:0", 50}});
  ASSERT_EQ(h.RunUntil(5 * kMin, hot).size(), 1u);
  EXPECT_TRUE(h.RunUntil(5 * kMin + 30'000, cool).empty());  // 30 s < resolve_after 1 min
  EXPECT_TRUE(h.RunUntil(8 * kMin, hot).empty());
  ASSERT_EQ(h.engine.Active().size(), 1u);
  EXPECT_EQ(h.engine.Active()[0].since_ms, 5 * kMin);  // the same alert
  auto t = h.RunUntil(9 * kMin, cool);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].at_ms, 9 * kMin);
  EXPECT_EQ(h.all.size(), 2u);
}

TEST(AlertEngineMemory, ThresholdIsExclusive) {
  Harness h(Only("memory_usage"));
  EXPECT_TRUE(h.RunUntil(60 * kMin, Devices({{"cuda:0", 90.0}})).empty());
  EXPECT_EQ(h.engine.PendingCount(), 0u);
}

TEST(AlertEngineQueue, FiresAfterTenMinutesOnceAndResolvesOnce) {
  Harness h;
  EXPECT_TRUE(h.RunUntil(10 * kMin - kStep, Queue(11)).empty());
  auto t = h.At(10 * kMin, Queue(11));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].rule, "queue_length");
  EXPECT_TRUE(t[0].labels.empty());
  EXPECT_EQ(t[0].value, 11);
  EXPECT_EQ(t[0].message, "11 jobs are waiting (above 10 for at least 10m)");
  EXPECT_TRUE(h.RunUntil(30 * kMin, Queue(25)).empty());
  EXPECT_EQ(h.engine.Active()[0].value, 25);  // the latest value
  EXPECT_TRUE(h.RunUntil(31 * kMin - kStep, Queue(10)).empty());
  t = h.At(31 * kMin, Queue(10));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state, AlertState::kResolved);
  EXPECT_EQ(t[0].started_ms, 10 * kMin);
  EXPECT_EQ(h.all.size(), 2u);
}

TEST(AlertEngineErrorRate, FiresOnTheWindowAndResolvesWhenFailuresLeaveIt) {
  Harness h;
  EXPECT_TRUE(h.At(0, Jobs(100, 50)).empty());  // totals before: only the baseline
  auto t = h.At(kStep, Jobs(110, 52));          // 2 of 10 failed: 20 %
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].rule, "error_rate");
  EXPECT_DOUBLE_EQ(t[0].value, 20);
  EXPECT_EQ(t[0].severity, Severity::kCritical);
  EXPECT_EQ(t[0].message, "20.0% of the jobs finished in the last 5m failed (above 10%)");
  // Those jobs stay in the 5-minute window through 5:00 ...
  EXPECT_TRUE(h.RunUntil(5 * kMin, Jobs(110, 52)).empty());
  // ... and leave it at 5:15: no jobs in the window, no rate.
  t = h.At(5 * kMin + kStep, Jobs(110, 52));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state, AlertState::kResolved);
  EXPECT_EQ(t[0].value, 0);
}

TEST(AlertEngineErrorRate, RateSumsEveryEvaluationInTheWindow) {
  Harness h(Only("error_rate"));
  h.At(0, Jobs(0, 0));
  EXPECT_TRUE(h.At(kStep, Jobs(10, 0)).empty());
  EXPECT_TRUE(h.At(2 * kStep, Jobs(20, 0)).empty());
  auto t = h.At(3 * kStep, Jobs(30, 4));  // 4 / 30
  ASSERT_EQ(t.size(), 1u);
  EXPECT_NEAR(t[0].value, 100.0 * 4 / 30, 1e-9);
  t = h.At(4 * kStep, Jobs(40, 4));  // 4 / 40 = exactly 10 %: not above
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state, AlertState::kResolved);
  EXPECT_DOUBLE_EQ(t[0].value, 10);
}

TEST(AlertEngineErrorRate, TooFewJobsAreNotARate) {
  Harness h(Only("error_rate"));
  h.At(0, Jobs(0, 0));
  EXPECT_TRUE(h.At(kStep, Jobs(4, 4)).empty());  // 100 % of 4 jobs (< min_jobs 5)
  auto t = h.At(2 * kStep, Jobs(5, 5));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].value, 100);
}

TEST(AlertEngineErrorRate, CounterResetOnlySetsANewBaseline) {
  Harness h(Only("error_rate"));
  h.At(0, Jobs(1000, 10));
  EXPECT_TRUE(h.At(kStep, Jobs(20, 20)).empty());      // went down: a reset, not -980 jobs
  EXPECT_TRUE(h.At(2 * kStep, Jobs(30, 20)).empty());  // 0 of 10 failed
  auto t = h.At(3 * kStep, Jobs(40, 30));              // 10 of 20 in the window
  ASSERT_EQ(t.size(), 1u);
  EXPECT_DOUBLE_EQ(t[0].value, 50);
}

TEST(AlertEngineMemoryNotReleased, FiresAtTheEventAndResolvesAfterTenQuietMinutes) {
  Harness h;
  const Observation quiet;
  EXPECT_TRUE(h.At(0, quiet).empty());
  EXPECT_TRUE(h.At(kStep, Leftover("cuda:0", 0)).empty());  // verified release: nothing left
  auto t = h.At(2 * kStep, Leftover("cuda:0", 512 * kMiB));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].rule, "memory_not_released");
  EXPECT_EQ(t[0].labels, (Labels{{"device", "cuda:0"}}));
  EXPECT_EQ(t[0].value, 512.0 * kMiB);
  EXPECT_EQ(t[0].message, "an unload left 512.0 MiB in use on cuda:0 (release not verified)");

  EXPECT_TRUE(h.RunUntil(5 * kMin - kStep, quiet).empty());
  EXPECT_TRUE(h.At(5 * kMin, Leftover("cuda:0", 256 * kMiB)).empty());  // a recurrence
  EXPECT_EQ(h.engine.Active()[0].value, 256.0 * kMiB);
  // Ten minutes after the recurrence, not after the first event.
  EXPECT_TRUE(h.RunUntil(15 * kMin - kStep, quiet).empty());
  t = h.At(15 * kMin, quiet);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state, AlertState::kResolved);
  EXPECT_EQ(t[0].started_ms, 2 * kStep);
  EXPECT_EQ(t[0].message, "no unreleased memory on cuda:0 for 10m");
  EXPECT_EQ(h.all.size(), 2u);
}

TEST(AlertEngineCrashLoop, ThirdCrashOfOneModelWithinTenMinutesFires) {
  Harness h;
  const Observation quiet;
  EXPECT_TRUE(h.At(kStep, Crash({"base"})).empty());
  EXPECT_TRUE(h.At(2 * kStep, Crash({"base", "tiny"})).empty());
  auto t = h.At(3 * kStep, Crash({"base"}));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].rule, "runner_crash_loop");
  EXPECT_EQ(t[0].labels, (Labels{{"model", "base"}}));  // tiny crashed once: no alert
  EXPECT_EQ(t[0].value, 3);
  EXPECT_EQ(t[0].message, "runners of model base crashed 3 times within 10m");
  EXPECT_TRUE(h.RunUntil(3 * kStep + 10 * kMin - kStep, quiet).empty());
  t = h.At(3 * kStep + 10 * kMin, quiet);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state, AlertState::kResolved);
  EXPECT_EQ(h.all.size(), 2u);
}

TEST(AlertEngineCrashLoop, CrashesSpreadWiderThanTheWindowDoNotFire) {
  Harness h(Only("runner_crash_loop"));
  EXPECT_TRUE(h.At(0, Crash({"base"})).empty());
  EXPECT_TRUE(h.At(6 * kMin, Crash({"base"})).empty());
  EXPECT_TRUE(h.At(12 * kMin, Crash({"base"})).empty());  // 0:00 is out of (2:00, 12:00]
  EXPECT_TRUE(h.At(17 * kMin, Crash({"base"})).empty());  // (7:00, 17:00]: 12 and 17
  auto t = h.At(18 * kMin, Crash({"base"}));              // (8:00, 18:00]: 12, 17, 18
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].value, 3);
  EXPECT_EQ(t[0].started_ms, 18 * kMin);
}

TEST(AlertEngineCrashLoop, AnyRecurrenceKeepsAFiringLoopAlive) {
  AlertRule r = DefaultRuleFor(RuleKind::kRunnerCrashLoop, "loop");
  r.window_ms = 2 * kMin;  // shorter than the 10-minute quiet period
  Harness h({r});
  h.At(kStep, Crash({"base"}));
  h.At(2 * kStep, Crash({"base"}));
  ASSERT_EQ(h.At(3 * kStep, Crash({"base"})).size(), 1u);
  // One crash at 5:00: alone it would not start a loop, but it is a recurrence.
  EXPECT_TRUE(h.At(5 * kMin, Crash({"base"})).empty());
  EXPECT_TRUE(h.RunUntil(15 * kMin - kStep, Observation{}).empty());
  auto t = h.At(15 * kMin, Observation{});
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state, AlertState::kResolved);
  EXPECT_EQ(t[0].message, "no runner of model base crashed for 10m");
}

TEST(AlertEngineDeviceMissing, FiresWhenASeenDeviceGoesAndResolvesWhenItIsBack) {
  Harness h(Only("device_missing"));
  EXPECT_TRUE(h.At(0, Devices({{"cuda:0", 10}, {"cuda:1", 10}})).empty());
  auto t = h.At(kStep, Devices({{"cuda:0", 10}}));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].rule, "device_missing");
  EXPECT_EQ(t[0].labels, (Labels{{"device", "cuda:1"}}));
  EXPECT_EQ(t[0].value, 1);
  EXPECT_EQ(t[0].severity, Severity::kCritical);
  EXPECT_EQ(t[0].message, "device cuda:1 is missing (it was seen before)");

  Observation listed_but_gone = Devices({{"cuda:0", 10}, {"cuda:1", 0}});
  listed_but_gone.devices[1].present = false;
  EXPECT_TRUE(h.RunUntil(10 * kMin, listed_but_gone).empty());  // still missing: no repeat

  t = h.At(10 * kMin + kStep, Devices({{"cuda:0", 10}, {"cuda:1", 10}}));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state, AlertState::kResolved);
  EXPECT_EQ(t[0].value, 0);
  EXPECT_EQ(t[0].message, "device cuda:1 is back");
  EXPECT_TRUE(h.engine.Active().empty());
}

TEST(AlertEngineDeviceMissing, DevicesNeverSeenPresentDoNotFire) {
  Harness h(Only("device_missing"));
  Observation o = Devices({{"cuda:0", 10}, {"cuda:2", 0}});
  o.devices[1].present = false;
  EXPECT_TRUE(h.RunUntil(5 * kMin, o).empty());
}

TEST(AlertEngineDeviceMissing, ForMsToleratesAShortDropout) {
  AlertRule r = DefaultRuleFor(RuleKind::kDeviceMissing, "gone");
  r.for_ms = 30'000;
  Harness h({r});
  const Observation both = Devices({{"cuda:0", 1}, {"cuda:1", 1}});
  const Observation one = Devices({{"cuda:0", 1}});
  h.At(0, both);
  EXPECT_TRUE(h.At(kStep, one).empty());
  EXPECT_TRUE(h.At(2 * kStep, both).empty());
  EXPECT_TRUE(h.At(3 * kStep, one).empty());
  EXPECT_TRUE(h.At(4 * kStep, one).empty());
  EXPECT_EQ(h.At(5 * kStep, one).size(), 1u);  // missing for 30 s
}

// The default disk rule (threshold 0) watches the server's upload margin, reports it as its
// threshold, fires at once and resolves a minute after the space came back.
TEST(AlertEngineDiskSpaceLow, DefaultRuleWatchesTheUploadMargin) {
  Harness h(Only("disk_space_low"));
  EXPECT_TRUE(h.RunUntil(kMin, Disk(900 * kMiB, 512 * kMiB)).empty());
  EXPECT_TRUE(h.At(kMin + kStep, Disk(512 * kMiB, 512 * kMiB)).empty());  // exactly the margin
  auto fired = h.At(kMin + 2 * kStep, Disk(100 * kMiB, 512 * kMiB));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].rule, "disk_space_low");
  EXPECT_EQ(fired[0].kind, RuleKind::kDiskSpaceLow);
  EXPECT_EQ(fired[0].severity, Severity::kCritical);
  EXPECT_EQ(fired[0].value, 100 * kMiB);
  EXPECT_EQ(fired[0].threshold, 512 * kMiB);
  EXPECT_TRUE(fired[0].labels.empty());
  EXPECT_NE(fired[0].message.find("100.0 MiB free (below 512.0 MiB)"), std::string::npos)
      << fired[0].message;
  auto active = h.engine.Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].threshold, 512 * kMiB);

  EXPECT_TRUE(h.RunUntil(5 * kMin, Disk(100 * kMiB, 512 * kMiB)).empty());
  EXPECT_TRUE(h.RunUntil(6 * kMin - kStep, Disk(2048 * kMiB, 512 * kMiB)).empty());
  auto resolved = h.At(6 * kMin, Disk(2048 * kMiB, 512 * kMiB));
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0].state, AlertState::kResolved);
  EXPECT_NE(resolved[0].message.find("back to 2.0 GiB free"), std::string::npos)
      << resolved[0].message;
}

TEST(AlertEngineDiskSpaceLow, NoMarginNoReadingOrAnExplicitThreshold) {
  Harness h(Only("disk_space_low"));
  EXPECT_TRUE(h.RunUntil(2 * kMin, Disk(0, 0)).empty());     // no margin: never fires
  EXPECT_TRUE(h.RunUntil(3 * kMin, Observation{}).empty());  // not read: not low

  auto rule = DefaultRuleFor(RuleKind::kDiskSpaceLow, "disk_tight");
  rule.threshold = 10.0 * kMiB;
  Harness fixed({rule});
  EXPECT_TRUE(fixed.At(0, Disk(20 * kMiB, 512 * kMiB)).empty());  // its own threshold wins
  auto fired = fixed.At(kStep, Disk(5 * kMiB, 0));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].threshold, 10 * kMiB);
}

TEST(AlertEngineReload, KeptRulesKeepStateRemovedRulesResolve) {
  Harness h;
  const Observation hot = Devices({{"cuda:0", 95}});
  ASSERT_EQ(h.RunUntil(5 * kMin, hot).size(), 1u);

  // Same name and kind, new threshold: the alert keeps firing, nothing is re-sent.
  auto rules = DefaultRules();
  rules[0].threshold = 80;
  auto t = h.engine.SetRules(rules, 5 * kMin);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->empty());
  EXPECT_TRUE(h.RunUntil(6 * kMin, hot).empty());
  EXPECT_EQ(h.engine.Active().size(), 1u);

  // An invalid set changes nothing.
  auto bad = DefaultRules();
  bad[1].name = "memory_usage";
  auto rejected = h.engine.SetRules(bad, 6 * kMin);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.error().kind, ErrorKind::kBadInput);
  EXPECT_EQ(h.engine.rules()[0].threshold, 80);
  EXPECT_EQ(h.engine.Active().size(), 1u);

  // Removed: its firing alert resolves, so a webhook receiver hears the end of it.
  t = h.engine.SetRules(Only("queue_length"), 6 * kMin);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->size(), 1u);
  EXPECT_EQ((*t)[0].rule, "memory_usage");
  EXPECT_EQ((*t)[0].state, AlertState::kResolved);
  EXPECT_EQ((*t)[0].started_ms, 5 * kMin);
  EXPECT_NE((*t)[0].message.find("removed or changed on reload"), std::string::npos);
  EXPECT_TRUE(h.engine.Active().empty());
  EXPECT_TRUE(h.RunUntil(20 * kMin, hot).empty());
}

TEST(AlertJson, TransitionAndActiveShapes) {
  AlertTransition t;
  t.rule = "memory_usage";
  t.kind = RuleKind::kMemoryUsagePercent;
  t.labels = {{"device", "cuda:0"}};
  t.state = AlertState::kResolved;
  t.value = 40;
  t.threshold = 90;
  t.started_ms = 1'700'000'000'000;
  t.at_ms = 1'700'000'060'250;
  t.message = "m";
  auto j = ToJson(t);
  EXPECT_EQ(j["name"], "memory_usage");
  EXPECT_EQ(j["key"], "memory_usage{device=\"cuda:0\"}");
  EXPECT_EQ(j["status"], "resolved");
  EXPECT_EQ(j["severity"], "warning");
  EXPECT_EQ(j["labels"]["device"], "cuda:0");
  EXPECT_EQ(j["started_at"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(j["resolved_ms"], 1'700'000'060'250);
  EXPECT_EQ(j["resolved_at"], "2023-11-14T22:14:20.250Z");
  t.state = AlertState::kFiring;
  EXPECT_FALSE(ToJson(t).contains("resolved_at"));

  ActiveAlert a{"queue_length", RuleKind::kQueueLength, Severity::kCritical, {}, 12, 10, 0, "q"};
  auto list = ToJson(std::vector<ActiveAlert>{a});
  ASSERT_EQ(list["alerts"].size(), 1u);
  EXPECT_EQ(list["alerts"][0]["name"], "queue_length");
  EXPECT_EQ(list["alerts"][0]["labels"], nlohmann::json::object());
  EXPECT_EQ(list["alerts"][0]["since"], "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(list["alerts"][0]["severity"], "critical");
  EXPECT_EQ(list["alerts"][0]["value"], 12);
}

TEST(AlertJson, Durations) {
  EXPECT_EQ(FormatDurationMs(250), "250ms");
  EXPECT_EQ(FormatDurationMs(1500), "1.5s");
  EXPECT_EQ(FormatDurationMs(90'000), "1m30s");
  EXPECT_EQ(FormatDurationMs(300'000), "5m");
  EXPECT_EQ(FormatDurationMs(5'400'000), "1h30m");
}

}  // namespace
}  // namespace steno::alerts
