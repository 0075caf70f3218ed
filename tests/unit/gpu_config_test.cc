// --device, --reserve, --safety-factor and --sample-interval: accepted forms, their meaning,
// and refusal (kBadInput) of everything else.
#include <gtest/gtest.h>

#include "gpu/device_selection.h"
#include "gpu/gpu_config.h"

namespace steno::gpu {
namespace {

using Mode = DeviceSelection::Mode;

std::vector<DeviceSample> TwoGpus() {
  std::vector<DeviceSample> out(2);
  for (int i = 0; i < 2; ++i) {
    out[static_cast<size_t>(i)].index = i;
    out[static_cast<size_t>(i)].uuid = "GPU-" + std::to_string(i);
  }
  return out;
}

TEST(GpuConfigTest, DeviceSelectionForms) {
  EXPECT_EQ(ParseDeviceSelection("auto")->mode, Mode::kAuto);
  EXPECT_EQ(ParseDeviceSelection("CPU")->mode, Mode::kCpu);
  EXPECT_EQ(ParseDeviceSelection("cuda")->mode, Mode::kAllCuda);
  auto list = ParseDeviceSelection("cuda:1,0");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->mode, Mode::kCudaList);
  EXPECT_EQ(list->cuda, (std::vector<int>{1, 0}));
  EXPECT_EQ(list->ToString(), "cuda:1,0");
  EXPECT_EQ(ParseDeviceSelection("cuda:0,cuda:1")->cuda, (std::vector<int>{0, 1}));
  EXPECT_EQ(ParseDeviceSelection(" cuda:3 ")->cuda, (std::vector<int>{3}));
}

TEST(GpuConfigTest, DeviceSelectionRejectsTypos) {
  for (const char* bad : {"", "tpu", "cuda:", "cuda:x", "cuda:-1", "cuda:0,", "cuda:0,0", "cuda0",
                          "cuda:1.5", "cuda:0;1", "cuda:99999"}) {
    auto r = ParseDeviceSelection(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "' accepted";
    EXPECT_EQ(r.error().kind, ErrorKind::kBadInput);
    EXPECT_EQ(r.error().code, "bad_device");
  }
}

TEST(GpuConfigTest, ApplyingASelection) {
  auto gpus = TwoGpus();
  EXPECT_EQ(ApplyDeviceSelection(ParseDeviceSelection("auto").value(), gpus)->size(), 2u);
  EXPECT_TRUE(ApplyDeviceSelection(ParseDeviceSelection("cpu").value(), gpus)->empty());
  auto one = ApplyDeviceSelection(ParseDeviceSelection("cuda:1").value(), gpus);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].uuid, "GPU-1");

  auto missing = ApplyDeviceSelection(ParseDeviceSelection("cuda:0,2").value(), gpus);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "no_such_device");
  EXPECT_NE(missing.error().message.find("cuda:2"), std::string::npos);
  EXPECT_NE(missing.error().message.find("cuda:0, cuda:1"), std::string::npos);

  // No GPU: auto falls back to the CPU, an explicit GPU request is an error.
  EXPECT_TRUE(ApplyDeviceSelection(ParseDeviceSelection("auto").value(), {})->empty());
  EXPECT_FALSE(ApplyDeviceSelection(ParseDeviceSelection("cuda").value(), {}).ok());
  EXPECT_FALSE(ApplyDeviceSelection(ParseDeviceSelection("cuda:0").value(), {}).ok());

  EXPECT_EQ(FindDevice("cuda:1", gpus)->uuid, "GPU-1");
  EXPECT_FALSE(FindDevice("cuda:2", gpus).ok());
  EXPECT_FALSE(FindDevice("cuda:0,1", gpus).ok());
  EXPECT_FALSE(FindDevice("cpu", gpus).ok());
}

TEST(GpuConfigTest, ReserveDefaultsAndOverrides) {
  auto none = ParseReserve({});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->For(0), 512LL << 20);
  EXPECT_EQ(none->For(7), 512LL << 20);

  auto r = ParseReserve({"1GiB", "cuda:1=2GiB"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->For(0), 1LL << 30);
  EXPECT_EQ(r->For(1), 2LL << 30);

  r = ParseReserve({"cuda:0=2GiB,256MiB"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->For(0), 2LL << 30);
  EXPECT_EQ(r->For(1), 256LL << 20);

  r = ParseReserve({"cuda:0=2GiB", "cuda:0=1GiB", "0"});  // later wins
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->For(0), 1LL << 30);
  EXPECT_EQ(r->For(3), 0);
}

TEST(GpuConfigTest, ReserveRejectsBadValues) {
  for (const char* bad : {"", "lots", "-1GiB", "cuda0=1GiB", "cuda:0=", "=1GiB", "cuda:x=1GiB",
                          "cuda:0,1=1GiB", "1GiB,,2GiB", "cpu=1GiB", "cuda:0=1GiB=2GiB"}) {
    auto r = ParseReserve({bad});
    ASSERT_FALSE(r.ok()) << "'" << bad << "' accepted";
    EXPECT_EQ(r.error().code, "bad_reserve");
    EXPECT_NE(r.error().message.find("--reserve"), std::string::npos);
  }
}

TEST(GpuConfigTest, SafetyFactorIsAShareOfOne) {
  EXPECT_DOUBLE_EQ(ParseSafetyFactor("0.9").value(), 0.9);
  EXPECT_DOUBLE_EQ(ParseSafetyFactor("1").value(), 1.0);
  EXPECT_DOUBLE_EQ(ParseSafetyFactor(".5").value(), 0.5);
  for (const char* bad : {"", "0", "0.0", "1.01", "2", "-0.5", "abc", "1e-1", "nan", "inf", "."}) {
    auto r = ParseSafetyFactor(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "' accepted";
    EXPECT_EQ(r.error().code, "bad_safety_factor");
  }
}

TEST(GpuConfigTest, IntervalUnits) {
  using std::chrono::milliseconds;
  EXPECT_EQ(ParseInterval("1s").value(), milliseconds(1000));
  EXPECT_EQ(ParseInterval("500ms").value(), milliseconds(500));
  EXPECT_EQ(ParseInterval("2.5s").value(), milliseconds(2500));
  EXPECT_EQ(ParseInterval("1m").value(), milliseconds(60000));
  EXPECT_EQ(ParseInterval("1h").value(), milliseconds(3600000));
  EXPECT_EQ(ParseInterval("2").value(), milliseconds(2000));
  EXPECT_EQ(ParseInterval("10ms").value(), milliseconds(10));
  for (const char* bad : {"", "0", "5ms", "2h", "abc", "-1s", "1 sec", "ms", "1e3ms"}) {
    auto r = ParseInterval(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "' accepted";
    EXPECT_EQ(r.error().code, "bad_interval");
  }
}

TEST(GpuConfigTest, AllocatableIsTotalLessReserveTimesFactor) {
  EXPECT_EQ(AllocatableBytes(24LL << 30, 512LL << 20, 0.9),
            static_cast<int64_t>((24.0 * 1024 - 512) * 1024 * 1024 * 0.9));
  EXPECT_EQ(AllocatableBytes(1LL << 30, 2LL << 30, 0.9), 0);
  EXPECT_EQ(AllocatableBytes(1000, 0, 1.0), 1000);
}

}  // namespace
}  // namespace steno::gpu
