// Voice activity detection: the speech timeline's mapping (pure), then the real Silero model
// (../shared/models) on synthesised speech with silences inserted at known places, through
// whisper.cpp's VAD API directly, through steno's detector, and through a whisper stream with
// the tiny random-weight model (its text is garbage; the assertions are about times).
#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>
#include <whisper.h>

#include "engine/chunk_plan.h"
#include "engine/speech_timeline.h"
#include "engine/vad.h"
#include "engine/whisper_model.h"
#include "engine/whisper_stream.h"
#include "support/gapped_speech.h"
#include "support/test_env.h"

namespace steno::engine {
namespace {

constexpr double kTolerance = 0.2;  // the bound on a detected boundary, in seconds

TEST(SpeechTimelineTest, LaysRegionsBackToBackAndMapsTimesBack) {
  std::vector<float> pcm(10 * 16000);
  for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = static_cast<float>(i);
  // The last region runs past the audio: it is clipped to it.
  SpeechTimeline t(pcm, {{1.0, 3.0}, {6.0, 8.0}, {9.5, 12.0}});
  ASSERT_EQ(t.regions().size(), 3u);
  EXPECT_DOUBLE_EQ(t.regions()[2].end, 10.0);
  // 2 s + 0.1 s gap + 2 s + 0.1 s gap + 0.5 s.
  ASSERT_EQ(t.samples().size(), static_cast<size_t>(4.7 * 16000));
  EXPECT_EQ(t.samples()[0], pcm[16000]);
  EXPECT_EQ(t.samples()[2 * 16000], 0.0f);        // the inserted gap is silent
  EXPECT_EQ(t.samples()[33600], pcm[6 * 16000]);  // the second region starts after it

  EXPECT_DOUBLE_EQ(t.StartToOriginal(0.0), 1.0);
  EXPECT_DOUBLE_EQ(t.StartToOriginal(1.5), 2.5);
  EXPECT_DOUBLE_EQ(t.EndToOriginal(1.5), 2.5);
  // Inside the gap after the first region: a start moves to the next region, an end back.
  EXPECT_DOUBLE_EQ(t.StartToOriginal(2.05), 6.0);
  EXPECT_DOUBLE_EQ(t.EndToOriginal(2.05), 3.0);
  EXPECT_DOUBLE_EQ(t.StartToOriginal(2.1), 6.0);
  EXPECT_NEAR(t.EndToOriginal(3.1), 7.0, 1e-9);
  // Past the end: the last region's end.
  EXPECT_DOUBLE_EQ(t.StartToOriginal(100), 10.0);
  EXPECT_DOUBLE_EQ(t.EndToOriginal(100), 10.0);

  SpeechTimeline none(pcm, {});
  EXPECT_TRUE(none.samples().empty());
  EXPECT_DOUBLE_EQ(none.EndToOriginal(4.0), 4.0);
}

class VadRealModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_path_ = test::SileroModel();
    if (model_path_.empty()) {
      GTEST_SKIP() << "the real VAD model is not at ../shared/models/ggml-silero-v6.2.0.bin";
    }
  }
  std::string model_path_;
};

// The regions through whisper.cpp's own API: probabilities, then segments from them.
std::vector<SpeechRegion> DetectWithWhisperApi(const std::string& model,
                                               const std::vector<float>& pcm) {
  whisper_vad_context_params cp = whisper_vad_default_context_params();
  cp.n_threads = 1;
  cp.use_gpu = false;
  whisper_vad_context* vctx = whisper_vad_init_from_file_with_params(model.c_str(), cp);
  EXPECT_NE(vctx, nullptr);
  if (!vctx) return {};
  std::vector<SpeechRegion> out;
  EXPECT_TRUE(whisper_vad_detect_speech(vctx, pcm.data(), static_cast<int>(pcm.size())));
  EXPECT_GT(whisper_vad_n_probs(vctx), 0);
  whisper_vad_segments* segs = whisper_vad_segments_from_probs(vctx, whisper_vad_default_params());
  EXPECT_NE(segs, nullptr);
  for (int i = 0; segs && i < whisper_vad_segments_n_segments(segs); ++i) {
    out.push_back({whisper_vad_segments_get_segment_t0(segs, i) / 100.0,
                   whisper_vad_segments_get_segment_t1(segs, i) / 100.0});
  }
  if (segs) whisper_vad_free_segments(segs);
  whisper_vad_free(vctx);
  return out;
}

