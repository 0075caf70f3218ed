// Simulated GPUs: memory really accounted (capacity refused past the end as OOM), other tenants
// injectable, telemetry scriptable, state shared through the data dir, and memory of a process
// that died released without anyone releasing it.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "gpu/open_devices.h"
#include "gpu/simulated_devices.h"
#include "support/test_env.h"

namespace steno::gpu {
namespace {

constexpr int64_t kGiB64 = int64_t{1} << 30;

std::unique_ptr<SimulatedDevices> OpenSim(const std::string& dir, std::string_view spec) {
  auto sim = SimulatedDevices::Open(dir, spec);
  EXPECT_TRUE(sim.ok()) << (sim.ok() ? "" : sim.error().message);
  return sim.ok() ? std::move(sim).value() : nullptr;
}

DeviceSample Card(SimulatedDevices& sim, int device) {
  auto samples = sim.Sample();
  EXPECT_TRUE(samples.ok());
  return (*samples)[static_cast<size_t>(device)];
}

int64_t HeldBy(const DeviceSample& s, int pid) {
  for (const auto& p : s.processes) {
    if (p.pid == pid) return p.bytes;
  }
  return 0;
}

TEST(GpuSimulatedTest, CardsHaveTheSpecsCapacityAndAStableIdentity) {
  test::ScopedTempDir dir;
  auto sim = OpenSim(dir.path, "2x24GiB,1x12GiB");
  ASSERT_NE(sim, nullptr);
  auto samples = sim->Sample();
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 3u);
  EXPECT_EQ((*samples)[0].total_bytes, 25769803776LL);
  EXPECT_EQ((*samples)[1].total_bytes, 25769803776LL);
  EXPECT_EQ((*samples)[2].total_bytes, 12 * kGiB64);
  for (const auto& s : *samples) {
    EXPECT_TRUE(s.simulated);
    EXPECT_EQ(s.used_bytes, 0);
    EXPECT_EQ(s.free_bytes, s.total_bytes);
    EXPECT_TRUE(s.processes_known);
    EXPECT_EQ(sim->PhysicalIndexOf(s.uuid).value(), s.physical_index);
    EXPECT_EQ(s.pci_bus_id, SimulatedDevices::SimulatedPciBusId(s.physical_index));
  }
  EXPECT_NE((*samples)[0].uuid, (*samples)[1].uuid);
  EXPECT_FALSE(sim->PhysicalIndexOf("GPU-nope").ok());
}

TEST(GpuSimulatedTest, AChargePastCapacityIsRefusedAsOutOfMemory) {
  test::ScopedTempDir dir;
  auto sim = OpenSim(dir.path, "1x24GiB");
  ASSERT_NE(sim, nullptr);
  ASSERT_TRUE(sim->Charge(0, 20 * kGiB64).ok());
  Status too_much = sim->Charge(0, 5 * kGiB64);
  ASSERT_FALSE(too_much.ok());
  EXPECT_EQ(too_much.error().kind, ErrorKind::kOutOfMemory);
  EXPECT_NE(too_much.error().message.find("out of memory"), std::string::npos);

  DeviceSample s = Card(*sim, 0);  // the refused charge changed nothing
  EXPECT_EQ(s.used_bytes, 20 * kGiB64);
  EXPECT_EQ(s.free_bytes, 4 * kGiB64);
  EXPECT_EQ(HeldBy(s, getpid()), 20 * kGiB64);

  EXPECT_TRUE(sim->Charge(0, 4 * kGiB64).ok());  // exactly full still fits
  EXPECT_EQ(Card(*sim, 0).free_bytes, 0);
  EXPECT_EQ(sim->Charge(0, 1).error().kind, ErrorKind::kOutOfMemory);
}

TEST(GpuSimulatedTest, ReleaseReturnsMemoryAndCannotReturnMoreThanHeld) {
  test::ScopedTempDir dir;
  auto sim = OpenSim(dir.path, "2x24GiB");
  ASSERT_NE(sim, nullptr);
  ASSERT_TRUE(sim->Charge(1, 10 * kGiB64).ok());
  ASSERT_TRUE(sim->Release(1, 4 * kGiB64).ok());
  EXPECT_EQ(Card(*sim, 1).used_bytes, 6 * kGiB64);
  Status over = sim->Release(1, 7 * kGiB64);
  EXPECT_EQ(over.error().kind, ErrorKind::kBadInput);
  EXPECT_FALSE(sim->Release(0, 1).ok());  // holds nothing there
  EXPECT_EQ(Card(*sim, 1).used_bytes, 6 * kGiB64);
  ASSERT_TRUE(sim->ReleaseAll().ok());
  EXPECT_EQ(Card(*sim, 1).used_bytes, 0);
  EXPECT_TRUE(Card(*sim, 1).processes.empty());
}

TEST(GpuSimulatedTest, ExternalTenantTakesCapacityFromEveryoneElse) {
  test::ScopedTempDir dir;
  auto server = OpenSim(dir.path, "2x24GiB");
  ASSERT_NE(server, nullptr);
  auto other = OpenSim(dir.path, "2x24GiB");  // e.g. `steno gpus simulate-external`
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->SetExternal(0, 20 * kGiB64).ok());

