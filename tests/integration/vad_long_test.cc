// A long recording through the real product with voice activity detection: 10 minutes of
// espeak-ng speech in six voices with 18 silences (6 s to 30 s) making up half of it
// (tests/support/make_long_recording.sh), transcribed by `steno transcribe --vad` with the real
// Silero model and the tiny random-weight Whisper model (garbage text: the assertions are about
// times). ~30 s of CPU (tiny model's decoding), a few seconds of it the VAD.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/gapped_speech.h"
#include "support/process.h"
#include "support/test_env.h"

namespace steno::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr double kTolerance = 0.2;  // the bound on a detected boundary, in seconds
constexpr int kSeconds = 600;

struct Interval {
  double start = 0, end = 0;
};

std::vector<Interval> ReadSilences(const std::string& path) {
  std::vector<Interval> out;
  std::ifstream in(path);
  Interval s;
  while (in >> s.start >> s.end) out.push_back(s);
  return out;
}

// A time strictly inside the silence, farther than the tolerance from both of its edges.
bool Inside(double t, const Interval& s) {
  return t > s.start + kTolerance && t < s.end - kTolerance;
}

TEST(VadLongRecordingTest, HalfSilentTenMinutesYieldNoSegmentInsideASilence) {
  const std::string silero = SileroModel();
  if (silero.empty()) GTEST_SKIP() << "the real VAD model is not at ../shared/models";
  ScopedTempDir dir("steno-vad-long");
  fs::create_directories(dir.path + "/models");
  fs::create_symlink(silero, dir.path + "/models/ggml-silero-v6.2.0.bin");

  const std::string audio = dir.path + "/half_silent.wav";
  auto made = RunProcess({SourceDir() + "/tests/support/make_long_recording.sh", audio,
                          std::to_string(kSeconds), "50"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const auto silences = ReadSilences(audio + ".silences");
  ASSERT_GE(silences.size(), 10u);
  double quiet = 0;
  for (const auto& s : silences) quiet += s.end - s.start;
  ASSERT_NEAR(quiet, kSeconds / 2.0, kSeconds * 0.05) << "not half silence";

  ProcessOptions o;
  o.env = {{"STENO_MODELS", dir.path + "/models"}};
  o.timeout_s = 1800;  // catches a hang only: ~30 s of CPU, far longer on a busy machine
  const auto began = std::chrono::steady_clock::now();
  auto r = RunProcess({StenoBin(), "transcribe", audio, "--model", TinyModel(), "--language", "en",
                       "--beam-size", "1", "--temperature-inc", "0", "--threads", "2", "--device",
                       "cpu", "--vad", "--format", "verbose_json"},
                      o);
  const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - began);
  std::printf("transcribed %d s with VAD in %.1f s\n", kSeconds, took.count());
  ASSERT_EQ(r.exit_code, 0) << r.err;

  const json v = json::parse(r.out);
  EXPECT_NEAR(v["duration"].get<double>(), kSeconds, 0.05);
  const auto& segs = v["segments"];
  ASSERT_GE(segs.size(), 5u) << "the speech was not transcribed: " << r.out;
  double previous = 0;
  for (const auto& seg : segs) {
    const double start = seg["start"], end = seg["end"];
    EXPECT_GE(start, previous) << seg.dump();
    EXPECT_LE(end, kSeconds) << seg.dump();
    previous = start;
    for (const auto& s : silences) {
      EXPECT_FALSE(Inside(start, s) || Inside(end, s))
          << "segment [" << start << ", " << end << "] starts or ends in the silence [" << s.start
          << ", " << s.end << "]";
    }
  }
}

}  // namespace
}  // namespace steno::test
