// Process identity behind "memory of a dead owner is free": liveness, pid reuse, zombies, and
// telling steno's own processes from other tenants.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "gpu/device.h"
#include "gpu/owner_process.h"
#include "gpu/sample_json.h"

namespace steno::gpu {
namespace {

TEST(GpuOwnerProcessTest, ARunningProcessIsAlive) {
  auto me = IdentifyProcess(getpid());
  ASSERT_TRUE(me.has_value());
  EXPECT_EQ(me->pid, getpid());
  EXPECT_GT(me->start_ticks, 0u);
  EXPECT_TRUE(IsAlive(*me));
}

TEST(GpuOwnerProcessTest, AReusedPidIsNotTheOwner) {
  auto me = IdentifyProcess(getpid());
  ASSERT_TRUE(me.has_value());
  ProcessIdentity earlier = *me;
  earlier.start_ticks -= 1;  // same pid, another process's start time
  EXPECT_FALSE(IsAlive(earlier));
}

TEST(GpuOwnerProcessTest, NoProcessNoIdentity) {
  EXPECT_FALSE(IdentifyProcess(0).has_value());
  EXPECT_FALSE(IdentifyProcess(-5).has_value());
  EXPECT_FALSE(IdentifyProcess(0x3fffffff).has_value());  // above any pid_max
}

TEST(GpuOwnerProcessTest, AZombieIsDeadBeforeItIsReaped) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c = 'x';
    (void)!write(ready[1], &c, 1);
    pause();
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  auto identity = IdentifyProcess(child);
  ASSERT_TRUE(identity.has_value());
  EXPECT_TRUE(IsAlive(*identity));

  kill(child, SIGKILL);
  // Not reaped yet: wait until the kernel has made it a zombie (state Z).
  for (int i = 0; i < 200 && IsAlive(*identity); ++i) usleep(10000);
  EXPECT_FALSE(IsAlive(*identity));
  EXPECT_FALSE(IdentifyProcess(child).has_value());
  int status = 0;
  EXPECT_EQ(waitpid(child, &status, 0), child);
  close(ready[0]);
  close(ready[1]);
}

TEST(GpuOwnerProcessTest, SameExecutableTellsStenoFromOthers) {
  EXPECT_TRUE(IsStenoProcess(getpid()));
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    execlp("sleep", "sleep", "5", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Until exec replaces it, the child still runs this binary; then it runs sleep.
  bool other = false;
  for (int i = 0; i < 200 && !other; ++i) {
    other = !IsStenoProcess(child);
    if (!other) usleep(10000);
  }
  EXPECT_TRUE(other);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(IsStenoProcess(0x3fffffff));
}

TEST(GpuOwnerProcessTest, MemorySplitsIntoOursAndExternal) {
  DeviceSample s;
  s.total_bytes = 100;
  s.used_bytes = 70;
  s.processes = {{10, 20}, {11, 15}, {12, 5}, {13, -1}};
  auto ours = [](int pid) { return pid == 10 || pid == 12 || pid == 13; };
  MemorySplit split = SplitMemory(s, ours);
  EXPECT_EQ(split.ours, 25);
  EXPECT_EQ(split.external, 45);  // pid 11, and 30 bytes nobody lists

  s.processes_known = false;  // the driver would not list processes: nothing is provably ours
  split = SplitMemory(s, ours);
  EXPECT_EQ(split.ours, 0);
  EXPECT_EQ(split.external, 70);
}

TEST(GpuOwnerProcessTest, SampleJsonHasNullForUnknown) {
  DeviceSample s;
  s.index = 1;
  s.total_bytes = 24LL << 30;
  s.used_bytes = 2LL << 30;
  s.free_bytes = 22LL << 30;
  s.temperature_c = 50;
  s.processes = {{42, 2LL << 30}, {43, -1}};
  ReserveConfig reserve;
  reserve.per_device[1] = 1LL << 30;
  auto j = SampleJson(
      s, [](int pid) { return pid == 42; }, reserve, 0.5);
  EXPECT_EQ(j["device"], "cuda:1");
  EXPECT_EQ(j["ours_bytes"], 2LL << 30);
  EXPECT_EQ(j["external_bytes"], 0);
  EXPECT_EQ(j["reserved_bytes"], 1LL << 30);
  EXPECT_EQ(j["allocatable_bytes"], (23LL << 30) / 2);
  EXPECT_TRUE(j["gpu_utilization_percent"].is_null());
  EXPECT_TRUE(j["power_watts"].is_null());
  EXPECT_EQ(j["temperature_c"], 50);
  ASSERT_EQ(j["processes"].size(), 2u);
  EXPECT_EQ(j["processes"][0]["ours"], true);
  EXPECT_TRUE(j["processes"][1]["used_bytes"].is_null());
  EXPECT_EQ(j["processes"][1]["ours"], false);
  s.processes_known = false;
  EXPECT_TRUE(SampleJson(
                  s, [](int) { return true; }, reserve, 0.5)["processes"]
                  .is_null());
}

}  // namespace
}  // namespace steno::gpu
