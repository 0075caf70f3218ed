// ReadModelFile: the hparams, type and weight bytes of a ggml Whisper file, and a distinct error
// for each way a file can be wrong.
#include "engine/model_file.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "engine/model_writer.h"
#include "support/test_env.h"

namespace steno::engine {
namespace {

namespace fs = std::filesystem;

// Weight bytes of a Whisper model worked out by hand from the architecture (not from the
// writer's tensor list): f16 matrices, f32 vectors, biases and position embeddings.
int64_t ExpectedTensorBytes(const ModelHparams& h) {
  const int64_t n = h.n_audio_state, f16 = 2, f32 = 4;
  const int64_t attn = 4 * n * n * f16 + 3 * n * f32;  // q, k, v, out weights; q, v, out biases
  const int64_t ln = 2 * n * f32;
  const int64_t mlp = 8 * n * n * f16 + (4 * n + n) * f32;  // n -> 4n -> n
  const int64_t encoder = n * h.n_audio_ctx * f32 + 3 * h.n_mels * n * f16 + n * f32 +
                          3 * n * n * f16 + n * f32 + h.n_audio_layer * (attn + ln + mlp + ln) + ln;
  const int64_t decoder = n * h.n_text_ctx * f32 + n * h.n_vocab * f16 +
                          h.n_text_layer * (attn + ln + attn + ln + mlp + ln) + ln;
  return encoder + decoder;
}

class ModelFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::MakeTempDir("model_file_test"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Writes a model and returns its path.
  std::string Write(const std::string& name, const ModelHparams& h, uint64_t seed = 1) {
    auto written = WriteRandomModel(Path(name), h, seed);
    EXPECT_TRUE(written.ok()) << written.error().message;
    return Path(name);
  }
  // Copies `from` to `to` keeping only the first `bytes` bytes.
  std::string Cut(const std::string& from, const std::string& to, int64_t bytes) {
    fs::copy_file(from, Path(to));
    fs::resize_file(Path(to), static_cast<uintmax_t>(bytes));
    return Path(to);
  }
  // Overwrites the int32 at byte `offset`.
  static void Patch(const std::string& path, int64_t offset, int32_t value) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(offset);
    f.write(reinterpret_cast<const char*>(&value), sizeof value);
  }

  std::string dir_;
};

TEST_F(ModelFileTest, ReportsWhatTheWriterWrote) {
  ModelHparams h = ModelPreset("tiny-test").value();
  h.n_text_ctx = 256;
  h.n_audio_layer = 3;
  const std::string path = Write("custom.bin", h);

  auto info = ReadModelFile(path);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->path, path);
  const ModelHparams& r = info->hparams;
  EXPECT_EQ(r.n_vocab, h.n_vocab);
  EXPECT_EQ(r.n_audio_ctx, h.n_audio_ctx);
  EXPECT_EQ(r.n_audio_state, h.n_audio_state);
  EXPECT_EQ(r.n_audio_head, h.n_audio_head);
  EXPECT_EQ(r.n_audio_layer, 3);
  EXPECT_EQ(r.n_text_ctx, 256);
  EXPECT_EQ(r.n_text_state, h.n_text_state);
  EXPECT_EQ(r.n_text_head, h.n_text_head);
  EXPECT_EQ(r.n_text_layer, h.n_text_layer);
  EXPECT_EQ(r.n_mels, h.n_mels);
  EXPECT_EQ(r.ftype, 1);
  EXPECT_EQ(info->ftype_name, "f16");
  EXPECT_EQ(info->type, "custom");
  EXPECT_FALSE(info->multilingual);
  EXPECT_EQ(info->n_tensors, 11 + 15 * 3 + 24 * h.n_text_layer);
  EXPECT_EQ(info->tensor_bytes, ExpectedTensorBytes(h));
  EXPECT_EQ(info->file_bytes, static_cast<int64_t>(fs::file_size(path)));
  // What is not weights is the header, mel filters, vocabulary and tensor headers: well under
  // 1 MB here, and never negative.
  EXPECT_GT(info->file_bytes - info->tensor_bytes, 80 * 201 * 4);
  EXPECT_LT(info->file_bytes - info->tensor_bytes, 1000000);
}

TEST_F(ModelFileTest, TypeAndLanguageOfOfficialShapes) {
  ModelHparams tiny = ModelPreset("tiny").value();
  auto info = ReadModelFile(Write("tiny.bin", tiny));
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->type, "tiny");
  EXPECT_TRUE(info->multilingual);
  EXPECT_EQ(info->tensor_bytes, ExpectedTensorBytes(tiny));

  ModelHparams base_like = ModelPreset("tiny-test").value();  // small, with base's 6 audio layers
  base_like.n_audio_layer = 6;
  base_like.n_vocab = 51866;
  base_like.n_mels = 128;
  info = ReadModelFile(Write("base-like.bin", base_like));
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->type, "base");
  EXPECT_TRUE(info->multilingual);
  EXPECT_EQ(info->hparams.n_mels, 128);
  EXPECT_EQ(info->tensor_bytes, ExpectedTensorBytes(base_like));
}

TEST_F(ModelFileTest, ReadsTheSharedTestModel) {
  auto info = ReadModelFile(test::TinyModel());
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->hparams.n_audio_state, 64);
  EXPECT_EQ(info->hparams.n_audio_ctx, 1500);
  EXPECT_EQ(info->hparams.n_vocab, 51864);
  EXPECT_EQ(info->tensor_bytes, ExpectedTensorBytes(info->hparams));
}

