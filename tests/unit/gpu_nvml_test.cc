// The NVML backend against a scripted NVML (an Api of fake functions), and the degradation to
// "no devices" when libnvidia-ml.so.1 is not there, which is this machine's case.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gpu/nvml_devices.h"
#include "gpu/open_devices.h"
#include "gpu/visible_devices.h"

namespace steno::gpu {
namespace {

struct FakeCard {
  std::string uuid;
  std::string name;
  unsigned domain = 0, bus = 0;
  nvml::Memory memory{};
  nvml::Return handle_rc = nvml::kSuccess;
  nvml::Return utilization_rc = nvml::kSuccess;
  nvml::Utilization utilization{};
  unsigned temperature = 0;
  nvml::Return power_rc = nvml::kSuccess;
  unsigned power_mw = 0, limit_mw = 0;
  nvml::Return processes_rc = nvml::kSuccess;
  std::vector<nvml::ProcessInfo> processes;
  int appear_after_size_query = 0;  // processes that start between the size query and the fetch
  int process_calls = 0;
};

struct FakeNvml {
  std::vector<FakeCard> cards;
  nvml::Return init_rc = nvml::kSuccess;
  nvml::Return count_rc = nvml::kSuccess;
  int init_calls = 0, shutdown_calls = 0;
};

FakeNvml* fake = nullptr;

FakeCard& Card(nvml::Device h) {
  return fake->cards[reinterpret_cast<uintptr_t>(h) - 1];
}

nvml::Api FakeApi() {
  nvml::Api api;
  api.Init = [] {
    ++fake->init_calls;
    return fake->init_rc;
  };
  api.Shutdown = [] {
    ++fake->shutdown_calls;
    return nvml::kSuccess;
  };
  api.ErrorString = [](nvml::Return r) -> const char* {
    return r == nvml::kErrorNotSupported ? "Not Supported" : "Some NVML Error";
  };
  api.DeviceGetCount = [](unsigned* n) {
    *n = static_cast<unsigned>(fake->cards.size());
    return fake->count_rc;
  };
  api.DeviceGetHandleByIndex = [](unsigned i, nvml::Device* h) {
    if (i >= fake->cards.size()) return nvml::kErrorInvalidArgument;
    *h = reinterpret_cast<nvml::Device>(uintptr_t{i} + 1);
    return fake->cards[i].handle_rc;
  };
  api.DeviceGetUUID = [](nvml::Device h, char* out, unsigned n) {
    std::snprintf(out, n, "%s", Card(h).uuid.c_str());
    return nvml::kSuccess;
  };
  api.DeviceGetMemoryInfo = [](nvml::Device h, nvml::Memory* m) {
    *m = Card(h).memory;
    return nvml::kSuccess;
  };
  api.DeviceGetPciInfo = [](nvml::Device h, nvml::PciInfo* p) {
    std::memset(p, 0, sizeof *p);
    p->domain = Card(h).domain;
    p->bus = Card(h).bus;
    std::snprintf(p->busId, sizeof p->busId, "%04x:%02x:00.0", p->domain, p->bus);  // CUDA-like
    return nvml::kSuccess;
  };
  api.DeviceGetName = [](nvml::Device h, char* out, unsigned n) {
    std::snprintf(out, n, "%s", Card(h).name.c_str());
    return nvml::kSuccess;
  };
  api.DeviceGetUtilizationRates = [](nvml::Device h, nvml::Utilization* u) {
    *u = Card(h).utilization;
    return Card(h).utilization_rc;
  };
  api.DeviceGetTemperature = [](nvml::Device h, unsigned sensor, unsigned* t) {
    if (sensor != nvml::kTemperatureGpu) return nvml::kErrorInvalidArgument;
    *t = Card(h).temperature;
    return nvml::kSuccess;
  };
  api.DeviceGetPowerUsage = [](nvml::Device h, unsigned* mw) {
    *mw = Card(h).power_mw;
    return Card(h).power_rc;
  };
  api.DeviceGetEnforcedPowerLimit = [](nvml::Device h, unsigned* mw) {
    *mw = Card(h).limit_mw;
    return nvml::kSuccess;
  };
  // NVML's protocol: a buffer too small (including none) gets INSUFFICIENT_SIZE and the count
  // needed; no process at all is SUCCESS with count 0.
  api.DeviceGetComputeRunningProcesses = [](nvml::Device h, unsigned* count,
                                            nvml::ProcessInfo* infos) {
    FakeCard& c = Card(h);
    ++c.process_calls;
    if (c.processes_rc != nvml::kSuccess) return c.processes_rc;
    const unsigned n = static_cast<unsigned>(c.processes.size());
    if (*count < n) {
      *count = n;
      for (; c.appear_after_size_query > 0; --c.appear_after_size_query) {
        c.processes.push_back({static_cast<unsigned>(9000 + c.processes.size()), 1 << 20, 0, 0});
      }
      return nvml::kErrorInsufficientSize;
    }
    if (n > 0) std::memcpy(infos, c.processes.data(), n * sizeof(nvml::ProcessInfo));
    *count = n;
    return nvml::kSuccess;
  };
  return api;
}

class GpuNvmlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake = &state_;
    FakeCard a;  // NVML index 0, but on the higher PCI bus
    a.uuid = "GPU-aaaaaaaa-0000-0000-0000-000000000000";
    a.name = "NVIDIA H100 80GB HBM3";
    a.bus = 0x81;
    a.memory = {85520809984ULL, 85520809984ULL - 3000000000ULL, 3000000000ULL};
    a.utilization = {87, 40};
    a.temperature = 71;
    a.power_mw = 312345;
    a.limit_mw = 700000;
    a.processes = {{4242, 2000000000ULL, 0, 0}, {4343, nvml::kValueNotAvailable, 0, 0}};
    FakeCard b;  // NVML index 1, lower PCI bus: CUDA's device 0
    b.uuid = "GPU-bbbbbbbb-0000-0000-0000-000000000000";
    b.name = "NVIDIA L4";
    b.bus = 0x01;
    b.memory = {24000000000ULL, 23000000000ULL, 1000000000ULL};
    b.utilization_rc = nvml::kErrorNotSupported;
    b.power_rc = nvml::kErrorNotSupported;
    b.processes_rc = nvml::kErrorNoPermission;
    state_.cards = {a, b};
  }
  void TearDown() override { fake = nullptr; }
  FakeNvml state_;
};

