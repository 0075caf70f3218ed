// The model catalog: each model's runner kind, footprint source and capabilities; declared
// models need no file; ggml files follow resolve.h's rules.
#include "models/model_catalog.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/test_env.h"

namespace steno::models {
namespace {

void Touch(const std::string& path) {
  std::ofstream(path) << "not really a model";
}

DeclaredModel Declared(const std::string& name) {
  DeclaredModel d;
  d.name = name;
  d.kind = "server";
  d.weights_bytes = 3 << 20;
  d.stream_bytes = 1 << 20;
  d.capabilities = {Capability::kSpeech};
  return d;
}

TEST(ModelsCatalog, ListsDeclaredModelsThenGgmlFilesWithKindsAndCapabilities) {
  test::ScopedTempDir dir;
  Touch(dir.path + "/ggml-tiny.en.bin");
  Touch(dir.path + "/ggml-base.bin");
  Touch(dir.path + "/ggml-mine.en-q5_1.bin");
  Touch(dir.path + "/ggml-voice.bin");  // hidden by the declared model of that name
  const ModelCatalog catalog(dir.path, {Declared("voice")});

  const auto list = catalog.List();
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0].name, "voice");
  EXPECT_EQ(list[0].kind, "server");
  EXPECT_EQ(list[0].footprint, FootprintSource::kDeclared);
  EXPECT_EQ(list[0].weights_bytes, 3 << 20);
  EXPECT_EQ(list[0].capabilities.Names(), std::vector<std::string>{"speech"});
  EXPECT_EQ(list[0].path, "");

  EXPECT_EQ(list[1].name, "base");
  EXPECT_EQ(list[1].kind, kWhisperKind);
  EXPECT_EQ(list[1].footprint, FootprintSource::kEstimated);
  EXPECT_EQ(list[1].capabilities.Names(), (std::vector<std::string>{"transcribe", "translate"}));
  EXPECT_EQ(list[1].path, dir.path + "/ggml-base.bin");
  EXPECT_GT(list[1].file_bytes, 0);
  EXPECT_EQ(list[2].name, "mine.en-q5_1");
  EXPECT_EQ(list[2].capabilities.Names(), std::vector<std::string>{"transcribe"})
      << "an English-only model cannot translate";
  EXPECT_EQ(list[3].name, "tiny.en");
  EXPECT_FALSE(list[3].capabilities.Has(Capability::kTranslate));
  EXPECT_STREQ(FootprintSourceName(list[3].footprint), "estimated");
}

TEST(ModelsCatalog, FindsDeclaredModelsWithoutAFileAndGgmlFilesByName) {
  test::ScopedTempDir dir;
  Touch(dir.path + "/ggml-base.bin");
  const ModelCatalog catalog(dir.path, {Declared("voice")});

  auto voice = catalog.Find("voice", /*allow_paths=*/false);
  ASSERT_TRUE(voice.ok()) << voice.error().message;
  EXPECT_EQ(voice->kind, "server");
  EXPECT_EQ(voice->path, "");
  EXPECT_EQ(voice->stream_bytes, 1 << 20);

  auto base = catalog.Find("base", false);
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->kind, kWhisperKind);
  EXPECT_EQ(base->path, dir.path + "/ggml-base.bin");

  auto missing = catalog.Find("small", false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "model_not_found");
}

TEST(ModelsCatalog, PathsOnlyWhereAllowed) {
  test::ScopedTempDir dir;
  Touch(dir.path + "/ggml-base.bin");
  const ModelCatalog catalog(dir.path);
  const std::string path = dir.path + "/ggml-base.bin";
  for (const std::string& name : {path, std::string(".."), std::string(".hidden")}) {
    auto refused = catalog.Find(name, false);
    ASSERT_FALSE(refused.ok()) << name;
    EXPECT_EQ(refused.error().code, "bad_model_name") << name;
  }
  auto allowed = catalog.Find(path, true);
  ASSERT_TRUE(allowed.ok());
  EXPECT_EQ(allowed->path, path);
  EXPECT_EQ(allowed->name, path) << "named as the job named it";
}

}  // namespace
}  // namespace steno::models
