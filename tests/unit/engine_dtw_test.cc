// Word timestamps by DTW over the alignment heads (engine/alignment_heads.h): the preset chosen
// from a model's dimensions, then real decodes with a generated model of tiny's dimensions
// (random weights: the text is garbage, the times and the timing source are what is checked)
// and with the tiny test model, whose dimensions match no preset.
#include <sstream>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <whisper.h>

#include "audio/decoder.h"
#include "engine/alignment_heads.h"
#include "engine/model_writer.h"
#include "engine/whisper_model.h"
#include "engine/whisper_stream.h"
#include "support/process.h"
#include "support/test_env.h"

namespace steno::engine {
namespace {

ModelHparams Dims(const char* preset) {
  auto d = ModelPreset(preset);
  EXPECT_TRUE(d.ok()) << preset;
  return d.ok() ? *d : ModelHparams{};
}

TEST(AlignmentHeadsTest, ChosenFromTheModelsDimensions) {
  const std::pair<const char*, int> official[] = {
      {"tiny", WHISPER_AHEADS_TINY},         {"tiny.en", WHISPER_AHEADS_TINY_EN},
      {"base", WHISPER_AHEADS_BASE},         {"base.en", WHISPER_AHEADS_BASE_EN},
      {"small", WHISPER_AHEADS_SMALL},       {"medium", WHISPER_AHEADS_MEDIUM},
      {"large-v3", WHISPER_AHEADS_LARGE_V3}, {"large-v3-turbo", WHISPER_AHEADS_LARGE_V3_TURBO}};
  for (const auto& [name, preset] : official) {
    auto heads = AlignmentHeadsFor(Dims(name), "/models/ggml-whatever.bin");
    ASSERT_TRUE(heads.has_value()) << name;
    EXPECT_EQ(heads->name, name);
    EXPECT_EQ(heads->preset, preset) << name;
  }
  // English-only small and medium: the multilingual dimensions with a vocabulary of 51864.
  auto small_en = Dims("small");
  small_en.n_vocab = 51864;
  EXPECT_EQ(AlignmentHeadsFor(small_en, "")->preset, WHISPER_AHEADS_SMALL_EN);
  // large-v1 and v2 share their dimensions: the file name decides, v2 by default.
  auto large = Dims("large-v3");
  large.n_vocab = 51865;
  large.n_mels = 80;
  EXPECT_EQ(AlignmentHeadsFor(large, "/m/ggml-large-v2.bin")->preset, WHISPER_AHEADS_LARGE_V2);
  EXPECT_EQ(AlignmentHeadsFor(large, "/m/ggml-large.bin")->preset, WHISPER_AHEADS_LARGE_V2);
  EXPECT_EQ(AlignmentHeadsFor(large, "/m/ggml-large-v1.bin")->preset, WHISPER_AHEADS_LARGE_V1);
  // Anything else matches none: the test model, one changed dimension.
  EXPECT_FALSE(AlignmentHeadsFor(Dims("tiny-test"), "").has_value());
  auto odd = Dims("base");
  odd.n_text_layer = 5;
  EXPECT_FALSE(AlignmentHeadsFor(odd, "").has_value());
}

DecodeParams Words(bool words) {
  DecodeParams p;
  p.language = "en";
  p.beam_size = 1;
  p.temperature_inc = 0;
  p.n_threads = 2;
  p.word_timestamps = words;
  return p;
}

// Words in order, each inside its segment; returns how many there were.
size_t ExpectOrderedWordsInsideSegments(const Transcript& t) {
  size_t n = 0;
  double last_end = 0;
  for (const auto& s : t.segments) {
    for (const auto& w : s.words) {
      EXPECT_GE(w.start, s.start) << w.text;
      EXPECT_LE(w.end, s.end) << w.text;
      EXPECT_LE(w.start, w.end) << w.text;
      EXPECT_GE(w.start, last_end) << w.text;
      last_end = w.end;
      ++n;
    }
  }
  return n;
}

class DtwWordsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::ScopedTempDir("steno-dtw");
    tiny_ = dir_->path + "/ggml-tiny.bin";  // tiny's dimensions, random weights
    auto made = test::RunProcess(
        {test::MakeTestModelBin(), "--preset", "tiny", "--seed", "5", "--out", tiny_});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    auto pcm = audio::Decode(test::MediaPath("speech.wav"));
    ASSERT_TRUE(pcm.ok()) << pcm.error().message;
    pcm_ = new std::vector<float>(std::move(pcm).value());
  }
  static void TearDownTestSuite() {
    delete pcm_;
    delete dir_;
  }
  static std::unique_ptr<WhisperModel> Load(const std::string& path, bool dtw) {
    ModelOptions o;
    o.dtw_words = dtw;
    auto m = WhisperModel::Load(path, o);
    EXPECT_TRUE(m.ok()) << m.error().message;
    return m.ok() ? std::move(m).value() : nullptr;
  }
  static test::ScopedTempDir* dir_;
  static std::string tiny_;
  static std::vector<float>* pcm_;
};
test::ScopedTempDir* DtwWordsTest::dir_ = nullptr;
std::string DtwWordsTest::tiny_;
std::vector<float>* DtwWordsTest::pcm_ = nullptr;