  DeviceSample s = Card(*server, 0);
  EXPECT_EQ(s.used_bytes, 20 * kGiB64);
  EXPECT_EQ(s.free_bytes, 4 * kGiB64);
  EXPECT_TRUE(s.processes.empty());  // another tenant's memory is not attributed to a pid
  EXPECT_EQ(server->Charge(0, 5 * kGiB64).error().kind, ErrorKind::kOutOfMemory);
  EXPECT_TRUE(server->Charge(0, 4 * kGiB64).ok());
  EXPECT_EQ(Card(*server, 1).used_bytes, 0);  // other cards untouched

  // The tenant cannot grow into memory processes hold either.
  EXPECT_EQ(other->SetExternal(0, 21 * kGiB64).error().kind, ErrorKind::kOutOfMemory);
  ASSERT_TRUE(other->SetExternal(0, 6 * kGiB64).ok());  // set, not add
  EXPECT_EQ(Card(*server, 0).used_bytes, 10 * kGiB64);
  ASSERT_TRUE(other->ClearExternal().ok());
  EXPECT_EQ(Card(*server, 0).used_bytes, 4 * kGiB64);
}

TEST(GpuSimulatedTest, MemoryOfAKilledOwnerIsReleased) {
  test::ScopedTempDir dir;
  auto sim = OpenSim(dir.path, "1x24GiB");
  ASSERT_NE(sim, nullptr);
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // a "runner": holds 16 GiB until it is killed
    auto mine = SimulatedDevices::Open(dir.path, "");
    char ok = mine.ok() && (*mine)->Charge(0, 16 * kGiB64).ok() ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    pause();
    _exit(0);
  }
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y');
  EXPECT_EQ(HeldBy(Card(*sim, 0), child), 16 * kGiB64);
  EXPECT_EQ(sim->Charge(0, 10 * kGiB64).error().kind, ErrorKind::kOutOfMemory);

  ASSERT_EQ(kill(child, SIGKILL), 0);
  // Not reaped yet (a zombie): its memory must already be free, as on a real card.
  bool released = false;
  for (int i = 0; i < 200 && !released; ++i) {
    released = Card(*sim, 0).used_bytes == 0;
    if (!released) usleep(10000);
  }
  EXPECT_TRUE(released);
  EXPECT_EQ(HeldBy(Card(*sim, 0), child), 0);
  EXPECT_TRUE(sim->Charge(0, 10 * kGiB64).ok());
  waitpid(child, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
}

TEST(GpuSimulatedTest, ConcurrentChargesNeverOvercommit) {
  test::ScopedTempDir dir;
  auto sim = OpenSim(dir.path, "1x24GiB");
  ASSERT_NE(sim, nullptr);
  std::atomic<int> granted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      auto mine = SimulatedDevices::Open(dir.path, "1x24GiB");  // its own lock descriptor
      for (int i = 0; i < 5; ++i) {
        Status s = (*mine)->Charge(0, kGiB64);
        (s.ok() ? granted : refused)++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 24);  // a lost update would grant more, or count less
  EXPECT_EQ(refused.load(), 16);
  EXPECT_EQ(Card(*sim, 0).used_bytes, 24 * kGiB64);
}

