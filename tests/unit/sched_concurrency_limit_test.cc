// The compute limit's policy, fed synthetic observations on a virtual clock: a device model that
// shares its compute among the jobs in flight (at n jobs it decodes capacity(n) audio seconds per
// second, each job getting an equal share) runs jobs as the limiter allows, and the tests read
// the limit after every job end.
#include "sched/concurrency_limit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

namespace steno::sched {
namespace {

ConcurrencyConfig Auto(int max_limit) {
  ConcurrencyConfig c;
  c.mode = ConcurrencyConfig::Mode::kAuto;
  c.max_limit = max_limit;
  return c;
}

// Processor sharing on a virtual clock. Jobs are 4 to 12 s of audio; `demand` bounds how many
// jobs are there to run at once (the queue's depth).
class SimDevice {
 public:
  SimDevice(ConcurrencyLimiter& limiter, std::function<double(int)> capacity)
      : limiter_(limiter), capacity_(std::move(capacity)) {}

  void set_capacity(std::function<double(int)> capacity) { capacity_ = std::move(capacity); }
  void set_demand(int demand) { demand_ = demand; }
  // Runs until `ends` more jobs ended; the limit after each end is appended to limits().
  void Run(int ends) {
    for (int i = 0; i < ends; ++i) StepToNextEnd();
  }
  // Runs until the limiter closed a window (its shown measurement changed).
  void RunToWindowEnd() {
    const int64_t before = limiter_.View().windows;
    for (int i = 0; i < 10'000; ++i) {
      StepToNextEnd();
      if (limiter_.View().windows != before) return;
    }
    FAIL() << "no window closed";
  }
  const std::vector<int>& limits() const { return limits_; }
  int max_in_flight() const { return max_in_flight_; }

 private:
  struct Job {
    double remaining_s;
    double audio_s;
    int64_t started_ms;
  };
  int64_t Ms() const { return std::llround(now_s_ * 1000); }
  void Fill() {
    const int limit = limiter_.limit() == 0 ? demand_ : std::min(limiter_.limit(), demand_);
    while (static_cast<int>(jobs_.size()) < limit) {
      const double audio = 4.0 + static_cast<double>(next_++ % 5) * 2.0;
      jobs_.push_back({audio, audio, Ms()});
      limiter_.OnStart(Ms());
    }
    max_in_flight_ = std::max(max_in_flight_, static_cast<int>(jobs_.size()));
  }
  void StepToNextEnd() {
    Fill();
    const double rate = capacity_(static_cast<int>(jobs_.size())) / jobs_.size();
    const auto first = std::min_element(
        jobs_.begin(), jobs_.end(), [](auto& a, auto& b) { return a.remaining_s < b.remaining_s; });
    const double dt = first->remaining_s / rate;
    now_s_ += dt;
    for (auto& j : jobs_) j.remaining_s -= rate * dt;
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (it->remaining_s > 1e-9) {
        ++it;
        continue;
      }
      limiter_.OnEnd(Ms(), it->started_ms, it->audio_s);
      limits_.push_back(limiter_.limit());
      it = jobs_.erase(it);
    }
  }

