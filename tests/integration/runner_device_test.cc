// Runners on simulated GPUs: what they hold is charged to the card, a card too small refuses the
// model with `oom`, and an unload is verified on the device (promise 2).
#include <gtest/gtest.h>

#include "engine/model_writer.h"
#include "gpu/simulated_devices.h"
#include "runner/recycle_policy.h"
#include "runner/release_check.h"
#include "support/runner_events.h"
#include "support/test_env.h"

namespace steno::runner {
namespace {

int64_t UsedBytes(gpu::SimulatedDevices& sim) {
  auto s = sim.Sample();
  EXPECT_TRUE(s.ok());
  return s.ok() ? s->at(0).used_bytes : -1;
}

int64_t BytesOf(gpu::SimulatedDevices& sim, int pid) {
  auto s = sim.Sample();
  if (!s.ok()) return -1;
  for (const auto& p : s->at(0).processes) {
    if (p.pid == pid) return p.bytes;
  }
  return 0;
}

TEST(RunnerDeviceTest, RunnerChargesItsFootprintAndTheUnloadIsVerifiedOnTheDevice) {
  test::ScopedTempDir data("steno-sim");
  auto sim = gpu::SimulatedDevices::Open(data.path, "1x24GiB");
  ASSERT_TRUE(sim.ok()) << sim.error().message;
  const int64_t baseline = UsedBytes(**sim);

  Events ev;
  auto o = TinyRunner(2);
  o.sim_data_dir = data.path;
  o.sim_device = 0;
  auto h = RunnerHandle::Start(o, ev.Sink());
  ASSERT_TRUE(h.ok());
  auto ready = ev.WaitType("ready");
  ASSERT_TRUE(ready.has_value());

  const pid_t pid = (*h)->pid();
  const int64_t held = BytesOf(**sim, pid);
  const int64_t weights = (*ready)["weights_bytes"].get<int64_t>();
  const int64_t stream = (*ready)["stream_bytes"].get<int64_t>();
  // Weights as the file declares them (within the 10 kB of log rounding) plus two streams.
  EXPECT_NEAR(static_cast<double>(held), static_cast<double>(weights + 2 * stream), 100e3);
  const int64_t used_before = UsedBytes(**sim);
  EXPECT_EQ(used_before - baseline, held);

  ReleaseCheck check;
  check.device_index = 0;
  check.baseline_used = baseline;
  bool alerted = false;
  auto report = UnloadRunner(**h, gpu::AsDevicesFn(std::shared_ptr<gpu::Devices>(std::move(*sim))),
                             check, 5s, [&](const ReleaseReport&) { alerted = true; });
  EXPECT_FALSE(alerted);
  EXPECT_TRUE(report.released) << report.detail;
  EXPECT_EQ(report.released_bytes, held);
  // Seen as soon as the runner is gone: a runner that ignored the exit request would be killed
  // only after the 5 s grace, and a release seen only when the check gives up is not released.
  EXPECT_LT(report.release_ms, 4'500);
}

TEST(RunnerDeviceTest, ModelLargerThanTheSimulatedCardIsAnOomNotACrash) {
  test::ScopedTempDir data("steno-sim");
  auto sim = gpu::SimulatedDevices::Open(data.path, "1x1GiB");
  ASSERT_TRUE(sim.ok());
  // A medium-sized model: 1.5 GB of weights cannot fit a 1 GiB card.
  test::ScopedTempDir models("steno-medium");
  const std::string model = models.path + "/ggml-medium-random.bin";
  auto h_params = engine::ModelPreset("medium");
  ASSERT_TRUE(h_params.ok());
  ASSERT_TRUE(engine::WriteRandomModel(model, *h_params, 1).ok());

  Events ev;
  auto o = TinyRunner(1);
  o.model_path = model;
  o.sim_data_dir = data.path;
  o.sim_device = 0;
  auto h = RunnerHandle::Start(o, ev.Sink());
  ASSERT_TRUE(h.ok());
  auto err = ev.WaitType("error");
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ((*err)["kind"], "oom") << err->dump();
  auto exited = ev.WaitExited();
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 3);
  EXPECT_EQ(exited->signal, 0);
  EXPECT_EQ(UsedBytes(**sim), 0) << "nothing stays charged after a refused load";
}

TEST(RunnerDeviceTest, MemoryThatDoesNotComeBackIsReportedNotHidden) {
  // A device whose used memory never drops: the check gives up at its timeout and says why.
  gpu::DeviceSample stuck;
  stuck.index = 0;
  stuck.total_bytes = 24ll << 30;
  stuck.used_bytes = 4ll << 30;
  stuck.processes = {{4242, 4ll << 30}};
  ReleaseCheck check;
  check.pid = 4242;
  check.used_before = 4ll << 30;
  check.baseline_used = 0;
  check.timeout = 200ms;
  check.unload_started = Clock::now();
  auto report = VerifyRelease(
      [&]() -> Result<std::vector<gpu::DeviceSample>> { return std::vector{stuck}; }, check);
  EXPECT_FALSE(report.released);
  EXPECT_NE(report.detail.find("4242"), std::string::npos) << report.detail;
  EXPECT_GE(report.release_ms, 200);

  // The pid is gone but memory stays above the baseline (a leak in the driver or a stray
  // context): still not released.
  stuck.processes.clear();
  report = VerifyRelease(
      [&]() -> Result<std::vector<gpu::DeviceSample>> { return std::vector{stuck}; }, check);
  EXPECT_FALSE(report.released);
  EXPECT_NE(report.detail.find("above the pre-load baseline"), std::string::npos);
}

TEST(RunnerDeviceTest, UnloadWhoseMemoryStaysRaisesAnAlert) {
  Events ev;
  auto h = RunnerHandle::Start(TinyRunner(1), ev.Sink());
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(ev.WaitType("ready").has_value());
  const int pid = (*h)->pid();
  // A device that keeps listing the runner's pid, as a driver with a leaked context would.
  auto stuck = [pid]() -> Result<std::vector<gpu::DeviceSample>> {
    gpu::DeviceSample d;
    d.total_bytes = 24ll << 30;
    d.used_bytes = 1ll << 30;
    d.processes = {{pid, 1ll << 30}};
    return std::vector{d};
  };
  ReleaseCheck check;
  check.timeout = 200ms;
  std::optional<ReleaseReport> alert;
  auto report = UnloadRunner(**h, stuck, check, 5s, [&](const ReleaseReport& r) { alert = r; });
  EXPECT_TRUE((*h)->exited()) << "the process is gone even though the device disagrees";
  EXPECT_FALSE(report.released);
  ASSERT_TRUE(alert.has_value());
  EXPECT_NE(alert->detail.find(std::to_string(pid)), std::string::npos) << alert->detail;
}

TEST(RunnerDeviceTest, RunnerDueForRecyclingIsReplacedByAFreshOne) {
  test::ScopedTempDir data("steno-sim");
  auto sim = gpu::SimulatedDevices::Open(data.path, "1x24GiB");
  ASSERT_TRUE(sim.ok());
  std::shared_ptr<gpu::Devices> devices(std::move(*sim));
  auto o = TinyRunner(1);
  o.sim_data_dir = data.path;
  o.sim_device = 0;

  Events first;
  auto h = RunnerHandle::Start(o, first.Sink());
  ASSERT_TRUE(h.ok());
  auto ready = first.WaitType("ready");
  ASSERT_TRUE(ready.has_value());
  ASSERT_TRUE((*h)->Send(Transcribe("j1", "speech.wav")).ok());
  ASSERT_EQ(first.WaitOutcome("j1")["type"], "done");
  auto beat =
      first.WaitFor([](const json& m) { return m["type"] == "heartbeat" && m["jobs_done"] == 1; });
  ASSERT_TRUE(beat.has_value());

  RunnerUsage usage{.jobs_done = (*beat)["jobs_done"].get<int64_t>(),
                    .bytes_at_ready = (*ready)["rss_bytes"].get<int64_t>(),
                    .bytes_now = (*beat)["rss_bytes"].get<int64_t>()};
  const std::string reason =
      RecycleReason(usage, RecyclePolicy{.max_jobs = 1, .max_growth_ratio = 0});
  ASSERT_FALSE(reason.empty());

  // Recycling as the scheduler does it through its backend: unload with verified release, then
  // a fresh runner.
  const pid_t old_pid = (*h)->pid();
  Events second;
  const ReleaseReport released = UnloadRunner(**h, gpu::AsDevicesFn(devices), ReleaseCheck{}, 5s);
  h->reset();
  auto fresh = RunnerHandle::Start(o, second.Sink());
  ASSERT_TRUE(fresh.ok()) << fresh.error().message;
  EXPECT_TRUE(released.released) << released.detail;
  EXPECT_FALSE(Alive(old_pid));
  EXPECT_NE((*fresh)->pid(), old_pid);
  ASSERT_TRUE(second.WaitType("ready").has_value());
  ASSERT_TRUE((*fresh)->Send(Transcribe("j2", "speech.wav")).ok());
  EXPECT_EQ(second.WaitOutcome("j2")["type"], "done");
}

}  // namespace
}  // namespace steno::runner