TEST_F(DtwWordsTest, WordsAskedForAreTimedByDtwInOrderInsideTheirSegments) {
  auto model = Load(tiny_, /*dtw=*/true);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->word_alignment(), "tiny");
  auto stream = model->NewStream();
  ASSERT_TRUE(stream.ok());
  // Every segment reaches on_segment once, in order, words included: whisper.cpp's own
  // new-segment callback miscounts under DTW.
  std::vector<Segment> streamed;
  StreamCallbacks cb;
  cb.on_segment = [&](const Segment& s) { streamed.push_back(s); };
  auto t = (*stream)->Run(*pcm_, Words(true), cb);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->word_timing, "dtw");
  ASSERT_FALSE(t->segments.empty());
  EXPECT_GT(ExpectOrderedWordsInsideSegments(*t), 0u);
  ASSERT_EQ(streamed.size(), t->segments.size());
  for (size_t i = 0; i < streamed.size(); ++i) {
    EXPECT_EQ(streamed[i].id, static_cast<int>(i));
    EXPECT_EQ(streamed[i].text, t->segments[i].text);
    ASSERT_EQ(streamed[i].words.size(), t->segments[i].words.size());
    for (size_t w = 0; w < streamed[i].words.size(); ++w) {
      EXPECT_EQ(streamed[i].words[w].start, t->segments[i].words[w].start);
    }
  }

  // Without words the same model decodes as before: no words, no timing source.
  auto plain = (*stream)->Run(*pcm_, Words(false));
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_TRUE(plain->word_timing.empty());
  EXPECT_FALSE(plain->has_words);
  for (const auto& s : plain->segments) EXPECT_TRUE(s.words.empty());
  ASSERT_EQ(plain->segments.size(), t->segments.size());
  for (size_t i = 0; i < plain->segments.size(); ++i) {
    EXPECT_EQ(plain->segments[i].tokens, t->segments[i].tokens);
  }
}

TEST_F(DtwWordsTest, WithoutDtwWordsKeepTokenTimestamps) {
  auto model = Load(tiny_, /*dtw=*/false);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->word_alignment(), "");
  auto stream = model->NewStream();
  ASSERT_TRUE(stream.ok());
  auto t = (*stream)->Run(*pcm_, Words(true));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->word_timing, "tokens");
  EXPECT_GT(ExpectOrderedWordsInsideSegments(*t), 0u);
}

TEST_F(DtwWordsTest, AModelMatchingNoPresetFallsBackToTokensAndSaysSoOnce) {
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured));
  spdlog::set_default_logger(logger);
  auto model = Load(test::TinyModel(), /*dtw=*/true);
  spdlog::set_default_logger(previous);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->word_alignment(), "");
  const std::string log = captured.str();
  const std::string said = "no alignment-heads preset matches this model's dimensions";
  const auto at = log.find(said);
  EXPECT_NE(at, std::string::npos) << log;
  EXPECT_EQ(log.find(said, at + 1), std::string::npos) << "said more than once: " << log;

  auto stream = model->NewStream();
  ASSERT_TRUE(stream.ok());
  auto t = (*stream)->Run(*pcm_, Words(true));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->word_timing, "tokens");
  ExpectOrderedWordsInsideSegments(*t);
}

}  // namespace
}  // namespace steno::engine
