// Alerts in a running `steno serve`: rules from --alert-rules are evaluated, firing alerts are
// listed by GET /v1/alerts and exported by /metrics, and a bad rules file stops the start with a
// clear message.
#include <signal.h>

#include <fstream>

#include "api_test_server.h"
#include "support/child_process.h"
#include "support/process.h"

namespace steno {
namespace {

using namespace std::chrono_literals;
using test::ApiTestServer;
using test::JsonOf;

TEST(AlertsServeTest, FiringAlertIsListedAndExported) {
  test::ScopedTempDir dir("steno-alerts");
  const std::string rules = dir.path + "/rules.json";
  // Another tenant holds 6 of the simulated card's 8 GiB: over the 50 % of this rule at once.
  {
    std::ofstream(rules)
        << R"([{"name": "always", "kind": "memory_usage_percent", "threshold": 50, "for_ms": 0}])";
  }
  const std::string data = dir.path + "/data";
  auto tenant = test::RunProcess({test::StenoBin(), "gpus", "simulate-external", "cuda:0", "6GiB",
                                  "--simulate-gpus", "1x8GiB", "--data-dir", data});
  ASSERT_EQ(tenant.exit_code, 0) << tenant.err;
  ApiTestServer s({"--alert-rules", rules, "--alert-interval", "50ms", "--data-dir", data,
                   "--device", "auto", "--simulate-gpus", "1x8GiB"});
  auto c = s.Client();
  nlohmann::json alerts;
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        alerts = JsonOf(c.Get("/v1/alerts"));
        return !alerts.is_null() && !alerts["alerts"].empty();
      },
      5s))
      << alerts.dump();
  EXPECT_EQ(alerts["alerts"][0].value("rule", alerts["alerts"][0].value("name", "")), "always")
      << alerts.dump();
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("steno_alerts_firing{alert=\"always\""), std::string::npos);
}

TEST(AlertsServeTest, NoRuleFiresOnAnIdleServerWithTheDefaults) {
  ApiTestServer s({"--alert-interval", "50ms"});
  std::this_thread::sleep_for(300ms);
  auto c = s.Client();
  auto alerts = JsonOf(c.Get("/v1/alerts"));
  ASSERT_FALSE(alerts.is_null());
  EXPECT_TRUE(alerts["alerts"].empty()) << alerts.dump();
}

// A runner that dies under the server (here: SIGKILL) is a crash the monitor hears of: with a
// loop of one crash, the alert fires and names the model.
TEST(AlertsServeTest, RunnerCrashRaisesTheCrashLoopAlert) {
  test::ScopedTempDir dir("steno-alerts");
  const std::string rules = dir.path + "/rules.json";
  {
    std::ofstream(rules) << R"([{"name": "crashing", "kind": "runner_crash_loop", "threshold": 1,
                                  "window_ms": 600000, "for_ms": 0}])";
  }
  ApiTestServer s({"--alert-rules", rules, "--alert-interval", "50ms"});
  auto c = s.Client();
  auto loaded = c.Post("/v1/models/tiny/load", "{}", "application/json");
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->status, 200) << loaded->body;
  auto runners = test::ChildrenOf(s.pid());
  ASSERT_EQ(runners.size(), 1u);
  std::this_thread::sleep_for(200ms);
  auto before = JsonOf(c.Get("/v1/alerts"));
  EXPECT_TRUE(before["alerts"].empty()) << before.dump();
  ASSERT_EQ(kill(runners[0], SIGKILL), 0);
  nlohmann::json alerts;
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        alerts = JsonOf(c.Get("/v1/alerts"));
        return !alerts.is_null() && !alerts["alerts"].empty();
      },
      10s))
      << alerts.dump();
  EXPECT_EQ(alerts["alerts"][0]["name"], "crashing") << alerts.dump();
  EXPECT_EQ(alerts["alerts"][0]["labels"].value("model", ""), "tiny") << alerts.dump();
}

TEST(AlertsServeTest, BadRulesFileIsAStartupError) {
  test::ScopedTempDir dir("steno-alerts");
  const std::string rules = dir.path + "/rules.json";
  { std::ofstream(rules) << R"([{"name": "x", "kind": "no_such_kind", "threshold": 1}])"; }
  test::ProcessOptions options;
  options.timeout_s = 30;
  auto r = test::RunProcess({test::StenoBin(), "serve", "--port", "0", "--device", "cpu",
                             "--data-dir", dir.path + "/data", "--alert-rules", rules},
                            options);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("rules.json"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace steno
