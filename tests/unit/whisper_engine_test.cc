// The engine over real whisper.cpp with the generated tiny random-weight model: loading,
// footprints, streams in parallel, determinism, abort, and input validation.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "audio/decoder.h"
#include "engine/whisper_model.h"
#include "engine/whisper_stream.h"
#include "support/test_env.h"

namespace steno::engine {
namespace {

DecodeParams Greedy() {
  DecodeParams p;
  p.language = "en";
  p.beam_size = 1;
  p.temperature_inc = 0;  // no fallback: deterministic
  p.n_threads = 1;
  return p;
}

class WhisperEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = WhisperModel::Load(test::TinyModel(), ModelOptions{});
    ASSERT_TRUE(m.ok()) << m.error().message;
    model_ = std::move(m).value().release();
    auto pcm = audio::Decode(test::TestData() + "/media/speech.wav");
    ASSERT_TRUE(pcm.ok()) << pcm.error().message;
    pcm_ = new std::vector<float>(std::move(pcm).value());
  }
  static void TearDownTestSuite() {
    delete model_;
    delete pcm_;
  }
  static WhisperModel* model_;
  static std::vector<float>* pcm_;
};
WhisperModel* WhisperEngineTest::model_ = nullptr;
std::vector<float>* WhisperEngineTest::pcm_ = nullptr;

void ExpectSameSegments(const Transcript& a, const Transcript& b) {
  ASSERT_EQ(a.segments.size(), b.segments.size());
  for (size_t i = 0; i < a.segments.size(); ++i) {
    EXPECT_EQ(a.segments[i].text, b.segments[i].text) << "segment " << i;
    EXPECT_EQ(a.segments[i].start, b.segments[i].start) << "segment " << i;
    EXPECT_EQ(a.segments[i].end, b.segments[i].end) << "segment " << i;
    EXPECT_EQ(a.segments[i].tokens, b.segments[i].tokens) << "segment " << i;
  }
}

