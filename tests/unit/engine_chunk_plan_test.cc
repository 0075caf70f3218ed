// The plan step of a chunked job (engine/chunk_plan.h): speech regions grouped into chunks that
// decode at most max_s, cut only at silences or, inside one long region, at its quietest point; and
// the sub-jobs' ChunkWork as it travels in a job's params (core/chunk_work.h).
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "core/job.h"
#include "engine/chunk_plan.h"

namespace steno::engine {
namespace {

constexpr int kRate = 16000;

// `seconds` of a loud tone (speech stand-in).
std::vector<float> Tone(double seconds) {
  std::vector<float> pcm(static_cast<size_t>(seconds * kRate));
  for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = 0.5f * std::sin(0.05f * static_cast<float>(i));
  return pcm;
}

double DecodedSeconds(const SpeechChunk& c) {
  double s = SpeechTimeline::kGapSeconds * (static_cast<double>(c.speech.size()) - 1);
  for (const auto& r : c.speech) s += r.end - r.start;
  return s;
}

TEST(ChunkPlanTest, GroupsRegionsGreedilyAndCutsOnlyBetweenThem) {
  const std::vector<float> pcm = Tone(100);
  const std::vector<SpeechRegion> speech = {{1, 9},   {10, 18}, {19, 27},  {28, 36},
                                            {37, 45}, {60, 62}, {90, 99.5}};
  const auto chunks = PlanChunks(pcm, speech, 30);
  ASSERT_EQ(chunks.size(), 2u);
  // 1–27 decodes 24.2 s, and 28–36 would make it 32.3 s: a new chunk from 28 takes 37–45, 60–62
  // and 90–99.5 (8 + 8 + 2 + 9.5 s and three 0.1 s gaps: 27.8 s), though it spans 71.5 s of the
  // recording: the silences between its regions are not decoded.
  EXPECT_DOUBLE_EQ(chunks[0].start, 1);
  EXPECT_DOUBLE_EQ(chunks[0].end, 27);
  EXPECT_EQ(chunks[0].speech.size(), 3u);
  EXPECT_DOUBLE_EQ(chunks[1].start, 28);
  EXPECT_DOUBLE_EQ(chunks[1].end, 99.5);
  EXPECT_EQ(chunks[1].speech.size(), 4u);
  EXPECT_NEAR(DecodedSeconds(chunks[1]), 27.8, 1e-9);
  size_t regions = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const SpeechChunk& c = chunks[i];
    regions += c.speech.size();
    EXPECT_LE(DecodedSeconds(c), 30.0);
    EXPECT_NEAR(c.decoded_s, DecodedSeconds(c), 1e-9) << "the plan's own count of it";
    EXPECT_DOUBLE_EQ(c.start, c.speech.front().start);
    EXPECT_DOUBLE_EQ(c.end, c.speech.back().end);
    // Every boundary is in a silence: the next chunk starts after this one ends.
    if (i + 1 < chunks.size()) {
      EXPECT_LT(c.end, chunks[i + 1].start);
    }
  }
  EXPECT_EQ(regions, speech.size());  // nothing lost, nothing split
}

TEST(ChunkPlanTest, CutsALongRegionAtItsQuietestPoint) {
  std::vector<float> pcm = Tone(80);
  // A quiet 200 ms at 22 s (inside 15–30 s, the second half of the first 30 s from 0) and
  // another at 45 s: the region 0–70 s is cut at both.
  for (double at : {22.0, 45.0}) {
    for (int i = 0; i < kRate / 5; ++i) pcm[static_cast<size_t>(at * kRate) + i] = 0.001f;
  }
  const auto chunks = PlanChunks(pcm, {{0, 70}}, 30);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_NEAR(chunks[0].end, 22.1, 0.1);  // inside the quiet 200 ms
  EXPECT_NEAR(chunks[1].end, 45.1, 0.1);
  EXPECT_DOUBLE_EQ(chunks[1].start, chunks[0].end);  // the pieces touch: nothing is lost
  EXPECT_DOUBLE_EQ(chunks[2].start, chunks[1].end);
  EXPECT_DOUBLE_EQ(chunks[2].end, 70);
  for (const auto& c : chunks) {
    EXPECT_LE(c.end - c.start, 30.0);
    EXPECT_EQ(c.speech.size(), 1u);  // pieces of one region never share a chunk
  }
}

TEST(ChunkPlanTest, FlatSpeechIsCutWithinTheLimitAndRegionsAreClipped) {
  const std::vector<float> pcm(65 * kRate, 0.3f);  // equally loud everywhere
  const auto chunks = PlanChunks(pcm, {{-1, 64}, {64.5, 80}}, 30);
  ASSERT_FALSE(chunks.empty());
  EXPECT_DOUBLE_EQ(chunks.front().start, 0);
  EXPECT_DOUBLE_EQ(chunks.back().end, 65);  // clipped to the audio
  for (const auto& c : chunks) {
    EXPECT_LE(c.end - c.start, 30.0 + 1e-9);
    EXPECT_GE(c.end - c.start, 0.5);
  }
  EXPECT_TRUE(PlanChunks(pcm, {}, 30).empty());
  EXPECT_TRUE(PlanChunks(pcm, {{70, 80}}, 30).empty());  // past the audio: no speech
}

TEST(ChunkWorkTest, TravelsInJobParamsAndBadWorkIsRefused) {
  JobParams p;
  ChunkWork w;
  w.step = ChunkWork::Step::kChunk;
  w.pcm_path = "/data/chunks/job.f32";
  w.index = 3;
  w.start = 61.5;
  w.end = 88.25;
  w.speech = {{61.5, 70}, {71, 88.25}};
  p.chunk = w;
  auto back = JobParamsFromJson(JobParamsToJson(p));
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_TRUE(back->chunk.has_value());
  EXPECT_EQ(*back->chunk, w);

  ChunkWork plan;
  plan.pcm_path = "/data/chunks/job.f32";
  plan.max_chunk_s = 20;
  p.chunk = plan;
  back = JobParamsFromJson(JobParamsToJson(p));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->chunk->step, ChunkWork::Step::kPlan);
  EXPECT_DOUBLE_EQ(back->chunk->max_chunk_s, 20);

  // A stored job has none.
  EXPECT_FALSE(JobParamsFromJson(JobParamsToJson(JobParams{}))->chunk.has_value());
  EXPECT_FALSE(JobParamsFromJson(R"({"chunk": {"step": "split", "pcm_path": "x"}})").ok());
  EXPECT_FALSE(JobParamsFromJson(R"({"chunk": {"step": "chunk", "pcm_path": ""}})").ok());
}

}  // namespace
}  // namespace steno::engine