std::string Describe(const std::vector<SpeechRegion>& regions) {
  std::string s;
  for (const auto& r : regions)
    s += "[" + std::to_string(r.start) + ", " + std::to_string(r.end) + "] ";
  return s;
}

// The known speech: [1 s silence][speech][5 s silence][speech][1 s silence].
void ExpectKnownBoundaries(const std::vector<SpeechRegion>& r, const test::GappedSpeech& g) {
  ASSERT_GE(r.size(), 2u) << Describe(r);
  EXPECT_NEAR(r.front().start, g.first_start, kTolerance) << Describe(r);
  EXPECT_NEAR(r.back().end, g.second_end, kTolerance) << Describe(r);
  // One gap between two regions is the inserted silence, its edges within the tolerance.
  bool found = false;
  for (size_t i = 0; i + 1 < r.size(); ++i) {
    found = found || (std::fabs(r[i].end - g.first_end) <= kTolerance &&
                      std::fabs(r[i + 1].start - g.second_start) <= kTolerance);
  }
  EXPECT_TRUE(found) << "no gap matches the silence [" << g.first_end << ", " << g.second_start
                     << "]: " << Describe(r);
  // No region reaches into the inserted silences.
  for (const auto& x : r) {
    EXPECT_FALSE(x.end > g.first_end + kTolerance && x.start < g.second_start - kTolerance)
        << Describe(r);
    EXPECT_GE(x.start, g.first_start - kTolerance) << Describe(r);
    EXPECT_LE(x.end, g.second_end + kTolerance) << Describe(r);
  }
}

TEST_F(VadRealModelTest, WhisperApiFindsTheInsertedSilences) {
  const auto g = test::MakeGappedSpeech(1.0, 5.0, 1.0);
  ASSERT_FALSE(g.pcm.empty());
  ExpectKnownBoundaries(DetectWithWhisperApi(model_path_, g.pcm), g);
}

// Streaming (a live session): probabilities read 100 ms at a time, frames carried over between
// calls, are those of the audio read whole; a reset starts afresh.
TEST_F(VadRealModelTest, FrameProbabilitiesReadInPiecesAreThoseOfTheWhole) {
  const auto g = test::MakeGappedSpeech(1.0, 2.0, 1.0);
  ASSERT_FALSE(g.pcm.empty());
  constexpr size_t kFrame = VadDetector::kFrameSamples;
  const std::vector<float> pcm(g.pcm.begin(), g.pcm.begin() + g.pcm.size() / kFrame * kFrame);
  auto whole = VadDetector::Load(model_path_);
  auto pieces = VadDetector::Load(model_path_);
  ASSERT_TRUE(whole.ok() && pieces.ok());
  auto all = (*whole)->FrameProbabilities(pcm);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), pcm.size() / kFrame);
  std::vector<float> streamed;
  std::vector<float> pending;
  for (size_t at = 0; at < pcm.size(); at += 1600) {  // 100 ms, never a whole number of frames
    pending.insert(pending.end(), pcm.begin() + at, pcm.begin() + std::min(pcm.size(), at + 1600));
    const size_t n = pending.size() / kFrame * kFrame;
    auto p = (*pieces)->FrameProbabilities(std::span(pending).first(n));
    ASSERT_TRUE(p.ok()) << p.error().message;
    streamed.insert(streamed.end(), p->begin(), p->end());
    pending.erase(pending.begin(), pending.begin() + n);
  }
  ASSERT_EQ(streamed.size(), all->size());
  for (size_t i = 0; i < all->size(); ++i) EXPECT_NEAR(streamed[i], (*all)[i], 1e-5) << i;
  // Speech and the inserted silence are told apart.
  const size_t in_speech = static_cast<size_t>((g.first_start + 1.0) * 16000) / kFrame;
  const size_t in_gap = static_cast<size_t>((g.first_end + 1.0) * 16000) / kFrame;
  EXPECT_GT((*all)[in_speech], 0.5f);
  EXPECT_LT((*all)[in_gap], 0.2f);
  (*pieces)->ResetState();
  auto again = (*pieces)->FrameProbabilities(std::span(pcm).first(10 * kFrame));
  ASSERT_TRUE(again.ok());
  for (size_t i = 0; i < again->size(); ++i) EXPECT_NEAR((*again)[i], (*all)[i], 1e-5) << i;
  EXPECT_EQ((*pieces)->FrameProbabilities(std::span(pcm).first(100)).error().code,
            "bad_vad_frames");
}