TEST(GpuSimulatedTest, TelemetryIsScriptable) {
  test::ScopedTempDir dir;
  auto sim = OpenSim(dir.path, "2x24GiB");
  ASSERT_NE(sim, nullptr);
  SimulatedTelemetry hot;
  hot.gpu_utilization_percent = 95;
  hot.temperature_c = 84;
  ASSERT_TRUE(sim->SetTelemetry(1, hot).ok());
  SimulatedTelemetry power;
  power.power_watts = 250;
  ASSERT_TRUE(sim->SetTelemetry(1, power).ok());  // other fields stay as scripted

  auto reader = OpenSim(dir.path, "");
  ASSERT_NE(reader, nullptr);
  DeviceSample s = Card(*reader, 1);
  EXPECT_EQ(s.gpu_utilization_percent, 95);
  EXPECT_EQ(s.temperature_c, 84);
  EXPECT_DOUBLE_EQ(s.power_watts, 250);
  EXPECT_EQ(Card(*reader, 0).gpu_utilization_percent, 0);
  EXPECT_EQ(Card(*reader, 0).temperature_c, 35);

  SimulatedTelemetry bad;
  bad.gpu_utilization_percent = 101;
  EXPECT_EQ(sim->SetTelemetry(0, bad).error().kind, ErrorKind::kBadInput);
  bad = {};
  bad.temperature_c = -3;
  EXPECT_EQ(sim->SetTelemetry(0, bad).error().kind, ErrorKind::kBadInput);
  EXPECT_EQ(sim->SetTelemetry(2, hot).error().kind, ErrorKind::kBadInput);  // no such card
}

TEST(GpuSimulatedTest, OpeningJoinsReplacesOrRefuses) {
  test::ScopedTempDir dir;
  auto nothing = SimulatedDevices::Open(dir.path, "");
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(SimulatedDevices::Open(dir.path, "2x24XB").error().kind, ErrorKind::kBadInput);

  auto first = OpenSim(dir.path, "2x24GiB");
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->SetExternal(1, kGiB64).ok());
  auto same = OpenSim(dir.path, "24GiB,24GiB");  // the same cards, written differently
  ASSERT_NE(same, nullptr);
  EXPECT_EQ(Card(*same, 1).used_bytes, kGiB64);  // kept

  ASSERT_TRUE(first->Charge(0, kGiB64).ok());
  auto busy = SimulatedDevices::Open(dir.path, "1x12GiB");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().kind, ErrorKind::kUnavailable);

  ASSERT_TRUE(first->ReleaseAll().ok());
  auto replaced = OpenSim(dir.path, "1x12GiB");
  ASSERT_NE(replaced, nullptr);
  ASSERT_EQ(replaced->Capacities(), (std::vector<int64_t>{12 * kGiB64}));
  EXPECT_EQ(Card(*replaced, 0).used_bytes, 0);
  // The old handle notices instead of writing into cards that no longer exist.
  EXPECT_EQ(first->Charge(0, 1).error().kind, ErrorKind::kUnavailable);
}

TEST(GpuSimulatedTest, CorruptStateIsReportedOrRestarted) {
  test::ScopedTempDir dir;
  auto sim = OpenSim(dir.path, "1x24GiB");
  ASSERT_NE(sim, nullptr);
  std::ofstream(sim->StatePath()) << "{not json";
  EXPECT_EQ(sim->Sample().error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(SimulatedDevices::Open(dir.path, "").error().kind, ErrorKind::kIntegrity);
  auto fresh = OpenSim(dir.path, "1x24GiB");  // a spec starts afresh
  ASSERT_NE(fresh, nullptr);
  EXPECT_TRUE(fresh->Sample().ok());
}

TEST(GpuSimulatedTest, OpenDevicesUsesTheSimulationAndItsCudaMapping) {
  test::ScopedTempDir dir;
  OpenOptions options;
  options.simulate_spec = "2x24GiB,1x12GiB";
  options.data_dir = dir.path;
  auto devices = OpenDevices(options);
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ((*devices)->Backend(), "simulated");
  EXPECT_EQ((*devices)->Sample()->size(), 3u);

  options.cuda_visible_devices = "2," + SimulatedDevices::SimulatedUuid(0);
  devices = OpenDevices(options);
  ASSERT_TRUE(devices.ok());
  auto samples = (*devices)->Sample();
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 2u);
  EXPECT_EQ((*samples)[0].index, 0);
  EXPECT_EQ((*samples)[0].physical_index, 2);
  EXPECT_EQ((*samples)[0].total_bytes, 12 * kGiB64);
  EXPECT_EQ((*samples)[1].physical_index, 0);

  options.simulate_spec = "3x";
  EXPECT_EQ(OpenDevices(options).error().kind, ErrorKind::kBadInput);
}

}  // namespace
}  // namespace steno::gpu