  ConcurrencyLimiter& limiter_;
  std::function<double(int)> capacity_;
  int demand_ = 1 << 20;
  double now_s_ = 0;
  uint64_t next_ = 0;
  std::vector<Job> jobs_;
  std::vector<int> limits_;
  int max_in_flight_ = 0;
};

int Median(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<int> Tail(const std::vector<int>& v, size_t n) {
  return std::vector<int>(v.end() - static_cast<std::ptrdiff_t>(std::min(n, v.size())), v.end());
}

TEST(SchedConcurrencyLimitTest, GrowsWhileThroughputGrowsAndNeverAboveTheCap) {
  ConcurrencyLimiter limiter(Auto(16));
  SimDevice device(limiter, [](int n) { return 2.0 * n; });  // every stream adds as much
  EXPECT_EQ(limiter.limit(), 1) << "learning starts at one stream";
  device.Run(1000);
  EXPECT_EQ(limiter.limit(), 16);
  EXPECT_TRUE(std::is_sorted(device.limits().begin(), device.limits().end()))
      << "throughput never stopped growing, so the limit never went down";
  EXPECT_LE(*std::max_element(device.limits().begin(), device.limits().end()), 16);
  EXPECT_LE(device.max_in_flight(), 16);
  EXPECT_NEAR(limiter.View().throughput, 32.0, 2.0) << "16 streams × 2 audio s per s";
}

TEST(SchedConcurrencyLimitTest, SettlesWhereThroughputStopsGrowing) {
  // Three cores' worth of compute: beyond three jobs, each one only slows the others down.
  ConcurrencyLimiter limiter(Auto(64));
  SimDevice device(limiter, [](int n) { return std::min(n, 3) * 1.0; });
  device.Run(3000);
  const std::vector<int> settled = Tail(device.limits(), 2000);
  EXPECT_EQ(Median(settled), 3);
  EXPECT_GE(*std::min_element(settled.begin(), settled.end()), 2) << "probes go one step down";
  EXPECT_LE(*std::max_element(settled.begin(), settled.end()), 4) << "and one step up";
  const auto at_three = std::count(settled.begin(), settled.end(), 3);
  EXPECT_GT(at_three, static_cast<long>(settled.size() / 2)) << "mostly at the knee";
}

TEST(SchedConcurrencyLimitTest, DoesNotProbeBelowTheKneeAgainWhileItsMeasurementIsFresh) {
  // Two cores' worth: slow start measures one stream, then two (worth it), then four (not):
  // back to two. One stream is known to deliver half as much; probing it again would only
  // cost a stream's throughput. With the measurement never going stale, it is never probed.
  ConcurrencyConfig config = Auto(64);
  config.stale_after_ms = int64_t{1} << 50;
  ConcurrencyLimiter limiter(config);
  SimDevice device(limiter, [](int n) { return std::min(n, 2) * 1.0; });
  device.Run(2000);
  const std::vector<int>& limits = device.limits();
  const auto first_two = std::find(limits.begin(), limits.end(), 2);
  ASSERT_NE(first_two, limits.end());
  EXPECT_EQ(*std::min_element(first_two, limits.end()), 2) << "never back to one stream";
  EXPECT_EQ(Median(Tail(limits, 1000)), 2);
}

TEST(SchedConcurrencyLimitTest, ThroughputThatFallsWithConcurrencyKeepsOneStreamNeverZero) {
  // A device that thrashes: two jobs together deliver less than one alone.
  ConcurrencyLimiter limiter(Auto(64));
  SimDevice device(limiter, [](int n) { return 1.0 / n; });
  device.Run(500);
  EXPECT_EQ(*std::min_element(device.limits().begin(), device.limits().end()), 1);
  EXPECT_EQ(Median(Tail(device.limits(), 300)), 1);
  EXPECT_LE(*std::max_element(device.limits().begin(), device.limits().end()), 2)
      << "each probe upward is taken back";
}

TEST(SchedConcurrencyLimitTest, BacksOffWhenLatencyClimbsAndRecovers) {
  ConcurrencyLimiter limiter(Auto(8));
  SimDevice device(limiter, [](int n) { return 1.0 * n; });
  device.Run(300);
  ASSERT_EQ(limiter.limit(), 8);
  // Another tenant takes three quarters of the device: the same eight streams run 4× slower.
  device.RunToWindowEnd();
  device.set_capacity([](int n) { return 0.25 * n; });
  device.RunToWindowEnd();
  EXPECT_EQ(limiter.limit(), 6) << "multiplicative decrease: ⌊8 × 0.75⌋";
  // The tenant leaves: the limit climbs back to the cap, one stream at a time.
  device.set_capacity([](int n) { return 1.0 * n; });
  device.Run(600);
  EXPECT_EQ(limiter.limit(), 8);
}

TEST(SchedConcurrencyLimitTest, RecoversWhenTheDeviceCanDoMoreAgain) {
  ConcurrencyLimiter limiter(Auto(32));
  SimDevice device(limiter, [](int n) { return std::min(n, 2) * 1.0; });
  device.Run(1500);
  ASSERT_EQ(Median(Tail(device.limits(), 500)), 2);
  device.set_capacity([](int n) { return std::min(n, 6) * 1.0; });  // e.g. a tenant left
  device.Run(3000);
  EXPECT_EQ(Median(Tail(device.limits(), 1000)), 6);
}

TEST(SchedConcurrencyLimitTest, DemandBelowTheLimitTeachesNothing) {
  ConcurrencyLimiter limiter(Auto(64));
  SimDevice device(limiter, [](int n) { return 1.0 * n; });
  device.set_demand(2);  // never more than two jobs to run
  device.Run(500);
  EXPECT_LE(*std::max_element(device.limits().begin(), device.limits().end()), 4)
      << "slow start reached 4; with two jobs in flight nothing says 8 would help";
}

TEST(SchedConcurrencyLimitTest, WorkWithoutAudioGrowsToTheCap) {
  // Jobs that report no audio (not transcription): nothing to measure, memory decides.
  ConcurrencyLimiter limiter(Auto(8));
  for (int round = 0, t = 0; round < 20; ++round, t += 1000) {
    const int n = limiter.limit();
    for (int i = 0; i < n; ++i) limiter.OnStart(t);
    for (int i = 0; i < n; ++i) limiter.OnEnd(t + 1000, t, 0);
  }
  EXPECT_EQ(limiter.limit(), 8);
  EXPECT_EQ(limiter.View().throughput, 0) << "nothing measured";
}

TEST(SchedConcurrencyLimitTest, FixedAndOffDoNotLearnButStillMeasure) {
  ConcurrencyConfig fixed;
  fixed.mode = ConcurrencyConfig::Mode::kFixed;
  fixed.fixed = 3;
  ConcurrencyLimiter three(fixed);
  SimDevice device(three, [](int n) { return 1.0 * n; });
  device.Run(200);
  EXPECT_EQ(device.max_in_flight(), 3);
  EXPECT_EQ(three.limit(), 3);
  EXPECT_EQ(three.View().mode, "fixed");
  EXPECT_NEAR(three.View().throughput, 3.0, 0.2);

  ConcurrencyLimiter off{ConcurrencyConfig{}};
  SimDevice unlimited(off, [](int n) { return 1.0 * n; });
  unlimited.set_demand(5);
  unlimited.Run(100);
  EXPECT_EQ(off.limit(), 0) << "0: no compute limit";
  EXPECT_EQ(off.View().mode, "off");
  EXPECT_NEAR(off.View().throughput, 5.0, 0.5);
  EXPECT_NEAR(off.View().real_time_factor, 1.0, 0.05);
}

TEST(SchedConcurrencyLimitTest, ParsesAutoZeroOrACount) {
  EXPECT_EQ(ParseConcurrencyLimit("auto")->mode, ConcurrencyConfig::Mode::kAuto);
  EXPECT_EQ(ParseConcurrencyLimit("0")->mode, ConcurrencyConfig::Mode::kOff);
  auto four = ParseConcurrencyLimit("4");
  ASSERT_TRUE(four);
  EXPECT_EQ(four->mode, ConcurrencyConfig::Mode::kFixed);
  EXPECT_EQ(four->fixed, 4);
  EXPECT_EQ(ConcurrencyLimitText(*four), "4");
  EXPECT_EQ(ConcurrencyLimitText(*ParseConcurrencyLimit("auto")), "auto");
  for (const char* bad : {"", "-1", "1025", "2x", "Auto", "1.5", " 3"}) {
    EXPECT_FALSE(ParseConcurrencyLimit(bad)) << bad;
  }
}

}  // namespace
}  // namespace steno::sched
