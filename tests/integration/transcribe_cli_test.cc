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

// Upstream whisper-cli's segments for `media` with the same greedy parameters as Transcribe(),
// from its JSON output (times in ms as "offsets": {"from", "to"}).
json UpstreamSegments(const std::string& media) {
  const std::string out_dir = MakeTempDir("upstream");
  auto upstream =
      RunProcess({WhisperCliBin(), "-m", TinyModel(), "-f", MediaPath(media), "-l", "en", "-bs",
                  "1", "-tpi", "0", "-t", "2", "-np", "-oj", "-of", out_dir + "/upstream"});
  EXPECT_EQ(upstream.exit_code, 0) << upstream.err;
  json expected = upstream.exit_code == 0
                      ? json::parse(ReadFileText(out_dir + "/upstream.json")).at("transcription")
                      : json::array();
  fs::remove_all(out_dir);
  return expected;
}

// Runs upstream whisper-cli and steno on one file with the same greedy parameters and compares
// every segment's text, start and end. whisper-cli's times are compared after the one change
// steno makes to them: clamped to the audio's duration in 10 ms steps (no segment ends after the
// audio; engine/transcript.h).
void ExpectParity(const std::string& media, size_t min_segments) {
  SCOPED_TRACE(media);
  const json want = UpstreamSegments(media);

  auto ours = RunProcess(Transcribe({"--format", "json", MediaPath(media)}));
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  json got = json::parse(ours.out);
  const auto& have = got.at("segments");
  const long long duration_ms = std::llround(got.at("duration").get<double>() * 1000);

  ASSERT_EQ(have.size(), want.size()) << ours.out;
  ASSERT_GE(have.size(), min_segments) << "too few segments for the comparison to mean much";
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(have[i].at("text").get<std::string>(), want[i].at("text").get<std::string>())
        << "segment " << i;
    const auto start_ms = std::llround(have[i].at("start").get<double>() * 1000);
    const auto end_ms = std::llround(have[i].at("end").get<double>() * 1000);
    const auto from = want[i].at("offsets").at("from").get<long long>();
    const auto to = want[i].at("offsets").at("to").get<long long>();
    const long long last_ms = duration_ms / 10 * 10;  // JSON's duration is rounded to ms
    EXPECT_NEAR(start_ms, std::min(from, last_ms), from > last_ms ? 10 : 0) << "segment " << i;
    EXPECT_NEAR(end_ms, std::min(to, last_ms), to > last_ms ? 10 : 0) << "segment " << i;
  }
}

// Every "HH:MM:SS,mmm --> HH:MM:SS,mmm" (SRT) or "HH:MM:SS.mmm --> ..." (VTT) end time, in ms.
std::vector<long long> CueEndsMs(const std::string& doc) {
  std::vector<long long> ends;
  for (size_t at = doc.find("--> "); at != std::string::npos; at = doc.find("--> ", at + 4)) {
    int h = 0, m = 0, s = 0, ms = 0;
    char sep = 0;
    if (std::sscanf(doc.c_str() + at + 4, "%d:%d:%d%c%d", &h, &m, &s, &sep, &ms) == 5) {
      ends.push_back(((h * 60LL + m) * 60 + s) * 1000 + ms);
    }
  }
  return ends;
}

TEST(TranscribeCliTest, MatchesUpstreamWhisperCliSegmentForSegment) {
  ExpectParity("speech.wav", 1);
  ExpectParity("speech_60s.wav", 3);  // two 30 s windows: several segments, times past 30 s
}

