// MemoryHistory: the dashboard's 15-minute window of GPU memory, per device.
#include "api/memory_history.h"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

namespace steno::api {
namespace {

sched::DeviceLedger Gpu(const std::string& name, int64_t steno, int64_t other) {
  sched::DeviceLedger d;
  d.name = name;
  d.memory.total = 8'000;
  d.memory.reserved = 500;
  d.memory.allocated = steno;
  d.memory.external = other;
  d.memory.available = 8'000 - 500 - steno - other;
  return d;
}

TEST(MemoryHistoryTest, KeepsTheWindowPerGpuAndSkipsTheCpu) {
  MemoryHistory h(/*interval_ms=*/1'000, /*window_ms=*/10'000);
  sched::DeviceLedger cpu;
  cpu.name = "cpu";
  cpu.cpu = true;
  for (int64_t t = 0; t <= 20'000; t += 1'000) {
    h.Record(t, {Gpu("cuda:0", t, 100), cpu});
  }
  const auto j = h.Json();
  EXPECT_EQ(j["interval_ms"], 1'000);
  EXPECT_EQ(j["window_s"], 10);
  ASSERT_EQ(j["devices"].size(), 1u) << j.dump();
  const auto& points = j["devices"]["cuda:0"];
  // (20 000 - 10 000, 20 000]: ten points, oldest first.
  ASSERT_EQ(points.size(), 10u) << j.dump();
  EXPECT_EQ(points.front()["t"], 11'000);
  EXPECT_EQ(points.back()["t"], 20'000);
  EXPECT_EQ(points.back()["steno"], 20'000);
  EXPECT_EQ(points.back()["other"], 100);
  EXPECT_EQ(points.back()["reserved"], 500);
  EXPECT_EQ(points.back()["total"], 8'000);
}

TEST(MemoryHistoryTest, ADeviceThatLeftAgesOut) {
  MemoryHistory h(1'000, 5'000);
  h.Record(0, {Gpu("cuda:0", 1, 1), Gpu("cuda:1", 2, 2)});
  h.Record(3'000, {Gpu("cuda:0", 1, 1)});
  EXPECT_EQ(h.Json()["devices"].size(), 2u);
  h.Record(6'000, {Gpu("cuda:0", 1, 1)});
  const auto j = h.Json();
  EXPECT_EQ(j["devices"].size(), 1u) << j.dump();
  EXPECT_TRUE(j["devices"].contains("cuda:0"));
}

TEST(MemoryHistoryTest, SamplesOnItsOwnThreadUntilStopped) {
  MemoryHistory h(10, 60'000);
  std::atomic<int64_t> t{0};
  h.Start([] { return std::vector<sched::DeviceLedger>{Gpu("cuda:0", 5, 5)}; },
          [&] { return t += 10; });
  for (int i = 0; i < 6000 && h.Json()["devices"]["cuda:0"].size() < 3; ++i) {  // up to 60 s
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  h.Stop();
  const size_t n = h.Json()["devices"]["cuda:0"].size();
  EXPECT_GE(n, 3u);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(h.Json()["devices"]["cuda:0"].size(), n) << "sampled after Stop()";
}

}  // namespace
}  // namespace steno::api
