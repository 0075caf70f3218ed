// The scheduler thread never calls the driver, and no lock that posting takes is held across a
// driver call: device samples are taken on the sampler thread and arrive as events. What a bug
// would break: a sample taken on the worker (every Submit waits for the driver), or under the
// lock every backend event and timer takes to post (a hung driver stalls every runner's events).
// The bounds below are waits for something that happens at once when the code is right; they
// are huge so that only a blocked caller can cross them.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "sched/scheduler.h"
#include "sim/simulated_backend.h"

namespace steno::sched {
namespace {

constexpr int64_t kGiB = 1LL << 30;
constexpr auto kHuge = std::chrono::seconds(60);

// A device query that, once armed, blocks every caller until opened (a hung driver).
class Gate {
 public:
  void Arm() {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = true;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Called by the device query.
  void Pass() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!armed_) return;
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  bool WaitEntered() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kHuge, [&] { return entered_ > 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;
  bool open_ = false;
  int entered_ = 0;
};

struct SamplerRig {
  VirtualClock clock;
  SimulatedBackend backend{clock, {SimCard{"cuda:0", 24 * kGiB}}};
  Gate gate;
  std::mutex threads_mu;
  std::set<std::thread::id> sampled_on;  // threads that called the device query after start
  std::atomic<bool> started{false};
  std::thread::id worker;  // seen from a hook, which runs on the worker thread
  std::unique_ptr<Scheduler> scheduler;

  explicit SamplerRig(int64_t sample_interval_ms = 0) {
    SchedulerConfig config;
    config.sample_interval_ms = sample_interval_ms;
    SchedulerHooks hooks;
    hooks.on_job = [this](const JobUpdate&) {
      std::lock_guard<std::mutex> lock(threads_mu);
      worker = std::this_thread::get_id();
    };
    gpu::DevicesFn sim = backend.Devices();
    gpu::DevicesFn devices = [this, sim] {
      if (started) {
        std::lock_guard<std::mutex> lock(threads_mu);
        sampled_on.insert(std::this_thread::get_id());
      }
      gate.Pass();
      return sim();
    };
    scheduler = std::make_unique<Scheduler>(
        config, clock, backend, devices,
        [](const std::string& m) -> Result<ModelSpec> {
          return ModelSpec{"/m/" + m, MemoryEstimate{kGiB, kGiB / 2, false}, "sim"};
        },
        hooks);
    backend.SetSink(scheduler->Sink());
    started = true;
  }
  ~SamplerRig() {
    gate.Open();
    scheduler.reset();
  }
  Status Submit(const std::string& id) {
    SubmitRequest r;
    r.job.id = id;
    r.job.model = "base";
    return scheduler->Submit(r);
  }
};

template <class T>
bool ReturnsSoon(std::future<T>& f) {
  return f.wait_for(kHuge) == std::future_status::ready;
}

TEST(SchedSamplerTest, TheFirstSnapshotHasTheDevicesAndLaterSamplesAreNotTakenOnTheWorker) {
  SamplerRig s;
  // The constructor's own sample: readiness depends on the first snapshot having the card.
  ASSERT_EQ(s.scheduler->Snapshot().devices.size(), 1u);
  ASSERT_TRUE(s.Submit("a").ok());  // starts a runner: a resample is asked for
  AdvanceTo(*s.scheduler, s.clock, 10'000);
  ASSERT_EQ(s.scheduler->FindJob("a")->job.state, JobState::kCompleted);
  std::lock_guard<std::mutex> lock(s.threads_mu);
  EXPECT_FALSE(s.sampled_on.empty()) << "runner changes are followed by a sample";
  EXPECT_EQ(s.sampled_on.count(s.worker), 0u) << "the worker thread called the driver";
  EXPECT_EQ(s.sampled_on.count(std::this_thread::get_id()), 0u);
}

TEST(SchedSamplerTest, AHungDriverAfterARunnerStartBlocksNeitherCallersNorEvents) {
  SamplerRig s;
  s.gate.Arm();
  // Submitting starts a runner, which asks for a sample: the query hangs, on its own thread.
  auto first = std::async(std::launch::async, [&] { return s.Submit("a"); });
  const bool first_returned = ReturnsSoon(first);
  const bool sampling = s.gate.WaitEntered();
  auto second = std::async(std::launch::async, [&] { return s.Submit("b"); });
  auto snapshot = std::async(std::launch::async, [&] { return s.scheduler->Snapshot(); });
  auto post = std::async(std::launch::async, [&] {
    BackendEvent e;
    e.kind = BackendEvent::Kind::kProgress;
    e.runner_id = 999;  // no such runner: ignored, but it must get through
    s.scheduler->Sink()(e);
  });
  const bool others_returned = ReturnsSoon(second) && ReturnsSoon(snapshot) && ReturnsSoon(post);
  s.gate.Open();  // whatever happened, let everything finish
  EXPECT_TRUE(first_returned);
  EXPECT_TRUE(sampling) << "the runner start asked for a sample";
  EXPECT_TRUE(others_returned);
  EXPECT_TRUE(first.get().ok());
  EXPECT_TRUE(second.get().ok());
  // The samples come through once the driver answers, and the jobs run.
  AdvanceTo(*s.scheduler, s.clock, 10'000);
  EXPECT_EQ(s.scheduler->FindJob("a")->job.state, JobState::kCompleted);
  EXPECT_EQ(s.scheduler->FindJob("b")->job.state, JobState::kCompleted);
}

TEST(SchedSamplerTest, APeriodicSampleThatHangsDoesNotHoldTheLockEveryPostTakes) {
  SamplerRig s(/*sample_interval_ms=*/1000);
  s.gate.Arm();
  // The sampling timer fires on the clock's thread (here: a helper driving the virtual clock).
  std::thread timer([&] { s.clock.FireNext(1000); });
  const bool sampling = s.gate.WaitEntered();
  auto post = std::async(std::launch::async, [&] {
    BackendEvent e;
    e.kind = BackendEvent::Kind::kProgress;
    e.runner_id = 999;
    s.scheduler->Sink()(e);
  });
  auto submit = std::async(std::launch::async, [&] { return s.Submit("a"); });
  const bool returned = ReturnsSoon(post) && ReturnsSoon(submit);
  s.gate.Open();
  timer.join();
  EXPECT_TRUE(sampling);
  EXPECT_TRUE(returned) << "a backend event waited for the driver";
  EXPECT_TRUE(submit.get().ok());
}

}  // namespace
}  // namespace steno::sched
