// CUDA_VISIBLE_DEVICES as the CUDA runtime reads it, and the NVML-index ↔ CUDA-ordinal mapping
// by PCI bus id: a runner started for cuda:N must land on the card the ledger charges.
#include <gtest/gtest.h>

#include "gpu/visible_devices.h"

namespace steno::gpu {
namespace {

const std::vector<std::string> kUuids = {
    "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6",
    "GPU-8932aa00-1111-2222-3333-444455556666",
    "GPU-11112222-3333-4444-5555-666677778888",
};

std::vector<int> Visible(const char* value) {
  return MapCudaVisibleDevices(std::string(value), kUuids).visible;
}

TEST(GpuVisibleDevicesTest, UnsetShowsEveryCardInPciOrder) {
  auto m = MapCudaVisibleDevices(std::nullopt, kUuids);
  EXPECT_EQ(m.visible, (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(m.problem.empty());
}

TEST(GpuVisibleDevicesTest, IndicesSelectAndReorder) {
  EXPECT_EQ(Visible("1"), (std::vector<int>{1}));
  EXPECT_EQ(Visible("2,0"), (std::vector<int>{2, 0}));
  EXPECT_EQ(Visible(" 1 , 0 "), (std::vector<int>{1, 0}));
}

TEST(GpuVisibleDevicesTest, UuidsAndUniquePrefixesSelect) {
  EXPECT_EQ(Visible("GPU-11112222-3333-4444-5555-666677778888"), (std::vector<int>{2}));
  EXPECT_EQ(Visible("GPU-8932f9,0"), (std::vector<int>{0}));  // then the same card again: stop
  EXPECT_EQ(Visible("GPU-8932f9"), (std::vector<int>{0}));
  EXPECT_EQ(Visible("gpu-1111,GPU-8932aa"), (std::vector<int>{2, 1}));
  EXPECT_EQ(Visible("GPU-1111,0"), (std::vector<int>{2, 0}));
}

TEST(GpuVisibleDevicesTest, FirstInvalidEntryHidesItAndEverythingAfter) {
  struct Case {
    const char* value;
    std::vector<int> visible;
    const char* named;  // the problem names this entry
  } cases[] = {
      {"0,5,1", {0}, "5"},
      {"3", {}, "3"},
      {"-1", {}, "-1"},
      {"1,GPU-ffff,0", {1}, "GPU-ffff"},
      {"GPU-8932", {}, "GPU-8932"},  // prefix of two cards: ambiguous
      {"0,0,1", {0}, "0"},           // a repeated card
      {"1,GPU-8932aa", {1}, "GPU-8932aa"},
      {"0,,1", {0}, "empty"},
      {"0,MIG-GPU-8932f937/1/0", {0}, "MIG"},
      {"2,nvidia0", {2}, "nvidia0"},
      {"99999999999999999999", {}, "99999999999999999999"},
  };
  for (const auto& c : cases) {
    auto m = MapCudaVisibleDevices(std::string(c.value), kUuids);
    EXPECT_EQ(m.visible, c.visible) << c.value;
    EXPECT_NE(m.problem.find(c.named), std::string::npos) << c.value << ": " << m.problem;
  }
}

TEST(GpuVisibleDevicesTest, EmptyValueHidesEveryCardWithoutComplaint) {
  auto m = MapCudaVisibleDevices(std::string(""), kUuids);
  EXPECT_TRUE(m.visible.empty());
  EXPECT_TRUE(m.problem.empty());
}

TEST(GpuVisibleDevicesTest, PciBusIdsNormalizeToNvmlForm) {
  EXPECT_EQ(NormalizePciBusId("00000000:3B:00.0"), "00000000:3B:00.0");
  EXPECT_EQ(NormalizePciBusId("0000:3b:00.0"), "00000000:3B:00.0");  // CUDA's form
  EXPECT_EQ(NormalizePciBusId("3b:00.0"), "00000000:3B:00.0");
  EXPECT_EQ(NormalizePciBusId(" 0001:c1:1f.7 "), "00000001:C1:1F.7");
  for (const char* bad : {"", "3b:00", "0000:3b:00:0", "0000:3g:00.0", "0000:3b:20.0",
                          "0000:3b:00.8", "123456789:00:00.0", "-1:00:00.0", "0000:100:00.0"}) {
    EXPECT_EQ(NormalizePciBusId(bad), "") << bad;
  }
}

// A backend that reports cards the way NVML may: not in PCI order.
class FakeCards : public Devices {
 public:
  std::string Backend() const override { return "fake"; }
  Result<std::vector<DeviceSample>> Sample() override {
    std::vector<DeviceSample> out;
    const char* bus_ids[] = {"00000000:C1:00.0", "00000000:01:00.0", "00000000:41:00.0"};
    for (int i = 0; i < 3; ++i) {
      DeviceSample s;
      s.index = -1;
      s.physical_index = i;
      s.uuid = kUuids[static_cast<size_t>(i)];
      s.pci_bus_id = bus_ids[i];
      out.push_back(s);
    }
    return out;
  }
};

TEST(GpuVisibleDevicesTest, CudaOrdinalsFollowPciBusOrder) {
  auto devices = ApplyCudaVisibleDevices(std::make_unique<FakeCards>(), std::nullopt);
  auto samples = devices->Sample();
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 3u);
  // NVML index 1 has the lowest bus id, so it is cuda:0; NVML 0 (bus C1) is cuda:2.
  EXPECT_EQ((*samples)[0].physical_index, 1);
  EXPECT_EQ((*samples)[1].physical_index, 2);
  EXPECT_EQ((*samples)[2].physical_index, 0);
  for (int k = 0; k < 3; ++k) EXPECT_EQ((*samples)[static_cast<size_t>(k)].index, k);
  EXPECT_EQ(DeviceName((*samples)[2]), "cuda:2");
}

TEST(GpuVisibleDevicesTest, VisibleListRenumbersFromZero) {
  // "2" is the third card by PCI order (bus C1 = NVML 0); it becomes the only device, cuda:0.
  auto devices = ApplyCudaVisibleDevices(std::make_unique<FakeCards>(), std::string("2"));
  auto samples = devices->Sample();
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 1u);
  EXPECT_EQ((*samples)[0].index, 0);
  EXPECT_EQ((*samples)[0].physical_index, 0);
  EXPECT_EQ((*samples)[0].pci_bus_id, "00000000:C1:00.0");

  // By UUID, then by index: GPU-1111 is NVML 2 (bus 41); index 0 is the lowest bus, 01.
  devices = ApplyCudaVisibleDevices(std::make_unique<FakeCards>(), std::string("GPU-1111,0"));
  samples = devices->Sample();
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 2u);
  EXPECT_EQ((*samples)[0].uuid, kUuids[2]);
  EXPECT_EQ((*samples)[0].pci_bus_id, "00000000:41:00.0");
  EXPECT_EQ((*samples)[1].index, 1);
  EXPECT_EQ((*samples)[1].pci_bus_id, "00000000:01:00.0");
}

TEST(GpuVisibleDevicesTest, RunnerEnvironmentPinsTheCardByUuid) {
  auto samples = ApplyCudaVisibleDevices(std::make_unique<FakeCards>(), std::nullopt)->Sample();
  ASSERT_TRUE(samples.ok());
  const DeviceSample* card = FindByPciBusId(*samples, "0000:41:00.0");
  ASSERT_NE(card, nullptr);
  EXPECT_EQ(card->index, 1);
  auto env = RunnerCudaEnvironment(*card);
  EXPECT_EQ(env, (std::vector<std::pair<std::string, std::string>>{
                     {"CUDA_DEVICE_ORDER", "PCI_BUS_ID"}, {"CUDA_VISIBLE_DEVICES", kUuids[2]}}));
  // The runner, applying that variable, sees exactly this card as cuda:0.
  auto m = MapCudaVisibleDevices(env[1].second, kUuids);
  EXPECT_EQ(m.visible, (std::vector<int>{2}));
  EXPECT_EQ(FindByPciBusId(*samples, "0000:99:00.0"), nullptr);
  EXPECT_EQ(FindByPciBusId(*samples, "garbage"), nullptr);
}

}  // namespace
}  // namespace steno::gpu