TEST_F(ModelFileTest, QuantizationVersionIsStrippedFromTheFtype) {
  const std::string path = Write("m.bin", ModelPreset("tiny-test").value());
  Patch(path, 4 + 10 * 4, 2008);  // q5_0 written with GGML_QNT_VERSION 2, as whisper-quantize does
  auto info = ReadModelFile(path);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->hparams.ftype, 2008);
  EXPECT_EQ(info->ftype_name, "q5_0");
}

TEST_F(ModelFileTest, MissingFileIsNotFound) {
  auto info = ReadModelFile(Path("nope.bin"));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(info.error().code, "model_not_found");
  EXPECT_NE(info.error().message.find("nope.bin"), std::string::npos);
}

TEST_F(ModelFileTest, FilesThatAreNotModelsAreBadInput) {
  { std::ofstream(Path("text.bin")) << "this is a text file, not a model at all\n"; }
  { std::ofstream(Path("empty.bin")); }
  { std::ofstream(Path("gguf.bin")) << "GGUF\x03\0\0\0 and more bytes to pass the header"; }
  fs::create_directory(Path("dir.bin"));
  for (const char* name : {"text.bin", "empty.bin", "gguf.bin", "dir.bin"}) {
    auto info = ReadModelFile(Path(name));
    ASSERT_FALSE(info.ok()) << name;
    EXPECT_EQ(info.error().kind, ErrorKind::kBadInput) << name;
    EXPECT_EQ(info.error().code, "not_a_model") << name;
  }
  EXPECT_NE(ReadModelFile(Path("gguf.bin")).error().message.find("GGUF"), std::string::npos);
}

TEST_F(ModelFileTest, ImpossibleHeadersAreBadInput) {
  const std::string good = Write("m.bin", ModelPreset("tiny-test").value());
  struct Case {
    const char* name;
    int64_t offset;
    int32_t value;
  };
  const Case cases[] = {
      {"negative n_vocab", 4, -1},
      {"zero n_audio_state", 4 + 2 * 4, 0},
      {"unknown ftype", 4 + 10 * 4, 99},
      {"ftype whisper.cpp cannot load", 4 + 10 * 4, 4},
      {"huge mel filter bank", 4 + 11 * 4, 1 << 30},
  };
  for (const auto& c : cases) {
    const std::string path =
        Path(std::string("bad-") + std::to_string(c.offset) + "-" + std::to_string(c.value));
    fs::copy_file(good, path);
    Patch(path, c.offset, c.value);
    auto info = ReadModelFile(path);
    ASSERT_FALSE(info.ok()) << c.name;
    EXPECT_EQ(info.error().code, "not_a_model") << c.name;
  }
}

TEST_F(ModelFileTest, CutFilesAreTruncated) {
  const std::string full = Write("m.bin", ModelPreset("tiny-test").value());
  const int64_t size = static_cast<int64_t>(fs::file_size(full));
  // The last tensor is decoder.ln.bias: 64 f32 after a header of 3 + 1 int32 and its name.
  const int64_t last_tensor = 16 + static_cast<int64_t>(std::strlen("decoder.ln.bias")) + 64 * 4;
  const struct {
    const char* where;
    int64_t bytes;
  } cuts[] = {
      {"in half", size / 2},
      {"in the hparams", 20},
      {"in the mel filters", 4 + 11 * 4 + 8 + 100},
      {"in the vocabulary", 4 + 11 * 4 + 8 + 80 * 201 * 4 + 1000},
      {"in the last tensor's data", size - 1},
      {"in a tensor header", size - last_tensor + 6},
      {"exactly between two tensors", size - last_tensor},
  };
  for (const auto& cut : cuts) {
    const std::string path = Cut(full, "cut-" + std::to_string(cut.bytes), cut.bytes);
    auto info = ReadModelFile(path);
    ASSERT_FALSE(info.ok()) << cut.where;
    EXPECT_EQ(info.error().kind, ErrorKind::kIntegrity)
        << cut.where << ": " << info.error().message;
    EXPECT_EQ(info.error().code, "model_truncated") << cut.where << ": " << info.error().message;
  }
  EXPECT_TRUE(ReadModelFile(full).ok()) << "the uncut original still reads";
}

TEST_F(ModelFileTest, CorruptBytesGiveAnErrorOrAResultNeverACrash) {
  // Overwrites one int32 at a time with hostile values (negative, huge, zero) at positions in
  // every section; each read must come back with a typed error or a result.
  const std::string good = Write("m.bin", ModelPreset("tiny-test").value());
  const int64_t size = static_cast<int64_t>(fs::file_size(good));
  const int64_t vocab = 4 + 11 * 4 + 8 + 80 * 201 * 4;
  const int64_t offsets[] = {0,          8,          44,         48,         52,
                             vocab,      vocab + 4,  vocab + 8,  size - 300, size - 296,
                             size - 292, size - 288, size - 284, size / 2};
  const int32_t values[] = {-1, 0, 1, 0x7fffffff, static_cast<int32_t>(0x80000000), 4096};
  int n = 0;
  for (int64_t offset : offsets) {
    for (int32_t value : values) {
      const std::string path = Path("corrupt-" + std::to_string(n++));
      fs::copy_file(good, path);
      Patch(path, offset, value);
      auto info = ReadModelFile(path);
      if (!info.ok()) {
        EXPECT_TRUE(info.error().code == "not_a_model" || info.error().code == "model_truncated")
            << "offset " << offset << " value " << value << ": " << info.error().code;
      }
      fs::remove(path);
    }
  }
}

}  // namespace
}  // namespace steno::engine
