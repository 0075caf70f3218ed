// The VRAM ledger's formulas and the CPU core ledger.
#include "sched/vram_ledger.h"

#include <gtest/gtest.h>

namespace steno::sched {
namespace {

using gpu::kGiB;
using gpu::kMiB;

gpu::DeviceSample Card(int64_t total, int64_t used) {
  gpu::DeviceSample s;
  s.index = 1;
  s.total_bytes = total;
  s.used_bytes = used;
  s.free_bytes = total - used;
  return s;
}

TEST(SchedLedgerTest, FormulasFollowTheDesign) {
  auto s = Card(24 * kGiB, 6 * kGiB);
  // Our runner (pid 100) holds 4 GiB per the driver; another tenant (pid 200) 2 GiB.
  s.processes = {{100, 4 * kGiB}, {200, 2 * kGiB}};
  gpu::ReserveConfig reserve;  // 512 MiB default
  const std::vector<RunnerCharge> ours{
      {.pids = {100}, .weights_bytes = 3 * kGiB, .stream_bytes = 256 * kMiB, .streams = 2}};
  const VramLedger l = BuildLedger(s, ours, reserve, 0.9);

  EXPECT_EQ(l.device_index, 1);
  EXPECT_EQ(l.total, 24 * kGiB);
  EXPECT_EQ(l.reserved, 512 * kMiB);
  EXPECT_EQ(l.allocatable, gpu::AllocatableBytes(24 * kGiB, 512 * kMiB, 0.9));
  EXPECT_EQ(l.allocated, 3 * kGiB + 512 * kMiB);
  EXPECT_EQ(l.external, 2 * kGiB) << "used − what the driver lists for our pids";
  EXPECT_EQ(l.available, l.allocatable - l.allocated - l.external);
  EXPECT_DOUBLE_EQ(l.usage_percent, 100.0 * (3.5 * kGiB) / static_cast<double>(l.allocatable));
}

TEST(SchedLedgerTest, PerDeviceReserveAndSafetyFactorApply) {
  gpu::ReserveConfig reserve;
  reserve.per_device[1] = 2 * kGiB;
  const VramLedger l = BuildLedger(Card(10 * kGiB, 0), {}, reserve, 0.5);
  EXPECT_EQ(l.reserved, 2 * kGiB);
  EXPECT_EQ(l.allocatable, 4 * kGiB);
  EXPECT_EQ(l.available, 4 * kGiB);
  EXPECT_EQ(l.usage_percent, 0);
}

TEST(SchedLedgerTest, UnknownProcessListCountsUsedMinusOurChargesAsExternal) {
  auto s = Card(24 * kGiB, 10 * kGiB);
  s.processes_known = false;
  const std::vector<RunnerCharge> ours{{.pids = {100}, .weights_bytes = 6 * kGiB}};
  const VramLedger l = BuildLedger(s, ours, {}, 0.9);
  EXPECT_EQ(l.external, 4 * kGiB) << "our 6 GiB must not be counted twice";

  // One of ours listed without a size: same fallback.
  s.processes_known = true;
  s.processes = {{100, -1}, {200, 1 * kGiB}};
  EXPECT_EQ(BuildLedger(s, ours, {}, 0.9).external, 4 * kGiB);
}

TEST(SchedLedgerTest, ChargedButNotYetListedRunnerIsNotExternal) {
  // A runner still loading: charged in full, listed by the driver with nothing yet.
  auto s = Card(24 * kGiB, 1 * kGiB);
  s.processes = {{300, 1 * kGiB}};
  const VramLedger l = BuildLedger(s, {{.pids = {}, .weights_bytes = 5 * kGiB}}, {}, 0.9);
  EXPECT_EQ(l.external, 1 * kGiB);
  EXPECT_EQ(l.allocated, 5 * kGiB);
}

TEST(SchedLedgerTest, AvailableNeverNegativeAndFitsIsExactToTheByte) {
  gpu::ReserveConfig none;
  none.default_bytes = 0;
  auto s = Card(1000, 0);
  VramLedger l = BuildLedger(s, {{.pids = {}, .weights_bytes = 400}}, none, 1.0);
  EXPECT_EQ(l.available, 600);
  EXPECT_TRUE(l.Fits(600));
  EXPECT_FALSE(l.Fits(601));
  EXPECT_TRUE(l.Fits(0));

  l = Charge(l, 550);
  EXPECT_EQ(l.allocated, 950);
  EXPECT_EQ(l.available, 50);
  EXPECT_FALSE(l.Fits(51));

  s.used_bytes = 900;  // an external tenant
  s.processes = {{999, 900}};
  l = BuildLedger(s, {{.pids = {}, .weights_bytes = 400}}, none, 1.0);
  EXPECT_EQ(l.available, 0) << "over-committed: clamps at 0";
  EXPECT_FALSE(l.Fits(1));
}

TEST(SchedLedgerTest, CpuLedgerHoldsACorePerStreamOrTheJobsThreadsWhereMore) {
  // Runners of one stream whose jobs use 4 threads, of two streams whose jobs use 1 each, and an
  // idle one (loaded: its stream keeps a core).
  const CpuLedger l = BuildCpuLedger(
      8, {{.streams = 1, .busy_threads = 4}, {.streams = 2, .busy_threads = 2}, {.streams = 1}});
  EXPECT_EQ(l.used_threads, 7);
  EXPECT_EQ(l.available_threads, 1);
  EXPECT_TRUE(l.Fits(1));
  EXPECT_FALSE(l.Fits(2));
  EXPECT_EQ(l.busy_threads, 6);
  EXPECT_EQ(l.idle_threads(), 2) << "the idle stream's core computes nothing";
  EXPECT_EQ(BuildCpuLedger(8, {{.streams = 3}}).used_threads, 3) << "a core per idle stream";
  EXPECT_EQ(BuildCpuLedger(4, {{.busy_threads = 3}, {.busy_threads = 3}}).available_threads, 0)
      << "over-committed: clamps at 0";
}

}  // namespace
}  // namespace steno::sched
