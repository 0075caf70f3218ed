// `steno transcribe` as a user runs it: a real process, real media, the generated model.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/process.h"
#include "support/subtitle_check.h"
#include "support/test_env.h"

namespace steno::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Greedy, no temperature fallback, two threads: deterministic and comparable with whisper-cli.
std::vector<std::string> Transcribe(std::vector<std::string> extra) {
  std::vector<std::string> argv = {StenoBin(),          "transcribe", "--model",     TinyModel(),
                                   "--language",        "en",         "--beam-size", "1",
                                   "--temperature-inc", "0",          "--threads",   "2"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

bool DirIsEmpty(const std::string& dir) {
  return fs::is_empty(dir);
}

ProcessOptions ModelsEnv(const std::string& models_dir) {
  ProcessOptions options;
  options.env = {{"STENO_MODELS", models_dir}};
  return options;
}

// Runs upstream whisper-cli and steno on one file with the same greedy parameters and compares
// every segment's text, start and end (whisper-cli reports times in ms as "offsets").
void ExpectParity(const std::string& media, size_t min_segments) {
  SCOPED_TRACE(media);
  const std::string out_dir = MakeTempDir("parity");
  auto upstream =
      RunProcess({WhisperCliBin(), "-m", TinyModel(), "-f", MediaPath(media), "-l", "en", "-bs",
                  "1", "-tpi", "0", "-t", "2", "-np", "-oj", "-of", out_dir + "/upstream"});
  ASSERT_EQ(upstream.exit_code, 0) << upstream.err;
  json expected = json::parse(ReadFileText(out_dir + "/upstream.json"));
  const auto& want = expected.at("transcription");

  auto ours = RunProcess(Transcribe({"--format", "json", MediaPath(media)}));
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  json got = json::parse(ours.out);
  const auto& have = got.at("segments");

  ASSERT_EQ(have.size(), want.size()) << ours.out;
  ASSERT_GE(have.size(), min_segments) << "too few segments for the comparison to mean much";
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(have[i].at("text").get<std::string>(), want[i].at("text").get<std::string>())
        << "segment " << i;
    const auto start_ms = std::llround(have[i].at("start").get<double>() * 1000);
    const auto end_ms = std::llround(have[i].at("end").get<double>() * 1000);
    EXPECT_EQ(start_ms, want[i].at("offsets").at("from").get<long long>()) << "segment " << i;
    EXPECT_EQ(end_ms, want[i].at("offsets").at("to").get<long long>()) << "segment " << i;
  }
  fs::remove_all(out_dir);
}

TEST(TranscribeCliTest, MatchesUpstreamWhisperCliSegmentForSegment) {
  ExpectParity("speech.wav", 1);
  ExpectParity("speech_60s.wav", 3);  // two 30 s windows: several segments, times past 30 s
}

TEST(TranscribeCliTest, EveryContainerDecodesAndTranscribes) {
  for (const char* name :
       {"speech.wav", "speech_44k_stereo.wav", "speech.mp3", "speech.flac", "speech.ogg",
        "speech.opus", "speech.m4a", "speech.mp4", "speech.mkv", "speech.webm"}) {
    SCOPED_TRACE(name);
    auto r = RunProcess(Transcribe({"--format", "verbose_json", MediaPath(name)}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    json j = json::parse(r.out);
    EXPECT_TRUE(ValidateVerboseJsonShape(j).empty());
    EXPECT_GT(j.at("duration").get<double>(), 3.0);
  }
}

struct BadInput {
  const char* file;
  const char* expected_in_message;
};

TEST(TranscribeCliTest, EachBadInputHasItsOwnErrorExitsTwoAndWritesNothing) {
  const std::vector<BadInput> cases = {
      {"not_media.txt", "not an audio"},
      {"video_only.mp4", "no audio"},
      {"empty.wav", "no audio samples"},
      {"does_not_exist.wav", "does not exist"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    const std::string out_dir = MakeTempDir("bad");
    auto r = RunProcess(Transcribe({"--output-dir", out_dir, MediaPath(c.file)}));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(c.expected_in_message), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty());
    EXPECT_TRUE(DirIsEmpty(out_dir));
    fs::remove_all(out_dir);
  }
}

TEST(TranscribeCliTest, TruncatedAndTooLongInputsAreRejected) {
  const std::string out_dir = MakeTempDir("bad");
  auto truncated = RunProcess(Transcribe({"--output-dir", out_dir, MediaPath("truncated.wav")}));
  EXPECT_EQ(truncated.exit_code, 2) << truncated.err;
  EXPECT_NE(truncated.err.find("truncated"), std::string::npos) << truncated.err;

  auto too_long = RunProcess(
      Transcribe({"--output-dir", out_dir, "--max-duration", "10", MediaPath("long.wav")}));
  EXPECT_EQ(too_long.exit_code, 2) << too_long.err;
  EXPECT_NE(too_long.err.find("the limit is 10 s"), std::string::npos) << too_long.err;
  EXPECT_TRUE(DirIsEmpty(out_dir));
  fs::remove_all(out_dir);
}

TEST(TranscribeCliTest, OneBadFileAmongGoodOnesStopsTheWholeRunBeforeAnyOutput) {
  const std::string out_dir = MakeTempDir("mixed");
  auto r = RunProcess(Transcribe({"--output-dir", out_dir, MediaPath("speech.wav"),
                                  MediaPath("not_media.txt"), MediaPath("speech.mp3")}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not_media.txt"), std::string::npos) << r.err;
  EXPECT_TRUE(DirIsEmpty(out_dir));
  fs::remove_all(out_dir);
}

TEST(TranscribeCliTest, WritesOneValidOutputPerInputInEachFormat) {
  const std::string out_dir = MakeTempDir("formats");
  for (const char* format : {"txt", "srt", "vtt", "json", "verbose_json"}) {
    SCOPED_TRACE(format);
    auto r = RunProcess(Transcribe({"--format", format, "--output-dir", out_dir,
                                    MediaPath("speech.wav"), MediaPath("speech.flac")}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  for (const char* stem : {"speech"}) {
    const fs::path base = fs::path(out_dir) / stem;
    EXPECT_TRUE(ValidateSrt(ReadFileText(base.string() + ".srt")).empty());
    EXPECT_TRUE(ValidateVtt(ReadFileText(base.string() + ".vtt")).empty());
    EXPECT_TRUE(ValidateJsonShape(json::parse(ReadFileText(base.string() + ".json"))).empty());
    EXPECT_TRUE(ValidateVerboseJsonShape(json::parse(ReadFileText(base.string() + ".verbose.json")))
                    .empty());
    EXPECT_TRUE(fs::exists(base.string() + ".txt"));
  }
  // No temporary files are left behind.
  for (const auto& e : fs::directory_iterator(out_dir)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  }
  fs::remove_all(out_dir);
}

TEST(TranscribeCliTest, BadUsageExitsTwoWithAReason) {
  struct Case {
    std::vector<std::string> args;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {{"--format", "xml", MediaPath("speech.wav")}, "xml"},
      {{"--language", "klingon", MediaPath("speech.wav")}, "klingon"},
      {{"--device", "tpu:0", MediaPath("speech.wav")}, "tpu:0"},
      {{"--threads", "0", MediaPath("speech.wav")}, "threads"},
      {{"--output-dir", "/nonexistent/dir", MediaPath("speech.wav")}, "/nonexistent/dir"},
      {{MediaPath("speech.wav"), MediaPath("speech.mp3")}, "--output-dir"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.expected);
    auto r = RunProcess(Transcribe(c.args));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
}

TEST(TranscribeCliTest, UnknownModelNameExitsTwoAndSuggestsPull) {
  const std::string models = MakeTempDir("models");
  auto r = RunProcess({StenoBin(), "transcribe", "--model", "tiny.en", MediaPath("speech.wav")},
                      ModelsEnv(models));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("steno models pull tiny.en"), std::string::npos) << r.err;
  fs::remove_all(models);
}

TEST(TranscribeCliTest, ModelNamesResolveInTheModelsDir) {
  const std::string models = MakeTempDir("models");
  fs::copy_file(TinyModel(), models + "/ggml-tiny-test.bin");
  auto r = RunProcess({StenoBin(), "transcribe", "--model", "tiny-test", "--language", "en",
                       "--beam-size", "1", MediaPath("speech.wav")},
                      ModelsEnv(models));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  fs::remove_all(models);
}

TEST(TranscribeCliTest, HelpAndVersion) {
  auto help = RunProcess({StenoBin(), "transcribe", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--format"), std::string::npos);
  auto version = RunProcess({StenoBin(), "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_NE(version.out.find("steno "), std::string::npos);
  auto none = RunProcess({StenoBin()});
  EXPECT_EQ(none.exit_code, 2);
}

}  // namespace
}  // namespace steno::test