// A 1.08 s file once got a segment ending at 22.04 s: whisper.cpp times segments within its 30 s
// window. The control proves the file provokes it upstream; steno's every format stays inside.
TEST(TranscribeCliTest, NoSegmentOrWordEndsAfterTheAudioInAnyFormat) {
  const std::string media = MediaPath("speech_short.wav");
  const json upstream = UpstreamSegments("speech_short.wav");
  long long upstream_end = 0;
  for (const auto& s : upstream) {
    upstream_end = std::max(upstream_end, s.at("offsets").at("to").get<long long>());
  }
  ASSERT_GT(upstream_end, 1080) << "control: upstream no longer runs past this file's end, so "
                                   "this test would prove nothing; pick a file that does";

  auto verbose = RunProcess(Transcribe({"--format", "verbose_json", "--word-timestamps", media}));
  ASSERT_EQ(verbose.exit_code, 0) << verbose.err;
  const json j = json::parse(verbose.out);
  const double duration = j.at("duration").get<double>();
  EXPECT_NEAR(duration, 1.08, 0.01);
  ASSERT_FALSE(j.at("segments").empty());
  for (const auto& s : j.at("segments")) {
    EXPECT_LE(s.at("end").get<double>(), duration) << s.dump();
    EXPECT_LE(s.at("start").get<double>(), s.at("end").get<double>()) << s.dump();
    for (const auto& w : s.at("words")) EXPECT_LE(w.at("end").get<double>(), duration) << w;
  }
  for (const auto& w : j.at("words")) EXPECT_LE(w.at("end").get<double>(), duration) << w;
  EXPECT_TRUE(ValidateVerboseJsonShape(j).empty());

  for (const char* format : {"srt", "vtt"}) {
    SCOPED_TRACE(format);
    auto r = RunProcess(Transcribe({"--format", format, media}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto ends = CueEndsMs(r.out);
    ASSERT_FALSE(ends.empty()) << r.out;
    for (long long end : ends) EXPECT_LE(end, std::llround(duration * 1000)) << r.out;
  }
}

TEST(TranscribeCliTest, EveryContainerDecodesAndTranscribes) {
  for (const char* name : {"speech.wav", "speech_44k_stereo.wav", "speech.mp3", "speech.flac",
                           "speech.ogg", "speech.opus", "speech.m4a", "speech.mp4", "speech.mkv",
                           "speech.webm", "speech.g722", "speech.gsm"}) {
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

// Inputs sharing a stem (speech.wav, speech.flac, speech.g722) keep their extension in the output
// name, so every input has its own output: counted, not just looked for.
TEST(TranscribeCliTest, WritesOneValidOutputPerInputInEachFormat) {
  const std::string out_dir = MakeTempDir("formats");
  const std::vector<std::string> inputs = {"speech.wav", "speech.flac", "speech.g722",
                                           "speech_short.wav"};
  const std::vector<std::string> formats = {"txt", "srt", "vtt", "json", "verbose_json"};
  for (const auto& format : formats) {
    SCOPED_TRACE(format);
    std::vector<std::string> args = {"--format", format, "--output-dir", out_dir};
    for (const auto& in : inputs) args.push_back(MediaPath(in));
    auto r = RunProcess(Transcribe(args));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(out_dir), fs::directory_iterator()),
            static_cast<long>(inputs.size() * formats.size()));
  // A unique stem keeps the plain name.
  EXPECT_TRUE(fs::exists(fs::path(out_dir) / "speech_short.srt"));
  for (const char* stem : {"speech.wav", "speech.flac", "speech.g722", "speech_short"}) {
    SCOPED_TRACE(stem);
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

// The same file name in two folders cannot get two outputs in one folder: refused before any
// work, naming both inputs, with nothing written.
TEST(TranscribeCliTest, InputsThatWouldShareAnOutputAreRefusedBeforeAnyWork) {
  const std::string in_dir = MakeTempDir("same-name");
  fs::create_directories(in_dir + "/a");
  fs::create_directories(in_dir + "/b");
  fs::copy_file(MediaPath("speech.wav"), in_dir + "/a/hello.wav");
  fs::copy_file(MediaPath("speech.flac"), in_dir + "/b/hello.wav");
  const std::string out_dir = MakeTempDir("same-name-out");
  auto r = RunProcess(Transcribe({"--format", "json", "--output-dir", out_dir,
                                  in_dir + "/a/hello.wav", in_dir + "/b/hello.wav"}));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(in_dir + "/a/hello.wav"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(in_dir + "/b/hello.wav"), std::string::npos) << r.err;
  EXPECT_TRUE(DirIsEmpty(out_dir));
  fs::remove_all(in_dir);
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

// A name is the models dir's ggml-NAME.bin: the same transcript as that file given by path.
TEST(TranscribeCliTest, ModelNamesResolveInTheModelsDir) {
  const std::string models = MakeTempDir("models");
  fs::copy_file(TinyModel(), models + "/ggml-tiny-test.bin");
  auto by_name = [&](const std::string& model) {
    return RunProcess(
        {StenoBin(), "transcribe", "--model", model, "--language", "en", "--beam-size", "1",
         "--temperature-inc", "0", "--threads", "1", "--format", "json", MediaPath("speech.wav")},
        ModelsEnv(models));
  };
  auto named = by_name("tiny-test");
  ASSERT_EQ(named.exit_code, 0) << named.err;
  auto by_path = by_name(models + "/ggml-tiny-test.bin");
  ASSERT_EQ(by_path.exit_code, 0) << by_path.err;
  const json got = json::parse(named.out, nullptr, false);
  ASSERT_FALSE(got.is_discarded()) << named.out;
  ASSERT_FALSE(got.at("segments").empty()) << named.out;
  EXPECT_EQ(got, json::parse(by_path.out, nullptr, false));
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
