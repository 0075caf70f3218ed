// The configuration is derived in one place: SchedulerConfigFor fills the scheduler's settings
// that follow from the GPU and decode options (Runtime::Start and a reload both use it), and one
// duration parser reads every duration flag.
#include <gtest/gtest.h>

#include "api/job_request.h"
#include "core/duration.h"
#include "server/runtime_config.h"

namespace steno {
namespace {

TEST(ConfigDerivationTest, SchedulerConfigTakesReserveSafetyFactorSamplingAndThreads) {
  server::RuntimeOptions o;
  o.gpu.reserve.default_bytes = 3 * gpu::kMiB;
  o.gpu.reserve.per_device[1] = 7 * gpu::kMiB;
  o.gpu.safety_factor = 0.42;
  o.gpu.sample_interval = std::chrono::milliseconds(1234);
  o.decode_defaults.n_threads = 3;
  // What the derivation overrides, set to something else first.
  o.scheduler.reserve.default_bytes = 1;
  o.scheduler.safety_factor = 1.0;
  o.scheduler.sample_interval_ms = 5;
  o.scheduler.max_threads_per_job = 99;
  // What it keeps as given.
  o.scheduler.queue.max_running = 2;
  o.scheduler.queue.max_length = 17;
  o.scheduler.default_keep_alive_s = 42;
  o.scheduler.allow_cpu = true;

  const sched::SchedulerConfig c = server::SchedulerConfigFor(o);
  EXPECT_EQ(c.reserve.default_bytes, 3 * gpu::kMiB);
  EXPECT_EQ(c.reserve.For(1), 7 * gpu::kMiB);
  EXPECT_DOUBLE_EQ(c.safety_factor, 0.42);
  EXPECT_EQ(c.sample_interval_ms, 1234);
  EXPECT_EQ(c.max_threads_per_job, 3);
  EXPECT_EQ(c.queue.max_running, 2);
  EXPECT_EQ(c.queue.max_length, 17u);
  EXPECT_EQ(c.default_keep_alive_s, 42);
  EXPECT_TRUE(c.allow_cpu);
}

TEST(ConfigDerivationTest, OneDurationParserForEveryDurationFlag) {
  EXPECT_EQ(ParseDurationSeconds("30"), 30);
  EXPECT_EQ(ParseDurationSeconds(" 30s "), 30);
  EXPECT_EQ(ParseDurationSeconds("5m"), 300);
  EXPECT_EQ(ParseDurationSeconds("2h"), 7200);
  EXPECT_EQ(ParseDurationSeconds("0"), 0);
  EXPECT_EQ(ParseDurationSeconds("366h"), 366 * 3600);
  EXPECT_EQ(ParseDurationSeconds(std::to_string(kMaxDurationS)), kMaxDurationS);
  for (const char* bad : {"", "s", "-1", "-1s", "1.5m", "5 minutes", "5d", "99999999h",
                          "99999999999999999999", "+5"}) {
    EXPECT_FALSE(ParseDurationSeconds(bad)) << bad;
  }
  // keep_alive is a duration or -1 (keep loaded), and nothing else.
  EXPECT_EQ(api::ParseKeepAlive("-1"), -1);
  EXPECT_EQ(api::ParseKeepAlive("5m"), 300);
  EXPECT_FALSE(api::ParseKeepAlive("-2"));
  EXPECT_FALSE(api::ParseKeepAlive("-1m"));
}

}  // namespace
}  // namespace steno
