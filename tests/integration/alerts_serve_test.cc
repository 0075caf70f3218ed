// Alerts in a running `steno serve`: rules from --alert-rules are evaluated, firing alerts are
// listed by GET /v1/alerts, exported by /metrics and POSTed to --alert-webhook (a real receiver
// in this process), an unload whose memory did not come back raises memory_not_released, and a
// bad rules file stops the start with a clear message.
#include <signal.h>

#include <fstream>

#include "api_test_server.h"
#include "support/child_process.h"
#include "support/hook_server.h"
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
      60s))
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
      60s))
      << alerts.dump();
  EXPECT_EQ(alerts["alerts"][0]["name"], "crashing") << alerts.dump();
  EXPECT_EQ(alerts["alerts"][0]["labels"].value("model", ""), "tiny") << alerts.dump();
}

// --alert-webhook: the receiver gets the alert when it fires and again when it resolves (the
// other tenant gone), as JSON; the webhook's secret query string never reaches the log.
TEST(AlertsServeTest, WebhookReceivesTheAlertWhenItFiresAndWhenItResolves) {
  test::HookServer hook;
  test::ScopedTempDir dir("steno-alerts");
  const std::string rules = dir.path + "/rules.json";
  {
    std::ofstream(rules) << R"([{"name": "busy_card", "kind": "memory_usage_percent",
                                  "threshold": 50, "for_ms": 0, "resolve_after_ms": 0}])";
  }
  const std::string data = dir.path + "/data";
  // Another tenant takes SIZE of the simulated card, or ("clear") goes away.
  auto tenant = [&](const std::string& size_or_clear) {
    auto r = test::RunProcess({test::StenoBin(), "gpus", "simulate-external", "cuda:0",
                               size_or_clear, "--simulate-gpus", "1x8GiB", "--data-dir", data});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  };
  tenant("6GiB");
  ApiTestServer s({"--alert-rules", rules, "--alert-interval", "50ms", "--alert-webhook",
                   hook.Url("?token=hook-s3cret"), "--data-dir", data, "--device", "auto",
                   "--simulate-gpus", "1x8GiB"});
  auto is = [](const std::string& status) {
    return [status](const nlohmann::json& p) {
      return p.value("name", "") == "busy_card" && p.value("status", "") == status;
    };
  };
  auto fired = hook.WaitForPayload(is("firing"), 60s);
  ASSERT_FALSE(fired.is_null()) << hook.requests() << " requests, none firing";
  EXPECT_EQ(fired["key"], "busy_card{device=\"cuda:0\"}") << fired.dump();
  EXPECT_EQ(fired["severity"], "warning") << fired.dump();
  EXPECT_GT(fired["value"].get<double>(), 50) << fired.dump();

  tenant("clear");
  auto resolved = hook.WaitForPayload(is("resolved"), 60s);
  ASSERT_FALSE(resolved.is_null()) << hook.requests() << " requests, none resolved";
  EXPECT_EQ(resolved["started_ms"], fired["started_ms"]) << resolved.dump();
  for (const auto& ct : hook.ContentTypes()) EXPECT_EQ(ct, "application/json");
  EXPECT_EQ(test::ReadFileText(s.log).find("hook-s3cret"), std::string::npos);
}

// memory_not_released from a real unload: the runner is frozen (SIGSTOP), so the unload waits
// its grace period before the SIGKILL; meanwhile another tenant takes 1 GiB of the simulated card,
// and after the runner is gone the card is not back to where it was before the unload. That is
// what a release that failed looks like to the server (NVML's used memory above the baseline),
// and the alert must reach the API and the webhook. The tenant must come after the unload took
// its baseline (right after it logged "unloading runner"): when it came first (the release is
// then verified: "bytes released"), the round is repeated.
TEST(AlertsServeTest, UnloadWhoseMemoryDidNotComeBackRaisesMemoryNotReleased) {
  test::HookServer hook;
  test::ScopedTempDir dir("steno-alerts");
  const std::string data = dir.path + "/data";
  ApiTestServer s({"--alert-interval", "50ms", "--alert-webhook", hook.Url(), "--data-dir", data,
                   "--device", "auto", "--simulate-gpus", "1x8GiB"});
  auto c = s.Client();
  auto log_count = [&](const std::string& what) {
    const std::string log = test::ReadFileText(s.log);
    size_t n = 0;
    for (auto at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
    return n;
  };
  bool raised = false;
  for (int round = 0; round < 3 && !raised; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto loaded = c.Post("/v1/models/tiny/load", "{}", "application/json");
    ASSERT_EQ(test::StatusOf(loaded), 200) << (loaded ? loaded->body : "");
    ASSERT_TRUE(test::WaitUntil(
        [&] {
          auto r = JsonOf(c.Get("/v1/runners"));
          return !r.is_null() && r["data"].size() == 1 && r["data"][0]["state"] == "ready";
        },
        120s));
    const auto runners = test::ChildrenOf(s.pid());
    ASSERT_EQ(runners.size(), 1u);
    ASSERT_EQ(kill(runners[0], SIGSTOP), 0);
    const size_t unloading = log_count("unloading runner");
    const size_t released = log_count("bytes released on cuda:0");
    const size_t not_released = log_count("not released on cuda:0");
    auto unload = c.Post("/v1/models/tiny/unload", "{}", "application/json");
    ASSERT_EQ(test::StatusOf(unload) / 100, 2) << (unload ? unload->body : "");
    ASSERT_TRUE(test::WaitUntil([&] { return log_count("unloading runner") > unloading; }, 60s));
    auto grab = test::RunProcess({test::StenoBin(), "gpus", "simulate-external", "cuda:0", "1GiB",
                                  "--simulate-gpus", "1x8GiB", "--data-dir", data});
    ASSERT_EQ(grab.exit_code, 0) << grab.err;
    // The grace period (5 s), the SIGKILL, then the check gives up after 5 s more.
    ASSERT_TRUE(test::WaitUntil(
        [&] {
          return log_count("bytes released on cuda:0") > released ||
                 log_count("not released on cuda:0") > not_released;
        },
        120s))
        << test::ReadFileText(s.log);
    raised = log_count("not released on cuda:0") > not_released;
    auto cleared = test::RunProcess({test::StenoBin(), "gpus", "simulate-external", "clear",
                                     "--simulate-gpus", "1x8GiB", "--data-dir", data});
    ASSERT_EQ(cleared.exit_code, 0) << cleared.err;
    ASSERT_TRUE(test::WaitUntil([&] { return JsonOf(c.Get("/v1/runners"))["data"].empty(); }, 60s));
  }
  ASSERT_TRUE(raised) << "the tenant never came after the unload's baseline in 3 rounds";

  nlohmann::json alerts;
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        alerts = JsonOf(c.Get("/v1/alerts"));
        if (alerts.is_null()) return false;
        for (const auto& a : alerts["alerts"]) {
          if (a.value("name", "") == "memory_not_released") return true;
        }
        return false;
      },
      60s))
      << alerts.dump();
  auto sent = hook.WaitForPayload(
      [](const nlohmann::json& p) {
        return p.value("name", "") == "memory_not_released" && p.value("status", "") == "firing";
      },
      60s);
  ASSERT_FALSE(sent.is_null()) << hook.requests() << " webhook requests, none memory_not_released";
  EXPECT_EQ(sent["key"], "memory_not_released{device=\"cuda:0\"}") << sent.dump();
  EXPECT_EQ(sent["value"].get<double>(), static_cast<double>(int64_t{1} << 30)) << sent.dump();
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
