// Model names to files (models/resolve.h), the catalog, and the checks PullModel makes before
// it touches the network — all on real temp dirs and files.
#include <sys/stat.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "models/catalog.h"
#include "models/download.h"
#include "models/resolve.h"
#include "support/test_env.h"

namespace steno::models {
namespace {

namespace fs = std::filesystem;

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

class ModelsDirTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::MakeTempDir("steno-models-resolve"); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string P(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

TEST_F(ModelsDirTest, ListsOnlyModelFilesSortedWithSizes) {
  WriteFile(P("ggml-tiny.en.bin"), std::string(10, 'a'));
  WriteFile(P("ggml-base.bin"), std::string(7, 'b'));
  WriteFile(P("custom.bin"), "c");
  WriteFile(P("ggml-small.bin.part"), "partial");  // a download in progress is not a model
  WriteFile(P(".hidden.bin"), "h");
  WriteFile(P("README"), "r");
  fs::create_directory(P("adir.bin"));
  fs::create_symlink(P("ggml-base.bin"), P("ggml-linked.bin"));
  fs::create_symlink(P("missing-target"), P("ggml-dangling.bin"));

  auto list = ListInstalledModels(dir_);
  std::vector<std::string> names;
  for (const auto& m : list) names.push_back(m.name);
  EXPECT_EQ(names, (std::vector<std::string>{"base", "custom", "linked", "tiny.en"}));
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0].path, P("ggml-base.bin"));
  EXPECT_EQ(list[0].file_bytes, 7);
  EXPECT_EQ(list[2].file_bytes, 7);  // a link reports its target's size
  EXPECT_EQ(list[3].file_bytes, 10);
}

TEST_F(ModelsDirTest, MissingDirHoldsNoModels) {
  EXPECT_TRUE(ListInstalledModels(P("does-not-exist")).empty());
}

TEST_F(ModelsDirTest, NameResolvesInModelsDir) {
  WriteFile(P("ggml-tiny.en.bin"), "x");
  WriteFile(P("mine.bin"), "x");
  WriteFile(P("plain"), "x");
  auto a = ResolveModel("tiny.en", dir_);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(*a, P("ggml-tiny.en.bin"));
  auto b = ResolveModel("mine", dir_);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*b, P("mine.bin"));
  auto c = ResolveModel("plain", dir_);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(*c, P("plain"));
}

TEST_F(ModelsDirTest, GgmlFileNameWinsOverOtherSpellings) {
  WriteFile(P("ggml-base.bin"), "official");
  WriteFile(P("base.bin"), "other");
  WriteFile(P("base"), "other");
  auto r = ResolveModel("base", dir_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, P("ggml-base.bin"));
}

TEST_F(ModelsDirTest, PathIsUsedAsIs) {
  std::string other = test::MakeTempDir("steno-models-elsewhere");
  WriteFile(other + "/weights.bin", "x");
  WriteFile(other + "/no-extension", "x");
  WriteFile(P("weights.bin"), "decoy");
  auto a = ResolveModel(other + "/weights.bin", dir_);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(*a, other + "/weights.bin");
  auto b = ResolveModel(other + "/no-extension", dir_);  // a slash makes it a path
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*b, other + "/no-extension");
  fs::remove_all(other);
}

TEST_F(ModelsDirTest, BareFileNameFallsBackToModelsDir) {
  WriteFile(P("ggml-base.en.bin"), "x");
  auto r = ResolveModel("ggml-base.en.bin", dir_);  // not in the working dir
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, P("ggml-base.en.bin"));
}

TEST_F(ModelsDirTest, MissingKnownModelSuggestsPull) {
  WriteFile(P("ggml-tiny.en.bin"), "x");
  auto r = ResolveModel("small", dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(r.error().code, "model_not_found");
  const auto& m = r.error().message;
  EXPECT_NE(m.find(dir_), std::string::npos) << m;
  EXPECT_NE(m.find("tiny.en"), std::string::npos) << "lists installed models: " << m;
  EXPECT_NE(m.find("steno models pull small"), std::string::npos) << m;
}

TEST_F(ModelsDirTest, MissingUnknownModelDoesNotSuggestPull) {
  auto r = ResolveModel("my-finetune", dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "model_not_found");
  EXPECT_EQ(r.error().message.find("steno models pull my-finetune"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("No models are installed"), std::string::npos)
      << r.error().message;
}

TEST_F(ModelsDirTest, MissingPathIsNotFound) {
  auto r = ResolveModel(P("nope/ggml-x.bin"), dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(r.error().message.find("nope/ggml-x.bin"), std::string::npos);
  // A missing bare file name of a known model still points at `steno models pull`.
  auto k = ResolveModel("ggml-base.en.bin", dir_);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.error().message.find("steno models pull base.en"), std::string::npos)
      << k.error().message;
}

TEST_F(ModelsDirTest, DirectoryOrEmptyIsBadInput) {
  auto d = ResolveModel(dir_ + "/", dir_);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().kind, ErrorKind::kBadInput);
  auto e = ResolveModel("", dir_);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().kind, ErrorKind::kBadInput);
}

