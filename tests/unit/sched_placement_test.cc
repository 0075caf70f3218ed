// Placement: the decision order, scoring, the holds-model bonus, exact fit, explicit devices,
// eviction (LRU, never busy, minimum residency) and the CPU's core budget.
#include "sched/placement.h"

#include <gtest/gtest.h>

namespace steno::sched {
namespace {

constexpr int64_t kG = int64_t{1} << 30;

DeviceView Gpu(std::string name, int64_t allocatable, int64_t allocated, int util = 0) {
  DeviceView d;
  d.name = std::move(name);
  d.memory.allocatable = allocatable;
  d.memory.allocated = allocated;
  d.memory.available = allocatable - allocated;
  d.utilization_percent = util;
  d.temperature_c = 50;
  return d;
}

RunnerView Runner(int64_t id, std::string model, std::string device, int streams, int busy,
                  int64_t weights = 2 * kG, int64_t loaded = 0, int64_t last_used = 0) {
  return {.id = id,
          .model = std::move(model),
          .device = std::move(device),
          .streams = streams,
          .busy_streams = busy,
          .weights_bytes = weights,
          .stream_bytes = kG / 4,
          .loaded_ms = loaded,
          .last_used_ms = last_used};
}

PlacementRequest Req(std::string model, int64_t weights = 2 * kG, int64_t stream = kG / 4) {
  PlacementRequest r;
  r.model = std::move(model);
  r.weights_bytes = weights;
  r.stream_bytes = stream;
  return r;
}

const int64_t kNow = 1'000'000;

TEST(SchedPlacementTest, FreeStreamOfTheModelComesFirst) {
  std::vector<DeviceView> devs{Gpu("cuda:0", 20 * kG, 0), Gpu("cuda:1", 20 * kG, 10 * kG)};
  std::vector<RunnerView> rs{Runner(1, "small", "cuda:0", 2, 2), Runner(2, "base", "cuda:1", 2, 1),
                             Runner(3, "base", "cuda:1", 3, 0)};
  const auto d = Place(Req("base"), devs, rs, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kUseStream);
  EXPECT_EQ(d.runner_id, 3) << "the least busy runner of the model";
}

TEST(SchedPlacementTest, AddsAStreamWhenItFitsElseStartsARunner) {
  std::vector<DeviceView> devs{Gpu("cuda:0", 20 * kG, 3 * kG)};
  std::vector<RunnerView> rs{Runner(7, "base", "cuda:0", 2, 2)};
  auto d = Place(Req("base"), devs, rs, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kAddStream);
  EXPECT_EQ(d.runner_id, 7);

  PlacementPolicy p;
  p.max_streams_per_runner = 2;  // the runner is at its limit
  d = Place(Req("base"), devs, rs, p, kNow);
  EXPECT_EQ(d.action, PlacementAction::kNewRunner);
  EXPECT_EQ(d.device, "cuda:0");
}

TEST(SchedPlacementTest, DeviceShortByOneByteIsNotChosen) {
  const int64_t need = 2 * kG + kG / 4;
  std::vector<DeviceView> devs{Gpu("cuda:0", 40 * kG, 40 * kG - need + 1),  // 1 byte short
                               Gpu("cuda:1", 40 * kG, 40 * kG - need, /*util=*/100)};  // exact
  const auto d = Place(Req("base"), devs, {}, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kNewRunner);
  EXPECT_EQ(d.device, "cuda:1");

  devs[1].memory.available -= 1;
  EXPECT_EQ(Place(Req("base"), devs, {}, {}, kNow).action, PlacementAction::kWait);
}

TEST(SchedPlacementTest, ScorePrefersFreeMemoryThenIdleness) {
  std::vector<DeviceView> devs{Gpu("cuda:0", 20 * kG, 15 * kG), Gpu("cuda:1", 20 * kG, 5 * kG)};
  EXPECT_EQ(Place(Req("base"), devs, {}, {}, kNow).device, "cuda:1");
  // Same memory: the idle card wins.
  devs = {Gpu("cuda:0", 20 * kG, 5 * kG, 90), Gpu("cuda:1", 20 * kG, 5 * kG, 10)};
  EXPECT_EQ(Place(Req("base"), devs, {}, {}, kNow).device, "cuda:1");
  // Hotter card loses.
  devs = {Gpu("cuda:0", 20 * kG, 5 * kG), Gpu("cuda:1", 20 * kG, 5 * kG)};
  devs[0].temperature_c = 30;
  devs[1].temperature_c = 85;
  EXPECT_EQ(Place(Req("base"), devs, {}, {}, kNow).device, "cuda:0");

  PlacementRequest high = Req("base");
  high.priority = Priority::kHigh;
  PlacementRequest low = Req("base");
  low.priority = Priority::kLow;
  EXPECT_GT(ScoreDevice(devs[0], high, false, {}), ScoreDevice(devs[0], low, false, {}));
  EXPECT_NEAR(ScoreDevice(devs[0], low, true, {}) - ScoreDevice(devs[0], low, false, {}), 10.0,
              1e-9);
}

TEST(SchedPlacementTest, DeviceAlreadyHoldingTheModelWinsANewRunner) {
  // cuda:1 has far less free memory but already runs "base" (at its stream limit).
  PlacementPolicy p;
  p.max_streams_per_runner = 1;
  std::vector<DeviceView> devs{Gpu("cuda:0", 20 * kG, 0), Gpu("cuda:1", 20 * kG, 15 * kG, 80)};
  std::vector<RunnerView> rs{Runner(1, "base", "cuda:1", 1, 1)};
  const auto d = Place(Req("base"), devs, rs, p, kNow);
  EXPECT_EQ(d.action, PlacementAction::kNewRunner);
  EXPECT_EQ(d.device, "cuda:1");
}

TEST(SchedPlacementTest, ExplicitDeviceIsHonouredOverScores) {
  std::vector<DeviceView> devs{Gpu("cuda:0", 20 * kG, 0), Gpu("cuda:1", 20 * kG, 15 * kG)};
  std::vector<RunnerView> rs{Runner(1, "base", "cuda:0", 2, 0)};
  PlacementRequest r = Req("base");
  r.device = "cuda:1";
  auto d = Place(r, devs, rs, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kNewRunner) << "the free stream is on another device";
  EXPECT_EQ(d.device, "cuda:1");
  r.device = "cuda:7";
  d = Place(r, devs, rs, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kWait);
  EXPECT_NE(d.reason.find("cuda:7"), std::string::npos);
}

TEST(SchedPlacementTest, EvictsIdleRunnersLeastRecentlyUsedFirst) {
  // 10 GiB card, full with three 3 GiB runners; the new model needs 2.25 GiB.
  std::vector<DeviceView> devs{Gpu("cuda:0", 10 * kG, 9 * kG + kG / 2 + kG / 4)};
  std::vector<RunnerView> rs{Runner(1, "a", "cuda:0", 1, 0, 3 * kG, 0, /*last_used=*/500'000),
                             Runner(2, "b", "cuda:0", 1, 0, 3 * kG, 0, /*last_used=*/100'000),
                             Runner(3, "c", "cuda:0", 1, 1, 3 * kG, 0, /*last_used=*/50'000)};
  const auto d = Place(Req("new"), devs, rs, {}, kNow);
  ASSERT_EQ(d.action, PlacementAction::kEvict);
  EXPECT_EQ(d.device, "cuda:0");
  EXPECT_EQ(d.evict, (std::vector<int64_t>{2})) << "LRU idle only; busy runner 3 is never a victim";
}

TEST(SchedPlacementTest, EvictsAsManyAsNeededButNeverBusyOrYoungRunners) {
  std::vector<DeviceView> devs{Gpu("cuda:0", 10 * kG, 10 * kG)};
  PlacementPolicy p;
  p.min_residency_ms = 60'000;
  std::vector<RunnerView> rs{
      Runner(1, "a", "cuda:0", 1, 0, 2 * kG, kNow - 120'000, kNow - 100'000),
      Runner(2, "b", "cuda:0", 1, 0, 2 * kG, kNow - 120'000, kNow - 110'000),
      Runner(3, "c", "cuda:0", 1, 0, 5 * kG, kNow - 59'999, kNow - 200'000)};  // young
  auto d = Place(Req("new", 3 * kG), devs, rs, p, kNow);
  ASSERT_EQ(d.action, PlacementAction::kEvict);
  EXPECT_EQ(d.evict, (std::vector<int64_t>{2, 1})) << "both old runners; never the young one";

  // Needing more than the old runners free: wait rather than evict the young one.
  d = Place(Req("new", 5 * kG), devs, rs, p, kNow);
  EXPECT_EQ(d.action, PlacementAction::kWait);
  // Once past its minimum residency it may go (it is the LRU).
  d = Place(Req("new", 5 * kG), devs, rs, p, kNow + 1);
  ASSERT_EQ(d.action, PlacementAction::kEvict);
  EXPECT_EQ(d.evict.front(), 3);
}

TEST(SchedPlacementTest, EachCpuJobNeedsACoreNoRunningJobUses) {
  DeviceView cpu;
  cpu.name = "cpu";
  cpu.cpu = true;
  cpu.cores = BuildCpuLedger(8, {{.streams = 3, .busy_threads = 6}});  // 2 threads left
  RunnerView r = Runner(1, "base", "cpu", 3, 3);
  r.busy_threads = 6;
  auto d = Place(Req("base"), {cpu}, {r}, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kAddStream);
  EXPECT_EQ(cpu.cores.idle_threads(), 2);

  cpu.cores = BuildCpuLedger(8, {{.streams = 3, .busy_threads = 8}});  // every core computing
  r.busy_threads = 8;
  d = Place(Req("base"), {cpu}, {r}, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kWait);
  r.streams = 4;  // a free stream is no free core
  d = Place(Req("base"), {cpu}, {r}, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kWait);

  // Streams hold a core each, idle or not: no more streams than cores, though cores are idle.
  cpu.cores = BuildCpuLedger(4, {{.streams = 3}, {.streams = 1, .busy_threads = 1}});
  RunnerView idle = Runner(1, "a", "cpu", 3, 0, 2 * kG, 0, /*last_used=*/kNow);  // not evictable
  RunnerView busy = Runner(2, "b", "cpu", 1, 1);
  busy.busy_threads = 1;
  EXPECT_EQ(cpu.cores.idle_threads(), 3);
  d = Place(Req("b"), {cpu}, {idle, busy}, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kWait) << "a fifth stream on four cores";
  d = Place(Req("a"), {cpu}, {idle, busy}, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kUseStream) << "an idle stream needs no more";
}

TEST(SchedPlacementTest, IdleCpuRunnersHoldACoreEachButAJobMayComputeOnIt) {
  DeviceView cpu;
  cpu.name = "cpu";
  cpu.cpu = true;
  // Two idle runners on two cores: both cores held, none computing.
  cpu.cores = BuildCpuLedger(2, {{}, {}});
  const RunnerView a = Runner(1, "a", "cpu", 1, 0, 2 * kG, 0, /*last_used=*/900'000);
  const RunnerView b = Runner(2, "b", "cpu", 1, 0, 2 * kG, 0, /*last_used=*/100'000);
  auto d = Place(Req("a"), {cpu}, {a, b}, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kUseStream);
  EXPECT_EQ(cpu.cores.idle_threads(), 2) << "a job of a may use both cores";
  // A third model needs a runner the cores cannot hold: the least recently used is evicted.
  d = Place(Req("c"), {cpu}, {a, b}, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kEvict);
  EXPECT_EQ(d.evict, std::vector<int64_t>{2});
}

TEST(SchedPlacementTest, CpuJobsShareTheFreeCoresOnlyWhenOthersWait) {
  EXPECT_EQ(CpuThreadsFor(/*free=*/8, /*least=*/1, /*most=*/4, /*waiting=*/1, /*room=*/-1), 4)
      << "alone";
  EXPECT_EQ(CpuThreadsFor(2, 1, 2, 1, -1), 2);
  EXPECT_EQ(CpuThreadsFor(2, 1, 2, 4, -1), 1) << "four waiting share two cores";
  EXPECT_EQ(CpuThreadsFor(8, 1, 8, 3, -1), 2);
  EXPECT_EQ(CpuThreadsFor(2, 1, 2, 4, 1), 2) << "only one can start: it takes both";
  EXPECT_EQ(CpuThreadsFor(1, 1, 4, 1, -1), 1);
  EXPECT_EQ(CpuThreadsFor(0, 1, 4, 1, -1), 1) << "at least one";
  EXPECT_EQ(CpuThreadsFor(16, 1, 4, 2, 8), 4) << "never more than --threads";
  // --min-threads: fewer share the cores, each with at least that many.
  EXPECT_EQ(CpuThreadsFor(8, 2, 4, 8, -1), 2) << "four of eight waiting start, two threads each";
  EXPECT_EQ(CpuThreadsFor(2, 2, 2, 4, -1), 2) << "least = most: every job the same count";
  EXPECT_EQ(CpuThreadsFor(6, 4, 4, 2, -1), 4);
}

TEST(SchedPlacementTest, HysteresisSparesRecentlyUsedAndWantedRunners) {
  std::vector<DeviceView> devs{Gpu("cuda:0", 10 * kG, 10 * kG)};
  PlacementPolicy p;
  p.min_residency_ms = 0;
  p.min_idle_ms = 10'000;
  std::vector<RunnerView> rs{Runner(1, "a", "cuda:0", 1, 0, 4 * kG, 0, kNow - 9'999)};
  auto d = Place(Req("new", 3 * kG), devs, rs, p, kNow);
  EXPECT_EQ(d.action, PlacementAction::kWait) << "idle for less than min_idle_ms";
  d = Place(Req("new", 3 * kG), devs, rs, p, kNow + 1);
  ASSERT_EQ(d.action, PlacementAction::kEvict);
  rs[0].wanted = true;  // its model has jobs waiting: evicting it would only reload it
  d = Place(Req("new", 3 * kG), devs, rs, p, kNow + 1);
  EXPECT_EQ(d.action, PlacementAction::kWait);
}

TEST(SchedPlacementTest, ANewGpuRunnerNeedsRoomForItsCudaContext) {
  // 2.5 GiB free: weights 2 + stream 0.25 fit, plus a 0.5 GiB context they do not.
  std::vector<DeviceView> devs{Gpu("cuda:0", 10 * kG, 7 * kG + kG / 2)};
  PlacementRequest r = Req("m");
  auto d = Place(r, devs, {}, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kNewRunner);
  r.gpu_overhead_bytes = kG / 2;
  d = Place(r, devs, {}, {}, kNow);
  EXPECT_EQ(d.action, PlacementAction::kWait);
}

}  // namespace
}  // namespace steno::sched
