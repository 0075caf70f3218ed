// The random-model writer: determinism, exact layout, validation, atomic replacement, and — the
// point of it all — whisper.cpp loading and running what it writes.
#include "engine/model_writer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <whisper.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "support/process.h"
#include "support/test_env.h"

namespace steno::engine {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

ModelHparams TinyTest() {
  return ModelPreset("tiny-test").value();
}

class ModelWriterTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::MakeTempDir("model_writer_test"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

// ---- Determinism and layout ---------------------------------------------------------------------

TEST_F(ModelWriterTest, SameSeedWritesIdenticalBytesAndOtherSeedsDiffer) {
  ASSERT_TRUE(WriteRandomModel(Path("a.bin"), TinyTest(), 7).ok());
  ASSERT_TRUE(WriteRandomModel(Path("b.bin"), TinyTest(), 7).ok());
  ASSERT_TRUE(WriteRandomModel(Path("c.bin"), TinyTest(), 8).ok());
  const std::string a = ReadAll(Path("a.bin")), b = ReadAll(Path("b.bin")),
                    c = ReadAll(Path("c.bin"));
  ASSERT_GT(a.size(), 1000000u);
  EXPECT_TRUE(a == b) << "same seed must give the same bytes";
  ASSERT_EQ(a.size(), c.size()) << "the seed changes weights, never the layout";
  EXPECT_FALSE(a == c) << "a different seed must give different weights";

  // Everything before the first tensor (header, mel filters, vocab) is seed-independent, and a
  // different seed changes most weight bytes, not a few.
  const size_t first_tensor = a.find("encoder.positional_embedding");
  ASSERT_NE(first_tensor, std::string::npos);
  EXPECT_EQ(a.compare(0, first_tensor, c, 0, first_tensor), 0);
  size_t differing = 0;
  for (size_t i = first_tensor; i < a.size(); ++i) differing += a[i] != c[i];
  EXPECT_GT(differing, (a.size() - first_tensor) / 2);
}

TEST_F(ModelWriterTest, FileSizeIsExactlyPredicted) {
  ModelHparams h = TinyTest();
  h.n_mels = 128;
  h.n_vocab = 51866;
  auto written = WriteRandomModel(Path("m.bin"), h, 1);
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(*written, RandomModelFileBytes(h));
  EXPECT_EQ(static_cast<int64_t>(fs::file_size(Path("m.bin"))), *written);
}

TEST_F(ModelWriterTest, HeaderStartsWithMagicAndHparamsInFileOrder) {
  ASSERT_TRUE(WriteRandomModel(Path("m.bin"), TinyTest(), 1).ok());
  const std::string bytes = ReadAll(Path("m.bin"));
  int32_t words[12];
  ASSERT_GE(bytes.size(), sizeof words);
  std::memcpy(words, bytes.data(), sizeof words);
  EXPECT_EQ(static_cast<uint32_t>(words[0]), 0x67676d6cu);
  const ModelHparams h = TinyTest();
  const int32_t expected[11] = {h.n_vocab,
                                h.n_audio_ctx,
                                h.n_audio_state,
                                h.n_audio_head,
                                h.n_audio_layer,
                                h.n_text_ctx,
                                h.n_text_state,
                                h.n_text_head,
                                h.n_text_layer,
                                h.n_mels,
                                1};
  for (int i = 0; i < 11; ++i) EXPECT_EQ(words[i + 1], expected[i]) << "hparam " << i;
}

TEST(ModelWriterSpecs, TensorTableMatchesWhisperCppsModel) {
  ModelHparams h = ModelPreset("base").value();
  const auto specs = WhisperTensorSpecs(h);
  EXPECT_EQ(specs.size(), 11u + 15u * 6 + 24u * 6);
  std::set<std::string> names;
  for (const auto& t : specs) names.insert(t.name);
  EXPECT_EQ(names.size(), specs.size()) << "tensor names must be unique";

  auto find = [&](const std::string& name) -> const TensorSpec& {
    for (const auto& t : specs) {
      if (t.name == name) return t;
    }
    ADD_FAILURE() << "missing " << name;
    static const TensorSpec none;
    return none;
  };
  // Shapes and types whisper_model_load checks (ne[0] first).
  const auto& conv1 = find("encoder.conv1.weight");
  EXPECT_EQ(conv1.n_dims, 3);
  EXPECT_EQ(conv1.ne[0], 3);
  EXPECT_EQ(conv1.ne[1], 80);
  EXPECT_EQ(conv1.ne[2], 512);
  EXPECT_TRUE(conv1.f16);
  const auto& conv_bias = find("encoder.conv2.bias");
  EXPECT_EQ(conv_bias.n_dims, 2);
  EXPECT_EQ(conv_bias.ne[0], 1);
  EXPECT_EQ(conv_bias.ne[1], 512);
  EXPECT_FALSE(conv_bias.f16);
  const auto& te = find("decoder.token_embedding.weight");
  EXPECT_EQ(te.ne[0], 512);
  EXPECT_EQ(te.ne[1], 51865);
  EXPECT_TRUE(te.f16);
  EXPECT_FALSE(find("encoder.positional_embedding").f16);
  EXPECT_FALSE(find("decoder.positional_embedding").f16);
  EXPECT_EQ(find("decoder.positional_embedding").ne[1], 448);
  const auto& mlp0 = find("encoder.blocks.5.mlp.0.weight");
  EXPECT_EQ(mlp0.ne[0], 512);
  EXPECT_EQ(mlp0.ne[1], 2048);
  EXPECT_FALSE(find("decoder.blocks.5.cross_attn.value.bias").f16);
  EXPECT_TRUE(find("decoder.blocks.5.cross_attn.key.weight").f16);
  for (const auto& t : specs) {
    if (t.n_dims == 1) {
      EXPECT_FALSE(t.f16) << t.name << ": 1-d tensors are f32";
    }
  }
}

// ---- Presets and validation ---------------------------------------------------------------------

TEST(ModelWriterPresets, DimensionsOfTheOfficialModels) {
  const auto large = ModelPreset("large-v3").value();
  EXPECT_EQ(large.n_vocab, 51866);
  EXPECT_EQ(large.n_mels, 128);
  EXPECT_EQ(large.n_audio_state, 1280);
  EXPECT_EQ(large.n_audio_head, 20);
  EXPECT_EQ(large.n_text_layer, 32);
  const auto turbo = ModelPreset("large-v3-turbo").value();
  EXPECT_EQ(turbo.n_audio_layer, 32);
  EXPECT_EQ(turbo.n_text_layer, 4);
  EXPECT_EQ(ModelPreset("tiny.en").value().n_vocab, 51864);
  EXPECT_EQ(ModelPreset("tiny").value().n_vocab, 51865);
  EXPECT_EQ(ModelPreset("small").value().n_audio_layer, 12);
  EXPECT_EQ(ModelPreset("medium").value().n_text_state, 1024);
  for (const auto& name : ModelPresetNames()) {
    auto h = ModelPreset(name);
    ASSERT_TRUE(h.ok()) << name;
    EXPECT_EQ(h->ftype, 1) << name;
    EXPECT_EQ(h->n_audio_ctx, 1500) << name;
    EXPECT_TRUE(CheckWritableHparams(*h).ok()) << name;
  }
  auto bad = ModelPreset("huge");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "unknown_preset");
  EXPECT_NE(bad.error().message.find("tiny-test"), std::string::npos) << "lists the valid names";
}

TEST(ModelWriterPresets, LargeV3IsTheSizeOfTheOfficialFile) {
  // ggml-large-v3.bin is 3,095,033,483 bytes; only the vocabulary's text differs from ours.
  const int64_t bytes = RandomModelFileBytes(ModelPreset("large-v3").value());
  EXPECT_NEAR(static_cast<double>(bytes), 3095033483.0, 1e6);
}

TEST(ModelWriterValidation, RejectsDimensionsWhisperCannotRun) {
  struct Case {
    const char* field;
    void (*mutate)(ModelHparams&);
  };
  const Case cases[] = {
      {"n_vocab", [](ModelHparams& h) { h.n_vocab = 50000; }},
      {"n_vocab", [](ModelHparams& h) { h.n_vocab = 51867; }},
      {"n_audio_ctx", [](ModelHparams& h) { h.n_audio_ctx = 750; }},
      {"n_text_ctx", [](ModelHparams& h) { h.n_text_ctx = 4; }},
      {"n_text_state", [](ModelHparams& h) { h.n_text_state = 128; }},
      {"n_audio_head", [](ModelHparams& h) { h.n_audio_head = 3; }},
      {"n_text_head", [](ModelHparams& h) { h.n_text_head = 5; }},
      {"n_mels", [](ModelHparams& h) { h.n_mels = 0; }},
      {"n_audio_layer", [](ModelHparams& h) { h.n_audio_layer = -1; }},
      {"ftype", [](ModelHparams& h) { h.ftype = 0; }},
  };
  for (const auto& c : cases) {
    ModelHparams h = TinyTest();
    c.mutate(h);
    auto status = CheckWritableHparams(h);
    ASSERT_FALSE(status.ok()) << c.field;
    EXPECT_EQ(status.error().kind, ErrorKind::kBadInput) << c.field;
    EXPECT_EQ(status.error().code, "bad_model_dims") << c.field;
    EXPECT_NE(status.error().message.find(c.field), std::string::npos) << status.error().message;
  }
}

TEST_F(ModelWriterTest, BadDimensionsWriteNothing) {
  ModelHparams h = TinyTest();
  h.n_text_state = 32;
  auto written = WriteRandomModel(Path("m.bin"), h, 1);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, "bad_model_dims");
  EXPECT_TRUE(fs::is_empty(dir_));
}

