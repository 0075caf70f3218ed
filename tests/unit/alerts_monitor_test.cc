// AlertMonitor on the virtual clock: evaluations on exact timer ticks, transitions reaching the
// listener once, reported events, reloads, Stop; the Prometheus rendering of firing alerts; and
// a short run on the real clock.
#include "alerts/alert_monitor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "alerts/alert_metrics.h"

namespace steno::alerts {
namespace {

constexpr int64_t kMin = 60'000;

void AdvanceTo(sched::VirtualClock& clock, int64_t ms) {
  while (clock.FireNext(ms)) {
  }
  clock.SetNow(ms);
}

// A monitor whose observation the test sets and whose transitions it records.
class AlertMonitorTest : public ::testing::Test {
 protected:
  void Make(std::vector<AlertRule> rules = DefaultRules(), int64_t interval_ms = 15'000) {
    AlertMonitorOptions o;
    o.interval_ms = interval_ms;
    o.rules = std::move(rules);
    auto m = AlertMonitor::Create(
        clock_, o,
        [this] {
          std::lock_guard<std::mutex> lock(mu_);
          return obs_;
        },
        nullptr, [this](const AlertTransition& t) { heard_.push_back(t); });
    ASSERT_TRUE(m.ok()) << m.error().message;
    monitor_ = std::move(m.value());
  }
  void SetUsage(double pct) {
    std::lock_guard<std::mutex> lock(mu_);
    obs_.devices = {{"cuda:0", pct, true}};
  }

