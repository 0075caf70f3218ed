// Sizes and simulated-GPU specs as users type them: what is accepted, what it means, and that
// everything else is refused with a message rather than misread.
#include <gtest/gtest.h>

#include "gpu/simulated_devices.h"
#include "gpu/size.h"

namespace steno::gpu {
namespace {

TEST(GpuSizeTest, AcceptsBinaryAndDecimalUnits) {
  struct Case {
    const char* text;
    int64_t bytes;
  } cases[] = {
      {"4096", 4096},
      {"0", 0},
      {"100B", 100},
      {"1KiB", 1024},
      {"512MiB", 512LL << 20},
      {"24GiB", 25769803776LL},
      {"24 GiB", 25769803776LL},
      {" 24gib ", 25769803776LL},
      {"1TiB", 1LL << 40},
      {"1KB", 1000},
      {"250MB", 250000000},
      {"1.5GB", 1500000000},
      {"0.5GiB", 512LL << 20},
      {"1.5KiB", 1536},
      {"80GB", 80000000000LL},
  };
  for (const auto& c : cases) {
    auto r = ParseSize(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.error().message;
    EXPECT_EQ(*r, c.bytes) << c.text;
  }
}

TEST(GpuSizeTest, RejectsWhatIsNotASize) {
  for (const char* text :
       {"", "   ", "GiB", "abc", "-1GiB", "-5", "12XB", "1.5", "1.5B", "1e9", "0x10", "1..5GiB",
        "1.5.2GiB", "24 GiB extra", "9223372036854775808", "99999999999TiB", "10000000000GiB"}) {
    auto r = ParseSize(text);
    ASSERT_FALSE(r.ok()) << "'" << text << "' parsed as " << *r;
    EXPECT_EQ(r.error().kind, ErrorKind::kBadInput);
    EXPECT_EQ(r.error().code, "bad_size");
    EXPECT_NE(r.error().message.find(text), std::string::npos) << r.error().message;
  }
}

TEST(GpuSizeTest, LargestSizeStillFits) {
  auto r = ParseSize("9223372036854775807");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, INT64_MAX);
  EXPECT_TRUE(ParseSize("8388607TiB").ok());
  EXPECT_FALSE(ParseSize("8388608TiB").ok());  // 2^63 bytes
}

TEST(GpuSizeTest, FormatsForPeople) {
  EXPECT_EQ(FormatSize(25769803776LL), "24 GiB");
  EXPECT_EQ(FormatSize(1610612736LL), "1.50 GiB");
  EXPECT_EQ(FormatSize(512LL << 20), "512 MiB");
  EXPECT_EQ(FormatSize(1536), "1.5 KiB");
  EXPECT_EQ(FormatSize(100), "100 B");
  EXPECT_EQ(FormatSize(0), "0 B");
}

TEST(GpuSizeTest, SimulatedSpecListsEveryCard) {
  auto r = ParseSimulatedGpuSpec("2x24GiB,1x12GiB");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (std::vector<int64_t>{24LL << 30, 24LL << 30, 12LL << 30}));

  r = ParseSimulatedGpuSpec("24GiB");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<int64_t>{24LL << 30}));

  r = ParseSimulatedGpuSpec("80GB, 2X16GiB");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (std::vector<int64_t>{80000000000LL, 16LL << 30, 16LL << 30}));

  EXPECT_EQ(FormatSimulatedGpuSpec({24LL << 30, 24LL << 30, 12LL << 30}), "2x24GiB,1x12GiB");
}

TEST(GpuSizeTest, SimulatedSpecRejectsNonsense) {
  for (const char* text : {"", "0x24GiB", "65x1GiB", "2x", "x24GiB", "2x24GiB,", ",24GiB", "2x24XB",
                           "2*24GiB", "-1x24GiB", "2x100KiB", "40x1GiB,40x1GiB", "twox24GiB"}) {
    auto r = ParseSimulatedGpuSpec(text);
    ASSERT_FALSE(r.ok()) << "'" << text << "' was accepted";
    EXPECT_EQ(r.error().kind, ErrorKind::kBadInput);
    EXPECT_EQ(r.error().code, "bad_simulate_spec");
  }
}

}  // namespace
}  // namespace steno::gpu
