// Voice activity detection end to end: `steno transcribe --vad` and the OpenAI endpoints'
// chunking_strategy against real processes, with the real Silero model (../shared/models,
// linked into a temp models dir) and the tiny random-weight Whisper model (garbage text: the
// assertions are about times, codes and fields).
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api_test_server.h"
#include "core/vad_settings.h"
#include "support/gapped_speech.h"
#include "support/process.h"
#include "support/test_env.h"

namespace steno::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr double kMargin = 0.3;  // beyond the VAD's own boundary error (0.2 s)

std::vector<std::string> Transcribe(const std::string& file, std::vector<std::string> extra) {
  std::vector<std::string> argv = {StenoBin(),  "transcribe",        file, "--model",
                                   TinyModel(), "--language",        "en", "--beam-size",
                                   "1",         "--temperature-inc", "0",  "--threads",
                                   "2",         "--device",          "cpu"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

ProcessOptions ModelsEnv(const std::string& models_dir) {
  ProcessOptions o;
  o.env = {{"STENO_MODELS", models_dir}};
  return o;
}

// [1 s][speech][12 s of silence][speech][1 s], written as a WAV file in `dir`.
GappedSpeech WriteGapped(const std::string& dir) {
  GappedSpeech g = MakeGappedSpeech(1.0, 12.0, 1.0);
  WriteWav16k(dir + "/gapped.wav", g.pcm);
  return g;
}

// No segment starts, ends or lies inside the inserted silence, and the times are the input's:
// with the silence cut out the decoded audio ends well before the second copy of the speech
// begins, so a segment reaching it was mapped back.
void ExpectOriginalTimeline(const json& verbose, const GappedSpeech& g) {
  ASSERT_TRUE(verbose.contains("segments")) << verbose.dump();
  EXPECT_NEAR(verbose["duration"].get<double>(), g.duration(), 0.05);
  const auto& segs = verbose["segments"];
  ASSERT_FALSE(segs.empty()) << verbose.dump();
  const double quiet_from = g.first_end + kMargin, quiet_to = g.second_start - kMargin;
  for (const auto& s : segs) {
    const double start = s["start"], end = s["end"];
    EXPECT_FALSE(start > quiet_from && start < quiet_to) << "starts in the silence: " << s.dump();
    EXPECT_FALSE(end > quiet_from && end < quiet_to) << "ends in the silence: " << s.dump();
    EXPECT_GE(start, g.first_start - kMargin) << s.dump();
    EXPECT_LE(end, g.second_end + kMargin) << s.dump();
  }
  EXPECT_GE(segs.back()["end"].get<double>(), g.second_start) << "not in the input's timeline";
}

class VadCliTest : public ::testing::Test {
 protected:
  ScopedTempDir dir{"steno-vad-cli"};
  std::string models = dir.path + "/models";
  void SetUp() override { fs::create_directories(models); }
};

TEST_F(VadCliTest, VadWithoutTheModelIsAUsageErrorWithThePullHint) {
  auto r = RunProcess(Transcribe(MediaPath("speech.wav"), {"--vad"}), ModelsEnv(models));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("steno models pull silero-v6.2.0"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(VadCliTest, VadKeepsTimesInTheInputsTimeline) {
  const std::string silero = SileroModel();
  if (silero.empty()) GTEST_SKIP() << "the real VAD model is not at ../shared/models";
  fs::create_symlink(silero, models + "/ggml-silero-v6.2.0.bin");
  const GappedSpeech g = WriteGapped(dir.path);
  auto r = RunProcess(Transcribe(dir.path + "/gapped.wav", {"--vad", "--format", "verbose_json"}),
                      ModelsEnv(models));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectOriginalTimeline(json::parse(r.out), g);
}

// The OpenAI endpoints: one server (--vad auto, the default, with --vad-min-duration 20s: the
// gapped file is longer, speech.wav shorter), the VAD model installed for the tests that need it.
class VadApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    audio_ = new ScopedTempDir("steno-vad-api");
    gapped_ = new GappedSpeech(WriteGapped(audio_->path));
    server_ = new ApiTestServer({"--vad-min-duration", "20s"});
  }
  static void TearDownTestSuite() {
    delete server_;
    delete gapped_;
    delete audio_;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove(VadPath(), ec);
  }
  static std::string VadPath() { return server_->models + "/ggml-silero-v6.2.0.bin"; }
  static bool InstallVad() {
    const std::string silero = SileroModel();
    if (silero.empty()) return false;
    fs::create_symlink(silero, VadPath());
    return true;
  }
  static httplib::Result Post(httplib::MultipartFormDataItems extra,
                              const std::string& path = "/v1/audio/transcriptions",
                              const std::string& file = "") {
    const std::string audio = file.empty() ? audio_->path + "/gapped.wav" : file;
    httplib::MultipartFormDataItems items = {
        {"file", ReadFileText(audio), fs::path(audio).filename().string(), "audio/wav"},
        {"model", "tiny", "", ""},
        {"language", "en", "", ""}};
    items.insert(items.end(), extra.begin(), extra.end());
    auto c = server_->Client();
    return c.Post(path, items);
  }
  static json Job(const std::string& id) {
    auto c = server_->Client();
    auto r = c.Get("/v1/jobs/" + id);
    return r ? json::parse(r->body, nullptr, false) : json();
  }
  static ScopedTempDir* audio_;
  static GappedSpeech* gapped_;
  static ApiTestServer* server_;
};
ScopedTempDir* VadApiTest::audio_ = nullptr;
GappedSpeech* VadApiTest::gapped_ = nullptr;
ApiTestServer* VadApiTest::server_ = nullptr;

void ExpectChunkingError(const httplib::Result& r, const std::string& code) {
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  auto body = json::parse(r->body, nullptr, false);
  ASSERT_TRUE(body.contains("error")) << r->body;
  EXPECT_EQ(body["error"]["param"], "chunking_strategy") << r->body;
  EXPECT_EQ(body["error"]["code"], code) << r->body;
}

TEST_F(VadApiTest, BadChunkingStrategyIs400NamingTheField) {
  ExpectChunkingError(Post({{"chunking_strategy", "fixed", "", ""}}), "bad_chunking_strategy");
  ExpectChunkingError(
      Post({{"chunking_strategy", R"({"type":"server_vad","threshold":3})", "", ""}},
           "/v1/audio/translations"),
      "bad_chunking_strategy");
  ExpectChunkingError(Post({{"chunking_strategy[type]", "semantic_vad", "", ""}}),
                      "bad_chunking_strategy");
  // POST /v1/jobs with a JSON body names a server path; the field is checked first.
  auto c = server_->Client();
  auto r = c.Post("/v1/jobs",
                  R"({"model":"tiny","path":"/nonexistent.wav",)"
                  R"("chunking_strategy":{"type":"server_vad","silence_duration_ms":-5}})",
                  "application/json");
  ExpectChunkingError(r, "bad_chunking_strategy");
  auto jobs = json::parse(c.Get("/v1/jobs")->body);
  EXPECT_TRUE(jobs["data"].empty()) << jobs.dump();  // nothing was accepted
}

TEST_F(VadApiTest, ExplicitVadWithoutTheModelIs400AutoRunsWithout) {
  ExpectChunkingError(Post({{"chunking_strategy[type]", "server_vad", "", ""}}),
                      "vad_model_missing");
  auto refused = Post({{"chunking_strategy", R"({"type":"server_vad"})", "", ""}});
  ASSERT_TRUE(refused);
  EXPECT_NE(refused->body.find("steno models pull silero-v6.2.0"), std::string::npos)
      << refused->body;

  auto r = Post({{"chunking_strategy", "auto", "", ""}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(Job(r->get_header_value("X-Steno-Job-Id"))["vad"].is_null());
}

TEST_F(VadApiTest, ServerVadTranscribesOnlySpeechInTheOriginalTimeline) {
  if (!InstallVad()) GTEST_SKIP() << "the real VAD model is not at ../shared/models";
  // The way OpenAI's clients send the object in a multipart form.
  auto r = Post({{"chunking_strategy[type]", "server_vad", "", ""},
                 {"chunking_strategy[threshold]", "0.5", "", ""},
                 {"chunking_strategy[silence_duration_ms]", "300", "", ""},
                 {"response_format", "verbose_json", "", ""}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  ExpectOriginalTimeline(json::parse(r->body), *gapped_);
  const json job = Job(r->get_header_value("X-Steno-Job-Id"));
  ASSERT_TRUE(job["vad"].is_object()) << job.dump();
  EXPECT_EQ(job["vad"]["silence_duration_ms"], 300);
  EXPECT_EQ(job["vad"]["prefix_padding_ms"], 300);  // OpenAI's default for the field left out
}

TEST_F(VadApiTest, ServerDefaultAppliesByDuration) {
  if (!InstallVad()) GTEST_SKIP() << "the real VAD model is not at ../shared/models";
  ASSERT_GT(gapped_->duration(), 20.0);
  auto longer = Post({{"response_format", "verbose_json", "", ""}});
  ASSERT_TRUE(longer);
  ASSERT_EQ(longer->status, 200) << longer->body;
  const json job = Job(longer->get_header_value("X-Steno-Job-Id"));
  ASSERT_TRUE(job["vad"].is_object()) << job.dump();
  EXPECT_EQ(job["vad"]["prefix_padding_ms"], VadSettings{}.prefix_padding_ms);  // whisper.cpp's
  ExpectOriginalTimeline(json::parse(longer->body), *gapped_);

  auto shorter = Post({}, "/v1/audio/transcriptions", MediaPath("speech.wav"));
  ASSERT_TRUE(shorter);
  ASSERT_EQ(shorter->status, 200) << shorter->body;
  EXPECT_TRUE(Job(shorter->get_header_value("X-Steno-Job-Id"))["vad"].is_null());
}

TEST(VadServeTest, VadOnWithoutTheModelRefusesToStart) {
  ScopedTempDir dir("steno-vad-serve");
  ProcessOptions o;
  o.timeout_s = 60;
  auto r = RunProcess({StenoBin(), "serve", "--port", "0", "--data-dir", dir.path + "/data",
                       "--models-dir", dir.path, "--device", "cpu", "--vad", "on"},
                      o);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("steno models pull silero-v6.2.0"), std::string::npos) << r.err;
  auto bad = RunProcess({StenoBin(), "serve", "--port", "0", "--data-dir", dir.path + "/data",
                         "--models-dir", dir.path, "--vad", "sometimes"},
                        o);
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("--vad"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace steno::test