  sched::VirtualClock clock_{0};
  std::mutex mu_;
  Observation obs_;
  std::vector<AlertTransition> heard_;
  std::unique_ptr<AlertMonitor> monitor_;
};

TEST_F(AlertMonitorTest, EvaluatesAtStartThenEveryInterval) {
  Make();
  monitor_->Start();
  EXPECT_EQ(monitor_->evaluations(), 0);  // the virtual clock fires nothing by itself
  AdvanceTo(clock_, 0);
  EXPECT_EQ(monitor_->evaluations(), 1);
  AdvanceTo(clock_, 44'999);
  EXPECT_EQ(monitor_->evaluations(), 3);  // 0, 15 s, 30 s
  AdvanceTo(clock_, 45'000);
  EXPECT_EQ(monitor_->evaluations(), 4);
  EXPECT_EQ(clock_.NextDeadline(), 60'000);
}

TEST_F(AlertMonitorTest, DefaultMemoryRuleFiresOnceAndResolvesOnce) {
  Make();
  SetUsage(95);
  monitor_->Start();
  AdvanceTo(clock_, 5 * kMin - 1);
  EXPECT_TRUE(heard_.empty());
  EXPECT_TRUE(monitor_->Active().empty());
  AdvanceTo(clock_, 5 * kMin);
  ASSERT_EQ(heard_.size(), 1u);
  EXPECT_EQ(heard_[0].state, AlertState::kFiring);
  EXPECT_EQ(heard_[0].started_ms, 5 * kMin);
  auto active = monitor_->Active();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].labels.at("device"), "cuda:0");
  EXPECT_NE(RenderAlertMetrics(active).find(
                "steno_alerts_firing{alert=\"memory_usage\",device=\"cuda:0\","
                "severity=\"warning\"} 1\n"),
            std::string::npos);

  AdvanceTo(clock_, 30 * kMin);
  EXPECT_EQ(heard_.size(), 1u);  // no repeats while firing

  SetUsage(40);
  AdvanceTo(clock_, 31 * kMin - 1);
  EXPECT_EQ(heard_.size(), 1u);
  AdvanceTo(clock_, 31 * kMin);  // a minute after it was last seen high (30:00)
  ASSERT_EQ(heard_.size(), 2u);
  EXPECT_EQ(heard_[1].state, AlertState::kResolved);
  EXPECT_EQ(heard_[1].started_ms, 5 * kMin);
  EXPECT_TRUE(monitor_->Active().empty());
  EXPECT_EQ(RenderAlertMetrics(monitor_->Active()).find("steno_alerts_firing{"), std::string::npos);
  AdvanceTo(clock_, 60 * kMin);
  EXPECT_EQ(heard_.size(), 2u);
}

TEST_F(AlertMonitorTest, ReportedEventsReachTheNextEvaluation) {
  Make();
  monitor_->Start();
  AdvanceTo(clock_, 0);
  for (int i = 0; i < 3; ++i) monitor_->ReportRunnerCrash({"base.en", "cuda:0"});
  monitor_->ReportUnreleased({"cuda:1", 300 << 20, "base.en"});
  EXPECT_TRUE(heard_.empty());  // nothing until the evaluation
  AdvanceTo(clock_, 15'000);
  ASSERT_EQ(heard_.size(), 2u);
  EXPECT_EQ(heard_[0].rule, "memory_not_released");
  EXPECT_EQ(heard_[0].labels.at("device"), "cuda:1");
  EXPECT_EQ(heard_[1].rule, "runner_crash_loop");
  EXPECT_EQ(heard_[1].labels.at("model"), "base.en");
  EXPECT_EQ(heard_[1].started_ms, 15'000);
  // Consumed: later evaluations do not see them again, so both resolve after 10 quiet minutes.
  AdvanceTo(clock_, 15'000 + 10 * kMin);
  ASSERT_EQ(heard_.size(), 4u);
  EXPECT_EQ(heard_[2].state, AlertState::kResolved);
  EXPECT_EQ(heard_[3].state, AlertState::kResolved);
}

TEST_F(AlertMonitorTest, StopCancelsTheTimer) {
  Make();
  monitor_->Start();
  AdvanceTo(clock_, 15'000);
  ASSERT_EQ(monitor_->evaluations(), 2);
  monitor_->Stop();
  EXPECT_FALSE(clock_.NextDeadline().has_value());
  AdvanceTo(clock_, 10 * kMin);
  EXPECT_EQ(monitor_->evaluations(), 2);
  monitor_->Start();  // once only
  AdvanceTo(clock_, 20 * kMin);
  EXPECT_EQ(monitor_->evaluations(), 2);
}

TEST_F(AlertMonitorTest, ReloadRejectsABadSetAndResolvesRemovedRules) {
  Make();
  SetUsage(99);
  monitor_->Start();
  AdvanceTo(clock_, 5 * kMin);
  ASSERT_EQ(heard_.size(), 1u);

  auto bad = DefaultRules();
  bad[0].for_ms = -1;
  Status s = monitor_->SetRules(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "bad_alert_rule");
  EXPECT_EQ(monitor_->Rules().size(), DefaultRules().size());
  EXPECT_EQ(heard_.size(), 1u);

  ASSERT_TRUE(monitor_->SetRules({DefaultRuleFor(RuleKind::kQueueLength, "queue_length")}).ok());
  ASSERT_EQ(heard_.size(), 2u);  // dispatched by the reload itself
  EXPECT_EQ(heard_[1].rule, "memory_usage");
  EXPECT_EQ(heard_[1].state, AlertState::kResolved);
  EXPECT_EQ(monitor_->Rules().size(), 1u);
  AdvanceTo(clock_, 30 * kMin);
  EXPECT_EQ(heard_.size(), 2u);
}

TEST_F(AlertMonitorTest, CreateRejectsBadOptions) {
  AlertMonitorOptions o;
  o.interval_ms = 0;
  auto m = AlertMonitor::Create(clock_, o, [] { return Observation{}; });
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, "bad_alert_interval");
  o.interval_ms = 1000;
  o.rules = {DefaultRuleFor(RuleKind::kErrorRate, "")};
  m = AlertMonitor::Create(clock_, o, [] { return Observation{}; });
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, "bad_alert_rule");
}

TEST(AlertMetrics, OneSamplePerAlertWithEscapedLabels) {
  std::vector<ActiveAlert> active = {
      {"memory_not_released",
       RuleKind::kMemoryNotReleased,
       Severity::kWarning,
       {{"device", "cuda:0"}},
       1,
       0,
       10,
       "m"},
      {"runner_crash_loop",
       RuleKind::kRunnerCrashLoop,
       Severity::kCritical,
       {{"model", "we\"ird\\name\n"}},
       3,
       3,
       20,
       "m"},
      {"queue_length", RuleKind::kQueueLength, Severity::kInfo, {}, 11, 10, 30, "m"}};
  EXPECT_EQ(RenderAlertMetrics(active),
            "# HELP steno_alerts_firing Alerts firing now: one sample per alert and label set.\n"
            "# TYPE steno_alerts_firing gauge\n"
            "steno_alerts_firing{alert=\"memory_not_released\",device=\"cuda:0\","
            "severity=\"warning\"} 1\n"
            "steno_alerts_firing{alert=\"runner_crash_loop\",model=\"we\\\"ird\\\\name\\n\","
            "severity=\"critical\"} 1\n"
            "steno_alerts_firing{alert=\"queue_length\",severity=\"info\"} 1\n");
}

TEST(AlertMonitorRealClock, RunsOnTimersAndStopsCleanly) {
  sched::RealClock clock;
  std::atomic<int> observed{0};
  AlertMonitorOptions o;
  o.interval_ms = 5;
  auto m = AlertMonitor::Create(clock, o, [&] {
    ++observed;
    return Observation{};
  });
  ASSERT_TRUE(m.ok());
  (*m)->Start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (observed < 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_GE(observed.load(), 4);
  (*m)->Stop();
  const int after_stop = observed.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(observed.load(), after_stop);
  EXPECT_EQ((*m)->evaluations(), after_stop);
}

}  // namespace
}  // namespace steno::alerts
