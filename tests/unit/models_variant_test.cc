// A model's variant keys (models/model_variant.h): the key round-trips, and a model's own name
// is never read as a variant.
#include <gtest/gtest.h>

#include "models/model_variant.h"

namespace steno::models {
namespace {

TEST(ModelVariantTest, KeysRoundTripAndNamesStayThemselves) {
  EXPECT_EQ(VariantKey({"tiny.en", false}), "tiny.en");
  EXPECT_EQ(VariantKey({"tiny.en", true}), "tiny.en#dtw");
  for (const bool dtw : {false, true}) {
    const ModelVariant v = ParseVariantKey(VariantKey({"large-v3-turbo", dtw}));
    EXPECT_EQ(v.model, "large-v3-turbo");
    EXPECT_EQ(v.dtw_words, dtw);
  }
  EXPECT_TRUE(IsVariantKey("base#dtw"));
  EXPECT_EQ(ModelOfKey("base#dtw"), "base");
  // A name alone, or the suffix alone, is a model's own name.
  for (const char* name : {"base", "#dtw", "dtw", "base#dtw2", "base-dtw", ""}) {
    EXPECT_FALSE(IsVariantKey(name)) << name;
    EXPECT_EQ(ModelOfKey(name), name);
    EXPECT_FALSE(ParseVariantKey(name).dtw_words) << name;
  }
}

}  // namespace
}  // namespace steno::models