TEST_F(VadRealModelTest, DetectorAgreesWithTheWhisperApi) {
  const auto g = test::MakeGappedSpeech(1.0, 5.0, 1.0);
  ASSERT_FALSE(g.pcm.empty());
  auto detector = VadDetector::Load(model_path_);
  ASSERT_TRUE(detector.ok()) << detector.error().message;
  auto regions = (*detector)->Detect(g.pcm, VadSettings{});
  ASSERT_TRUE(regions.ok()) << regions.error().message;
  ExpectKnownBoundaries(*regions, g);
  const auto direct = DetectWithWhisperApi(model_path_, g.pcm);
  ASSERT_EQ(regions->size(), direct.size()) << Describe(*regions) << " vs " << Describe(direct);
  for (size_t i = 0; i < direct.size(); ++i) {
    EXPECT_NEAR((*regions)[i].start, direct[i].start, 0.011);
    EXPECT_NEAR((*regions)[i].end, direct[i].end, 0.011);
  }
  // Pure silence holds no speech.
  auto silent = (*detector)->Detect(std::vector<float>(5 * 16000, 0.0f), VadSettings{});
  ASSERT_TRUE(silent.ok());
  EXPECT_TRUE(silent->empty()) << Describe(*silent);
}

TEST(VadDetectorTest, MissingModelSaysHowToInstallIt) {
  auto d = VadDetector::Load("/nonexistent/ggml-silero-v6.2.0.bin");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().kind, ErrorKind::kBadInput);
  EXPECT_EQ(d.error().code, "vad_model_missing");
  EXPECT_NE(d.error().message.find("steno models pull silero-v6.2.0"), std::string::npos)
      << d.error().message;
}

class VadStreamTest : public VadRealModelTest {
 protected:
  void SetUp() override {
    VadRealModelTest::SetUp();
    if (IsSkipped()) return;
    auto m = WhisperModel::Load(test::TinyModel(), ModelOptions{});
    ASSERT_TRUE(m.ok()) << m.error().message;
    model_ = std::move(m).value();
    auto s = model_->NewStream();
    ASSERT_TRUE(s.ok()) << s.error().message;
    stream_ = std::move(s).value();
  }
  DecodeParams Params(bool vad) const {
    DecodeParams p;
    p.language = "en";
    p.beam_size = 1;
    p.temperature_inc = 0;
    p.n_threads = 1;
    if (vad) {
      p.vad = VadSettings{};
      p.vad_model_path = model_path_;
    }
    return p;
  }
  std::unique_ptr<WhisperModel> model_;
  std::unique_ptr<WhisperStream> stream_;
};

TEST_F(VadStreamTest, DecodesOnlySpeechAndKeepsTheOriginalTimeline) {
  // A long silence: the decoded audio (speech only) is 10 s shorter than the input.
  const auto g = test::MakeGappedSpeech(1.0, 10.0, 1.0);
  ASSERT_FALSE(g.pcm.empty());
  auto detector = VadDetector::Load(model_path_);
  ASSERT_TRUE(detector.ok());
  auto regions = (*detector)->Detect(g.pcm, VadSettings{});
  ASSERT_TRUE(regions.ok());
  ASSERT_GE(regions->size(), 2u);

  std::vector<Segment> live;
  StreamCallbacks cb;
  cb.on_segment = [&live](const Segment& s) { live.push_back(s); };
  auto t = stream_->Run(g.pcm, Params(true), cb);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_DOUBLE_EQ(t->duration, g.duration());
  ASSERT_FALSE(t->segments.empty());
  // Every start and end lies in a detected speech region (or on its edge): none inside a
  // detected silence, none in the silence before the first word.
  auto in_speech = [&](double x) {
    return std::any_of(regions->begin(), regions->end(), [x](const SpeechRegion& r) {
      return x >= r.start - 0.011 && x <= r.end + 0.011;
    });
  };
  for (const Segment& s : t->segments) {
    EXPECT_TRUE(in_speech(s.start)) << s.start << " " << Describe(*regions);
    EXPECT_TRUE(in_speech(s.end)) << s.end << " " << Describe(*regions);
    EXPECT_FALSE(s.start >= g.first_end + kTolerance && s.end <= g.second_start - kTolerance)
        << "a segment inside the inserted silence: " << s.start << "-" << s.end;
  }
  // The original timeline: the decoded audio is only ~2 × the speech long, so a time past the
  // silence exists only where times were mapped back.
  EXPECT_GE(t->segments.back().end, g.second_start) << "times were not mapped back";
  // Segments streamed while decoding carry the same (mapped) times.
  ASSERT_EQ(live.size(), t->segments.size());
  for (size_t i = 0; i < live.size(); ++i) {
    EXPECT_DOUBLE_EQ(live[i].start, t->segments[i].start);
    EXPECT_DOUBLE_EQ(live[i].end, t->segments[i].end);
  }
}