TEST_F(WhisperEngineTest, LoadReportsWeightsCloseToTheFileTensors) {
  const auto& fp = model_->footprint();
  const auto tensors = model_->info().tensor_bytes;
  ASSERT_GT(tensors, 0);
  EXPECT_GT(fp.weights_bytes, tensors * 9 / 10);
  EXPECT_LT(fp.weights_bytes, tensors * 11 / 10 + 100'000);
  EXPECT_FALSE(model_->multilingual());
}

TEST_F(WhisperEngineTest, StreamsCaptureTheirOwnSizesEvenWhenCreatedConcurrently) {
  std::unique_ptr<WhisperStream> a, b;
  std::thread ta([&] { a = std::move(model_->NewStream()).value(); });
  std::thread tb([&] { b = std::move(model_->NewStream()).value(); });
  ta.join();
  tb.join();
  for (const auto* s : {a.get(), b.get()}) {
    EXPECT_GT(s->footprint().kv_self_bytes, 0);
    EXPECT_GT(s->footprint().kv_cross_bytes, 0);
    EXPECT_GT(s->footprint().compute_encode_bytes, 0);
    EXPECT_GT(s->footprint().compute_decode_bytes, 0);
    EXPECT_EQ(s->footprint().weights_bytes, 0) << "weights belong to the model, not the stream";
  }
  EXPECT_EQ(a->footprint().StreamBytes(), b->footprint().StreamBytes());
}

TEST_F(WhisperEngineTest, SameInputTwiceOnOneStreamGivesSameSegments) {
  auto stream = std::move(model_->NewStream()).value();
  auto first = stream->Run(*pcm_, Greedy());
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = stream->Run(*pcm_, Greedy());
  ASSERT_TRUE(second.ok()) << second.error().message;
  ExpectSameSegments(*first, *second);
  EXPECT_EQ(first->language, "en");
  EXPECT_NEAR(first->duration, static_cast<double>(pcm_->size()) / 16000.0, 1e-9);
}

TEST_F(WhisperEngineTest, ConcurrentStreamsMatchSequentialRuns) {
  constexpr int kStreams = 3;
  auto reference_stream = std::move(model_->NewStream()).value();
  auto reference = reference_stream->Run(*pcm_, Greedy());
  ASSERT_TRUE(reference.ok());

  std::vector<std::unique_ptr<WhisperStream>> streams;
  for (int i = 0; i < kStreams; ++i) streams.push_back(std::move(model_->NewStream()).value());
  std::vector<std::optional<Result<Transcript>>> results(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] { results[i].emplace(streams[i]->Run(*pcm_, Greedy())); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(results[i]->ok()) << results[i]->error().message;
    ExpectSameSegments(**results[i], *reference);
  }
}

TEST_F(WhisperEngineTest, SegmentCallbackSeesEverySegmentAndProgressEndsAtTheTop) {
  auto stream = std::move(model_->NewStream()).value();
  std::vector<Segment> streamed;
  int last_progress = -1;
  bool progress_monotonic = true;
  StreamCallbacks cb;
  cb.on_segment = [&](const Segment& s) { streamed.push_back(s); };
  cb.on_progress = [&](int p) {
    if (p < last_progress) progress_monotonic = false;
    last_progress = p;
  };
  auto t = stream->Run(*pcm_, Greedy(), cb);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(streamed.size(), t->segments.size());
  for (size_t i = 0; i < streamed.size(); ++i) {
    EXPECT_EQ(streamed[i].id, static_cast<int>(i));
    EXPECT_EQ(streamed[i].text, t->segments[i].text);
  }
  EXPECT_TRUE(progress_monotonic);
  EXPECT_GE(last_progress, 0);
}

TEST_F(WhisperEngineTest, AbortHookStopsTheRun) {
  auto stream = std::move(model_->NewStream()).value();
  std::atomic<int> polls{0};
  StreamCallbacks cb;
  cb.should_abort = [&] { return ++polls > 0; };
  auto t = stream->Run(*pcm_, Greedy(), cb);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().kind, ErrorKind::kCancelled);
  EXPECT_GT(polls.load(), 0);
  // The stream stays usable after an abort.
  auto again = stream->Run(*pcm_, Greedy());
  EXPECT_TRUE(again.ok());
}

TEST_F(WhisperEngineTest, RejectsBadInputWithTypedErrors) {
  auto stream = std::move(model_->NewStream()).value();
  auto p = Greedy();
  p.language = "klingon";
  auto r = stream->Run(*pcm_, p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "bad_language");

  p = Greedy();
  p.language = "de";  // the tiny test model is English-only
  r = stream->Run(*pcm_, p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "language_unsupported");

  r = stream->Run(std::span<const float>(), Greedy());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "empty_audio");

  p = Greedy();
  p.beam_size = 0;
  r = stream->Run(*pcm_, p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "bad_param");
}

TEST_F(WhisperEngineTest, WordTimestampsLieInsideTheirSegments) {
  auto stream = std::move(model_->NewStream()).value();
  auto p = Greedy();
  p.word_timestamps = true;
  auto t = stream->Run(*pcm_, p);
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->has_words);
  for (const auto& s : t->segments) {
    std::string joined;
    for (const auto& w : s.words) {
      EXPECT_LE(w.start, w.end);
      joined += w.text;
    }
    if (!s.words.empty()) {
      EXPECT_EQ(joined, s.text) << "words must spell their segment";
    }
  }
}

TEST(WhisperModelLoadTest, MissingAndInvalidFilesAreTypedErrors) {
  auto missing = WhisperModel::Load("/nonexistent/ggml-x.bin", ModelOptions{});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  auto not_model = WhisperModel::Load(test::SourceDir() + "/README.md", ModelOptions{});
  ASSERT_FALSE(not_model.ok());
  EXPECT_EQ(not_model.error().kind, ErrorKind::kBadInput);
}

}  // namespace
}  // namespace steno::engine