// ---- Atomic replacement -------------------------------------------------------------------------

TEST_F(ModelWriterTest, ReplacesAnExistingFileAndLeavesNoTemporaries) {
  { std::ofstream(Path("m.bin")) << "old contents"; }
  auto written = WriteRandomModel(Path("m.bin"), TinyTest(), 1);
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(static_cast<int64_t>(fs::file_size(Path("m.bin"))), *written);
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(dir_))
    entries.push_back(e.path().filename().string());
  EXPECT_EQ(entries, std::vector<std::string>{"m.bin"});
}

TEST_F(ModelWriterTest, UnwritableDirectoryIsAnIoError) {
  auto written = WriteRandomModel(Path("missing/dir/m.bin"), TinyTest(), 1);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().kind, ErrorKind::kIo);
  EXPECT_EQ(written.error().code, "write_failed");
  EXPECT_NE(written.error().message.find("missing/dir/m.bin"), std::string::npos);
}

// ---- The make_test_model tool
// --------------------------------------------------------------------

TEST_F(ModelWriterTest, ToolWritesTheSharedTestModelAsTheFixtureAsksForIt) {
  // The exact invocation of tests/support/make_test_data.sh.
  const auto run = test::RunProcess({test::MakeTestModelBin(), "--preset", "tiny-test", "--seed",
                                     "1", "--out", Path("tiny-random.bin")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find(Path("tiny-random.bin")), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("state 64"), std::string::npos) << run.out;
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), 1) << "one line: " << run.out;
  ASSERT_TRUE(WriteRandomModel(Path("library.bin"), TinyTest(), 1).ok());
  EXPECT_TRUE(ReadAll(Path("tiny-random.bin")) == ReadAll(Path("library.bin")))
      << "the tool and the library write the same bytes";
}