TEST(ModelsCatalogTest, EntriesAreWellFormed) {
  std::set<std::string_view> names;
  for (const auto& e : Catalog()) {
    EXPECT_TRUE(names.insert(e.name).second) << "duplicate " << e.name;
    ASSERT_EQ(e.sha1.size(), 40u) << e.name;
    for (char c : e.sha1) EXPECT_TRUE(std::isxdigit(c) && !std::isupper(c)) << e.name;
    // Whisper models are tens of MiB at least; the Silero VAD model is under one.
    EXPECT_GT(e.approx_bytes, e.purpose == ModelPurpose::kVoiceActivity ? 500 << 10 : 30 << 20)
        << e.name;
    EXPECT_EQ(e.base_url.rfind("https://", 0), 0u) << e.name;
    EXPECT_EQ(e.multilingual, e.name.find(".en") == std::string_view::npos) << e.name;
  }
  for (const char* n :
       {"tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
        "large-v1", "large-v2", "large-v3", "large-v3-turbo", "large-v3-turbo-q5_0"}) {
    EXPECT_NE(FindCatalogEntry(n), nullptr) << n;
  }
  EXPECT_EQ(FindCatalogEntry("tiny.en")->sha1, "c78c86eb1a8faa21b369bcd33207cc90d64ae9df");
  EXPECT_EQ(FindCatalogEntry("large-v3-turbo")->sha1, "4af2b29d7ec73d781377bfd1758ca957a807e941");
  EXPECT_EQ(FindCatalogEntry("huge"), nullptr);
  // The VAD model: pinned, from whisper.cpp's VAD repository, and no speech-to-text model.
  const CatalogEntry* vad = FindCatalogEntry(kVadModelName);
  ASSERT_NE(vad, nullptr);
  EXPECT_EQ(vad->sha1, "470e5d9d094ddba2f0a512cecc3732a252188abd");
  EXPECT_EQ(vad->base_url, "https://huggingface.co/ggml-org/whisper-vad/resolve/main");
  EXPECT_TRUE(IsVoiceActivityModel("silero-v6.2.0"));
  EXPECT_FALSE(IsVoiceActivityModel("tiny.en"));
  EXPECT_FALSE(IsVoiceActivityModel("my-own"));
  EXPECT_EQ(ModelFileName("large-v3-turbo"), "ggml-large-v3-turbo.bin");
  EXPECT_NE(KnownModelNames().find("base.en, small"), std::string::npos);
}

TEST_F(ModelsDirTest, Sha1OfFileMatchesKnownVector) {
  WriteFile(P("abc"), "abc");  // FIPS 180 test vector
  auto h = Sha1OfFile(P("abc"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, "a9993e364706816aba3e25717850c26c9cd0d89d");
  WriteFile(P("empty"), "");
  EXPECT_EQ(Sha1OfFile(P("empty")).value(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(Sha1OfFile(P("missing")).error().code, "read_failed");
}

// Checks that run before any network access: nothing is created for bad input. The base URL
// points at a closed port so that an accidental request would fail rather than reach anything.
TEST_F(ModelsDirTest, PullRejectsBadInputBeforeTouchingDisk) {
  PullOptions o;
  o.models_dir = P("models");
  o.base_url = "http://127.0.0.1:9";

  o.name = "huge";
  auto unknown = PullModel(o);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().kind, ErrorKind::kBadInput);
  EXPECT_EQ(unknown.error().code, "unknown_model");
  EXPECT_NE(unknown.error().message.find("tiny.en"), std::string::npos);

  o.name = "../evil";
  o.expected_sha1 = std::string(40, 'a');
  EXPECT_EQ(PullModel(o).error().code, "bad_model_name");

  o.name = "tiny.en";
  o.expected_sha1 = "xyz";
  EXPECT_EQ(PullModel(o).error().code, "bad_sha1");

  o.expected_sha1.clear();
  o.base_url = "ftp://example.invalid";
  EXPECT_EQ(PullModel(o).error().code, "bad_base_url");

  EXPECT_FALSE(fs::exists(P("models")));
}

TEST_F(ModelsDirTest, PullKeepsVerifiedFileWithoutDownloading) {
  WriteFile(P("ggml-tiny.en.bin"), "abc");
  PullOptions o;
  o.name = "tiny.en";
  o.models_dir = dir_;
  o.base_url = "http://127.0.0.1:9";                             // unreachable: must not be needed
  o.expected_sha1 = "A9993E364706816ABA3E25717850C26C9CD0D89D";  // case does not matter
  auto r = PullModel(o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->downloaded);
  EXPECT_EQ(r->path, P("ggml-tiny.en.bin"));
  EXPECT_EQ(r->file_bytes, 3);

  // A different file under the model's name is left alone and reported.
  o.expected_sha1 = std::string(40, 'b');
  auto m = PullModel(o);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code, "existing_file_mismatch");
  EXPECT_NE(m.error().message.find("--force"), std::string::npos);
  std::ifstream in(P("ggml-tiny.en.bin"));
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "abc");
  EXPECT_FALSE(fs::exists(P("ggml-tiny.en.bin.part")));
}

}  // namespace
}  // namespace steno::models
