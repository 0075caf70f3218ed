// ApiKeys: Bearer keys from flags and a file; missing vs wrong keys; nothing accepted by accident.
#include "api/auth.h"

#include <fstream>

#include <gtest/gtest.h>

#include "support/test_env.h"

namespace steno::api {
namespace {

using V = ApiKeys::Verdict;

TEST(ApiAuthTest, NoKeysLetsEverythingThrough) {
  ApiKeys keys;
  EXPECT_FALSE(keys.enabled());
  EXPECT_EQ(keys.Check(""), V::kOk);
  EXPECT_EQ(keys.Check("Bearer whatever"), V::kOk);
}

TEST(ApiAuthTest, BearerKeysAreChecked) {
  auto keys = ApiKeys::Load({"sk-one", "sk-two"}, "");
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->enabled());
  EXPECT_EQ(keys->Check("Bearer sk-one"), V::kOk);
  EXPECT_EQ(keys->Check("bearer sk-two"), V::kOk) << "the scheme is case-insensitive";
  EXPECT_EQ(keys->Check("  Bearer   sk-two  "), V::kOk);
  EXPECT_EQ(keys->Check(""), V::kMissing);
  EXPECT_EQ(keys->Check("Bearer sk-three"), V::kInvalid);
  EXPECT_EQ(keys->Check("Bearer sk-on"), V::kInvalid) << "a prefix is not the key";
  EXPECT_EQ(keys->Check("Bearer sk-one1"), V::kInvalid);
  EXPECT_EQ(keys->Check("Bearer "), V::kInvalid);
  EXPECT_EQ(keys->Check("Basic c2stb25lOg=="), V::kInvalid);
  EXPECT_EQ(keys->Check("sk-one"), V::kInvalid) << "the scheme is required";
}

TEST(ApiAuthTest, KeyFileOneKeyPerLineWithComments) {
  test::ScopedTempDir dir("steno-keys");
  const std::string path = dir.path + "/keys";
  std::ofstream(path) << "# team keys\n\nsk-file-a\n  sk-file-b  \n";
  auto keys = ApiKeys::Load({"sk-flag"}, path);
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  EXPECT_EQ(keys->size(), 3u);
  EXPECT_EQ(keys->Check("Bearer sk-file-b"), V::kOk);
  EXPECT_EQ(keys->Check("Bearer sk-flag"), V::kOk);
  EXPECT_EQ(keys->Check("Bearer # team keys"), V::kInvalid);
}

TEST(ApiAuthTest, BadKeysAndFilesAreRefusedAtStart) {
  test::ScopedTempDir dir("steno-keys");
  EXPECT_FALSE(ApiKeys::Load({""}, "").ok());
  EXPECT_FALSE(ApiKeys::Load({"has space"}, "").ok());
  auto missing = ApiKeys::Load({}, dir.path + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  std::ofstream(dir.path + "/empty") << "# nothing\n\n";
  auto empty = ApiKeys::Load({}, dir.path + "/empty");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, "no_api_keys");
  // A refused key is never echoed back.
  auto bad = ApiKeys::Load({"secret with\ttab"}, "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.find("secret"), std::string::npos);
}

}  // namespace
}  // namespace steno::api
