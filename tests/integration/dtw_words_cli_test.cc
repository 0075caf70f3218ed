// `steno transcribe --word-timestamps` times words by DTW over the alignment heads of the model's
// dimensions (a generated model of tiny's dimensions, random weights) and says so in its
// verbose_json ("word_timing"); without the flag the output has neither words nor the field.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/process.h"
#include "support/test_env.h"

namespace steno::test {
namespace {

using json = nlohmann::json;

std::vector<std::string> Transcribe(const std::string& model, bool words) {
  std::vector<std::string> argv = {StenoBin(),
                                   "transcribe",
                                   MediaPath("speech.wav"),
                                   "--model",
                                   model,
                                   "--language",
                                   "en",
                                   "--beam-size",
                                   "1",
                                   "--temperature-inc",
                                   "0",
                                   "--threads",
                                   "2",
                                   "--device",
                                   "cpu",
                                   "--format",
                                   "verbose_json"};
  if (words) argv.push_back("--word-timestamps");
  return argv;
}

ProcessResult RunSteno(const std::vector<std::string>& argv) {
  ProcessOptions o;
  o.timeout_s = 1200;  // catches a hang only: each run is ~5 s of CPU
  return RunProcess(argv, o);
}

TEST(DtwWordsCliTest, WordTimestampsComeFromDtwAndPlainOutputIsUnchanged) {
  ScopedTempDir dir("steno-dtw-cli");
  const std::string tiny = dir.path + "/ggml-tiny.bin";
  auto made = RunProcess({MakeTestModelBin(), "--preset", "tiny", "--seed", "5", "--out", tiny});
  ASSERT_EQ(made.exit_code, 0) << made.err;

  auto r = RunSteno(Transcribe(tiny, true));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json v = json::parse(r.out);
  EXPECT_EQ(v.value("word_timing", ""), "dtw") << r.out;
  ASSERT_TRUE(v.contains("words")) << r.out;
  double last = 0;
  for (const auto& s : v["segments"]) {
    for (const auto& w : s["words"]) {
      EXPECT_GE(w["start"].get<double>(), s["start"].get<double>()) << w.dump();
      EXPECT_LE(w["end"].get<double>(), s["end"].get<double>()) << w.dump();
      EXPECT_GE(w["start"].get<double>(), last) << w.dump();
      last = w["end"].get<double>();
    }
  }

  auto plain = RunSteno(Transcribe(tiny, false));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const json p = json::parse(plain.out);
  EXPECT_FALSE(p.contains("word_timing")) << plain.out;
  EXPECT_FALSE(p.contains("words")) << plain.out;
  for (const auto& s : p["segments"]) EXPECT_FALSE(s.contains("words")) << s.dump();

  // The tiny test model matches no preset: its words keep token timestamps.
  auto fallback = RunSteno(Transcribe(TinyModel(), true));
  ASSERT_EQ(fallback.exit_code, 0) << fallback.err;
  EXPECT_EQ(json::parse(fallback.out).value("word_timing", ""), "tokens") << fallback.out;
}

}  // namespace
}  // namespace steno::test