TEST_F(GpuNvmlTest, SamplesIdentityMemoryTelemetryAndProcesses) {
  auto devices = NvmlDevices::Create(FakeApi());
  ASSERT_TRUE(devices.ok()) << devices.error().message;
  auto samples = (*devices)->Sample();
  ASSERT_TRUE(samples.ok()) << samples.error().message;
  ASSERT_EQ(samples->size(), 2u);

  const DeviceSample& a = (*samples)[0];
  EXPECT_EQ(a.physical_index, 0);
  EXPECT_EQ(a.uuid, "GPU-aaaaaaaa-0000-0000-0000-000000000000");
  EXPECT_EQ(a.name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(a.pci_bus_id, "00000000:81:00.0");
  EXPECT_EQ(a.total_bytes, 85520809984LL);
  EXPECT_EQ(a.used_bytes, 3000000000LL);
  EXPECT_EQ(a.free_bytes, 85520809984LL - 3000000000LL);
  EXPECT_EQ(a.gpu_utilization_percent, 87);
  EXPECT_EQ(a.memory_utilization_percent, 40);
  EXPECT_EQ(a.temperature_c, 71);
  EXPECT_DOUBLE_EQ(a.power_watts, 312.345);
  EXPECT_DOUBLE_EQ(a.power_limit_watts, 700.0);
  EXPECT_FALSE(a.simulated);
  ASSERT_TRUE(a.processes_known);
  ASSERT_EQ(a.processes.size(), 2u);
  EXPECT_EQ(a.processes[0].pid, 4242);
  EXPECT_EQ(a.processes[0].bytes, 2000000000LL);
  EXPECT_EQ(a.processes[1].pid, 4343);
  EXPECT_EQ(a.processes[1].bytes, -1);  // NVML_VALUE_NOT_AVAILABLE

  const DeviceSample& b = (*samples)[1];
  EXPECT_EQ(b.pci_bus_id, "00000000:01:00.0");
  EXPECT_EQ(b.gpu_utilization_percent, -1);  // not supported: unknown, not 0
  EXPECT_EQ(b.memory_utilization_percent, -1);
  EXPECT_EQ(b.power_watts, -1);
  EXPECT_FALSE(b.processes_known);
  EXPECT_TRUE(b.processes.empty());
}

TEST_F(GpuNvmlTest, ProcessListFollowsTheSizeQueryProtocolAsProcessesAppear) {
  // Two processes at the size query; twelve (more than the fetch's slack) by the fetch.
  state_.cards[0].appear_after_size_query = 10;
  auto devices = NvmlDevices::Create(FakeApi());
  ASSERT_TRUE(devices.ok());
  auto samples = (*devices)->Sample();
  ASSERT_TRUE(samples.ok());
  const DeviceSample& a = (*samples)[0];
  ASSERT_TRUE(a.processes_known);
  EXPECT_EQ(a.processes.size(), 12u);
  EXPECT_EQ(state_.cards[0].process_calls, 3);  // size query, short fetch, fetch

  state_.cards[0].processes.clear();  // none: the size query alone answers
  state_.cards[0].process_calls = 0;
  samples = (*devices)->Sample();
  ASSERT_TRUE(samples.ok());
  EXPECT_TRUE((*samples)[0].processes_known);
  EXPECT_TRUE((*samples)[0].processes.empty());
  EXPECT_EQ(state_.cards[0].process_calls, 1);
}

TEST_F(GpuNvmlTest, CudaOrdinalsComeFromPciOrderNotNvmlOrder) {
  auto nvml = NvmlDevices::Create(FakeApi());
  ASSERT_TRUE(nvml.ok());
  auto devices = ApplyCudaVisibleDevices(std::move(nvml).value(), std::nullopt);
  auto samples = devices->Sample();
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 2u);
  // NVML lists the H100 (bus 81) first; CUDA in PCI order sees the L4 (bus 01) as device 0.
  EXPECT_EQ((*samples)[0].name, "NVIDIA L4");
  EXPECT_EQ((*samples)[0].index, 0);
  EXPECT_EQ((*samples)[0].physical_index, 1);
  EXPECT_EQ((*samples)[1].name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ((*samples)[1].index, 1);
  EXPECT_EQ((*samples)[1].physical_index, 0);
}

TEST_F(GpuNvmlTest, AnUnreadableDeviceIsLeftOutAndTheRestListed) {
  state_.cards[0].handle_rc = nvml::kErrorGpuIsLost;
  auto devices = NvmlDevices::Create(FakeApi());
  ASSERT_TRUE(devices.ok());
  auto samples = (*devices)->Sample();
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 1u);
  EXPECT_EQ((*samples)[0].name, "NVIDIA L4");
  EXPECT_EQ((*samples)[0].physical_index, 1);
}

