#include "engine/footprint.h"

#include <gtest/gtest.h>

namespace steno::engine {
namespace {

// Lines exactly as whisper.cpp 1.9.1 logs them.
TEST(FootprintTest, ParsesEverySizeLine) {
  Footprint fp;
  EXPECT_TRUE(ParseFootprintLine("whisper_model_load: model size    =   77.11 MB", &fp));
  EXPECT_TRUE(ParseFootprintLine("whisper_init_state: kv self size  =    3.15 MB", &fp));
  EXPECT_TRUE(ParseFootprintLine("whisper_init_state: kv cross size =    9.44 MB", &fp));
  EXPECT_TRUE(ParseFootprintLine("whisper_init_state: kv pad  size  =    2.36 MB", &fp));
  EXPECT_TRUE(ParseFootprintLine("whisper_init_state: compute buffer (conv)   =   13.19 MB", &fp));
  EXPECT_TRUE(ParseFootprintLine("whisper_init_state: compute buffer (encode) =   17.24 MB", &fp));
  EXPECT_TRUE(ParseFootprintLine("whisper_init_state: compute buffer (cross)  =    3.88 MB", &fp));
  EXPECT_TRUE(ParseFootprintLine("whisper_init_state: compute buffer (decode) =   95.91 MB", &fp));
  EXPECT_EQ(fp.weights_bytes, 77'110'000);
  EXPECT_EQ(fp.kv_self_bytes, 3'150'000);
  EXPECT_EQ(fp.kv_cross_bytes, 9'440'000);
  EXPECT_EQ(fp.kv_pad_bytes, 2'360'000);
  EXPECT_EQ(fp.compute_conv_bytes, 13'190'000);
  EXPECT_EQ(fp.compute_encode_bytes, 17'240'000);
  EXPECT_EQ(fp.compute_cross_bytes, 3'880'000);
  EXPECT_EQ(fp.compute_decode_bytes, 95'910'000);
  EXPECT_EQ(fp.StreamBytes(),
            3'150'000 + 9'440'000 + 2'360'000 + 13'190'000 + 17'240'000 + 3'880'000 + 95'910'000);
}

TEST(FootprintTest, IgnoresOtherLinesAndMalformedNumbers) {
  Footprint fp;
  EXPECT_FALSE(ParseFootprintLine("whisper_model_load: n_vocab       = 51864", &fp));
  EXPECT_FALSE(ParseFootprintLine("whisper_init_state: kv self size  = lots MB", &fp));
  EXPECT_FALSE(ParseFootprintLine("whisper_init_state: kv self size  = 3.15 GB", &fp));
  EXPECT_FALSE(ParseFootprintLine("whisper_init_state: kv self size  = -1.00 MB", &fp));
  EXPECT_EQ(fp.kv_self_bytes, 0);
  EXPECT_EQ(fp.weights_bytes, 0);
}

}  // namespace
}  // namespace steno::engine