// A VAD run decodes its speech as the chunk plan groups it (engine/chunk_plan.h), one
// whisper_full call per chunk: its transcript is that of each chunk decoded alone, merged in
// order (as a chunked job's is), and no segment spans the silence between two chunks.
TEST_F(VadStreamTest, AVadRunIsItsChunksEachDecodedAlone) {
  // Six copies of the speech, one every 20 s: more than one window of speech in all.
  const auto s = test::MakeSpacedSpeech(6, 20.0);
  ASSERT_FALSE(s.pcm.empty());
  auto detector = VadDetector::Load(model_path_);
  ASSERT_TRUE(detector.ok());
  auto regions = (*detector)->Detect(s.pcm, VadSettings{});
  ASSERT_TRUE(regions.ok());
  const std::vector<SpeechChunk> chunks = PlanChunks(s.pcm, *regions, kWindowSeconds);
  ASSERT_GE(chunks.size(), 2u) << Describe(*regions);

  std::vector<Segment> live;
  StreamCallbacks cb;
  cb.on_segment = [&live](const Segment& seg) { live.push_back(seg); };
  auto whole = stream_->Run(s.pcm, Params(true), cb);
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  std::vector<Segment> alone;
  std::vector<size_t> chunk_of;  // the chunk each segment of `alone` came from
  for (size_t c = 0; c < chunks.size(); ++c) {
    DecodeParams p = Params(false);
    p.speech = chunks[c].speech;
    auto t = stream_->Run(s.pcm, p);
    ASSERT_TRUE(t.ok()) << t.error().message;
    for (const Segment& seg : t->segments) {
      alone.push_back(seg);
      chunk_of.push_back(c);
    }
  }
  ASSERT_FALSE(alone.empty());
  ASSERT_EQ(whole->segments.size(), alone.size()) << whole->Text() << " | chunks alone:";
  ASSERT_EQ(live.size(), alone.size());
  for (size_t i = 0; i < alone.size(); ++i) {
    const Segment& seg = whole->segments[i];
    EXPECT_EQ(seg.id, static_cast<int>(i));
    EXPECT_EQ(live[i].id, static_cast<int>(i));
    EXPECT_EQ(seg.text, alone[i].text) << i;
    EXPECT_DOUBLE_EQ(seg.start, alone[i].start) << i;
    EXPECT_DOUBLE_EQ(seg.end, alone[i].end) << i;
    // Inside its chunk: never across the silence that separates it from the next.
    const SpeechChunk& c = chunks[chunk_of[i]];
    EXPECT_GE(seg.start, c.start - 0.011) << i;
    EXPECT_LE(seg.end, c.end + 0.011) << i;
  }
}

TEST_F(VadStreamTest, SilenceAloneYieldsNoText) {
  const std::vector<float> silence(8 * 16000, 0.0f);
  auto t = stream_->Run(silence, Params(true));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_TRUE(t->segments.empty()) << t->Text();
  EXPECT_DOUBLE_EQ(t->duration, 8.0);
}

TEST_F(VadStreamTest, MissingVadModelFailsTheRunClearly) {
  auto p = Params(true);
  p.vad_model_path = "/nonexistent/ggml-silero-v6.2.0.bin";
  auto t = stream_->Run(std::vector<float>(16000, 0.0f), p);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, "vad_model_missing");
}

}  // namespace
}  // namespace steno::engine