TEST_F(GpuNvmlTest, InitFailureIsUnavailableAndCountFailureIsAnError) {
  state_.init_rc = nvml::kErrorDriverNotLoaded;
  auto failed = NvmlDevices::Create(FakeApi());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(state_.shutdown_calls, 0);  // nothing to shut down

  state_.init_rc = nvml::kSuccess;
  {
    auto devices = NvmlDevices::Create(FakeApi());
    ASSERT_TRUE(devices.ok());
    state_.count_rc = nvml::kErrorUnknown;
    EXPECT_FALSE((*devices)->Sample().ok());
  }
  EXPECT_EQ(state_.shutdown_calls, 1);  // NVML is shut down with the object
}

TEST(GpuNvmlAbsentTest, NoLibraryMeansNoDevicesAndTheCpu) {
  auto devices = OpenNvmlDevices("/nonexistent/libnvidia-ml.so.1");
  ASSERT_NE(devices, nullptr);
  EXPECT_EQ(devices->Backend(), "none");
  auto samples = devices->Sample();
  ASSERT_TRUE(samples.ok());
  EXPECT_TRUE(samples->empty());

  auto api = nvml::LoadApi("/nonexistent/libnvidia-ml.so.1");
  ASSERT_FALSE(api.ok());
  EXPECT_EQ(api.error().kind, ErrorKind::kUnavailable);
}

TEST(GpuNvmlAbsentTest, ALibraryWithoutNvmlIsRefused) {
  auto api = nvml::LoadApi("libm.so.6");  // loads, but has no nvmlInit_v2
  ASSERT_FALSE(api.ok());
  EXPECT_NE(api.error().message.find("nvmlInit_v2"), std::string::npos) << api.error().message;
  EXPECT_EQ(OpenNvmlDevices("libm.so.6")->Backend(), "none");
}

TEST(GpuNvmlAbsentTest, OpenDevicesWithoutSimulationOrNvmlIsEmpty) {
  if (nvml::LoadApi().ok()) GTEST_SKIP() << "this machine has NVML";
  OpenOptions options;
  auto devices = OpenDevices(options);
  ASSERT_TRUE(devices.ok());
  auto samples = (*devices)->Sample();
  ASSERT_TRUE(samples.ok());
  EXPECT_TRUE(samples->empty());
}

}  // namespace
}  // namespace steno::gpu