TEST_F(ModelWriterTest, ToolOverridesPresetDimensions) {
  const auto run =
      test::RunProcess({test::MakeTestModelBin(), "--preset", "tiny-test", "--n-mels", "128",
                        "--n-vocab", "51866", "--n-text-ctx", "256", "--out", Path("m.bin")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ModelHparams h = TinyTest();
  h.n_mels = 128;
  h.n_vocab = 51866;
  h.n_text_ctx = 256;
  EXPECT_EQ(static_cast<int64_t>(fs::file_size(Path("m.bin"))), RandomModelFileBytes(h));
}

TEST_F(ModelWriterTest, ToolRejectsBadUsageWithExitCode2AndWritesNothing) {
  const std::vector<std::vector<std::string>> bad = {
      {"--preset", "huge"}, {"--n-vocab", "123"}, {"--n-audio-head", "3"},   {"--n-mels", "many"},
      {"--seed", "-1"},     {"--no-such-flag"},   {"--n-audio-ctx", "1000"},
  };
  for (const auto& args : bad) {
    std::vector<std::string> argv = {test::MakeTestModelBin(), "--out", Path("m.bin")};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto run = test::RunProcess(argv);
    EXPECT_EQ(run.exit_code, 2) << args[0];
    EXPECT_FALSE(run.err.empty()) << args[0] << ": says why";
  }
  const auto no_out = test::RunProcess({test::MakeTestModelBin(), "--preset", "tiny"});
  EXPECT_EQ(no_out.exit_code, 2);
  EXPECT_TRUE(fs::is_empty(dir_));
  EXPECT_EQ(test::RunProcess({test::MakeTestModelBin(), "--help"}).exit_code, 0);
}

TEST_F(ModelWriterTest, ToolKilledMidWriteLeavesThePreviousFileIntact) {
  { std::ofstream(Path("m.bin")) << "previous model"; }
  test::ProcessOptions options;
  options.timeout_s = 1;  // medium takes several seconds to write: killed (SIGKILL) part way
  const auto run = test::RunProcess(
      {test::MakeTestModelBin(), "--preset", "medium", "--out", Path("m.bin")}, options);
  ASSERT_NE(run.exit_code, 0) << "finished within a second: the test proves nothing";
  EXPECT_EQ(ReadAll(Path("m.bin")), "previous model");
}

// ---- whisper.cpp runs what we write -------------------------------------------------------------

struct WhisperRun {
  int rc = -1;
  bool multilingual = false;
  int n_segments = 0;
  int n_tokens = 0;  // text tokens (below end-of-text) over all segments
  std::vector<std::string> texts;
  std::vector<std::pair<int64_t, int64_t>> times;  // centiseconds
};

// Loads `path` the way steno's engine does (context without state, then a state) and transcribes
// `seconds` of a 440 Hz tone greedily, deterministically, on 2 CPU threads.
WhisperRun Transcribe(const std::string& path, double seconds) {
  whisper_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  WhisperRun run;
  whisper_context_params cparams = whisper_context_default_params();
  cparams.use_gpu = false;
  whisper_context* ctx = whisper_init_from_file_with_params_no_state(path.c_str(), cparams);
  if (!ctx) return run;
  whisper_state* state = whisper_init_state(ctx);
  if (!state) {
    whisper_free(ctx);
    return run;
  }
  std::vector<float> pcm(static_cast<size_t>(seconds * 16000));
  for (size_t i = 0; i < pcm.size(); ++i)
    pcm[i] = 0.3f * std::sin(2.0 * M_PI * 440.0 * i / 16000.0);

  whisper_full_params params = whisper_full_default_params(WHISPER_SAMPLING_GREEDY);
  params.n_threads = 2;
  params.temperature_inc = 0.0f;
  params.print_progress = false;
  params.print_realtime = false;
  params.print_timestamps = false;
  params.language = "en";
  run.rc = whisper_full_with_state(ctx, state, params, pcm.data(), static_cast<int>(pcm.size()));
  run.multilingual = whisper_is_multilingual(ctx) != 0;
  run.n_segments = whisper_full_n_segments_from_state(state);
  for (int s = 0; s < run.n_segments; ++s) {
    run.texts.emplace_back(whisper_full_get_segment_text_from_state(state, s));
    run.times.emplace_back(whisper_full_get_segment_t0_from_state(state, s),
                           whisper_full_get_segment_t1_from_state(state, s));
    for (int t = 0; t < whisper_full_n_tokens_from_state(state, s); ++t) {
      run.n_tokens += whisper_full_get_token_id_from_state(state, s, t) < whisper_token_eot(ctx);
    }
  }
  whisper_free_state(state);
  whisper_free(ctx);
  return run;
}

bool PrintableAscii(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

TEST_F(ModelWriterTest, WhisperCppTranscribesTheTinyTestModel) {
  ASSERT_TRUE(WriteRandomModel(Path("tiny-test.bin"), TinyTest(), 1).ok());
  const WhisperRun run = Transcribe(Path("tiny-test.bin"), 30.0);
  ASSERT_EQ(run.rc, 0);
  EXPECT_FALSE(run.multilingual);
  // The decoder is shaped to behave like a real model: a few short segments per window, not a
  // window-long run of 220 tokens (which is what naive random weights decode, slowly).
  ASSERT_GE(run.n_segments, 1);
  EXPECT_GE(run.n_tokens, 1);
  EXPECT_LT(run.n_tokens, 150);
  for (size_t s = 0; s < run.texts.size(); ++s) {
    EXPECT_TRUE(PrintableAscii(run.texts[s])) << run.texts[s];
    EXPECT_GE(run.times[s].first, 0) << "segment " << s;
    EXPECT_LE(run.times[s].first, run.times[s].second) << "segment " << s;
  }
}

TEST_F(ModelWriterTest, WhisperCppRunsTheTinyPresetAndA128MelLargeVocabModel) {
  ModelHparams tiny = ModelPreset("tiny").value();
  ASSERT_TRUE(WriteRandomModel(Path("tiny.bin"), tiny, 2).ok());
  const WhisperRun tiny_run = Transcribe(Path("tiny.bin"), 2.0);
  EXPECT_EQ(tiny_run.rc, 0);
  EXPECT_TRUE(tiny_run.multilingual);

  ModelHparams v3 = tiny;  // tiny dimensions with large-v3's mel bins and vocabulary
  v3.n_mels = 128;
  v3.n_vocab = 51866;
  ASSERT_TRUE(WriteRandomModel(Path("v3.bin"), v3, 3).ok());
  const WhisperRun v3_run = Transcribe(Path("v3.bin"), 2.0);
  EXPECT_EQ(v3_run.rc, 0);
  EXPECT_TRUE(v3_run.multilingual);
  for (const auto& text : v3_run.texts) EXPECT_TRUE(PrintableAscii(text)) << text;
}

TEST_F(ModelWriterTest, WhisperCppRefusesOurFileCutInHalf) {
  // The loads above prove the layout only if whisper.cpp checks it: it refuses a file that lacks
  // tensors, which is what a writer bug dropping or misnaming one would produce.
  ASSERT_TRUE(WriteRandomModel(Path("m.bin"), TinyTest(), 1).ok());
  fs::resize_file(Path("m.bin"), fs::file_size(Path("m.bin")) / 2);
  whisper_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  whisper_context_params cparams = whisper_context_default_params();
  cparams.use_gpu = false;
#if defined(__SANITIZE_ADDRESS__)
  __lsan_disable();  // whisper.cpp 1.9.1 leaks the weight buffers of a load that fails
#endif
  whisper_context* ctx =
      whisper_init_from_file_with_params_no_state(Path("m.bin").c_str(), cparams);
#if defined(__SANITIZE_ADDRESS__)
  __lsan_enable();
#endif
  EXPECT_EQ(ctx, nullptr);
  if (ctx) whisper_free(ctx);
}

}  // namespace
}  // namespace steno::engine
