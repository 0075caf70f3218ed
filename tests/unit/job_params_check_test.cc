// server::CheckJobParams, the one check of a job's parameters: each door (the HTTP API's request
// parser, JobService::Submit, `steno transcribe`'s decode check) refuses a bad value with the
// same code, and the lists come from the engine.
#include "server/job_params_check.h"

#include <fstream>

#include <gtest/gtest.h>

#include "api/job_request.h"
#include "engine/decode_params.h"
#include "engine/languages.h"
#include "server/vad_policy.h"
#include "support/test_env.h"

namespace steno::server {
namespace {

TEST(JobParamsCheckTest, ABadLanguageGetsTheSameCodeThroughEveryDoor) {
  // The API's parser.
  SubmitJob job;
  auto api = api::ParseJobRequest({{"model", {"tiny"}}, {"language", {"klingon"}}},
                                  {"transcribe", ""}, job);
  ASSERT_TRUE(api.has_value());
  EXPECT_EQ(api->status, 400);
  EXPECT_EQ(api->param, "language");
  // JobService::Submit's check.
  JobParams params;
  params.language = "klingon";
  auto service = CheckJobParams(params);
  ASSERT_TRUE(service.has_value());
  // `steno transcribe`'s check of its flags.
  engine::DecodeParams decode;
  decode.language = "klingon";
  auto cli = engine::ValidateDecodeParams(decode);
  ASSERT_FALSE(cli.ok());

  EXPECT_EQ(api->code, "bad_language");
  EXPECT_EQ(service->error.code, "bad_language");
  EXPECT_EQ(cli.error().code, "bad_language");
  EXPECT_EQ(service->error.kind, ErrorKind::kBadInput);
  EXPECT_EQ(service->field, "language");
  EXPECT_EQ(api->message, service->error.message);
  EXPECT_NE(service->error.message.find("klingon"), std::string::npos);
}

TEST(JobParamsCheckTest, LanguagesAreWhispersTable) {
  for (const char* ok : {"en", "de", "yue", "english", "auto"}) {
    EXPECT_TRUE(engine::CheckLanguage(ok).ok()) << ok;
  }
  for (const char* bad : {"", "xx", "EN", "klingon", "en "}) {
    EXPECT_FALSE(engine::CheckLanguage(bad).ok()) << bad;
  }
  EXPECT_FALSE(engine::IsKnownLanguage("auto"));
  // A long value is not echoed whole.
  auto long_one = engine::CheckLanguage(std::string(1000, 'x'));
  ASSERT_FALSE(long_one.ok());
  EXPECT_LT(long_one.error().message.size(), 200u);
}

TEST(JobParamsCheckTest, EachFieldHasItsCode) {
  struct Case {
    const char* field;
    void (*edit)(JobParams&);
  };
  const Case cases[] = {
      {"task", [](JobParams& p) { p.task = "summarise"; }},
      {"language", [](JobParams& p) { p.language = "xx"; }},
      {"temperature", [](JobParams& p) { p.temperature = 1.5f; }},
      {"temperature", [](JobParams& p) { p.temperature = -0.1f; }},
      {"response_format", [](JobParams& p) { p.response_format = "pdf"; }},
      {"response_format", [](JobParams& p) { p.response_format = "txt"; }},  // not an API name
      {"keep_alive", [](JobParams& p) { p.keep_alive_s = -2; }},
      {"timeout", [](JobParams& p) { p.timeout_s = 0; }},
      {"timeout", [](JobParams& p) { p.timeout_s = kMaxJobTimeoutS + 1; }},
      {"device", [](JobParams& p) { p.device = "tpu:0"; }},
      {"device", [](JobParams& p) { p.device = "cuda:1234"; }},
      {"prompt", [](JobParams& p) { p.prompt.assign(kMaxPromptBytes + 1, 'x'); }},
  };
  for (const auto& c : cases) {
    JobParams p;
    c.edit(p);
    auto problem = CheckJobParams(p);
    ASSERT_TRUE(problem.has_value()) << c.field;
    EXPECT_EQ(problem->field, c.field);
    EXPECT_EQ(problem->error.code, std::string("bad_") + c.field);
    EXPECT_EQ(problem->error.kind, ErrorKind::kBadInput);
  }
  // The control: the defaults and every boundary value pass.
  JobParams ok;
  EXPECT_FALSE(CheckJobParams(ok).has_value());
  ok.task = "translate";
  ok.temperature = 1.0f;
  ok.response_format = "verbose_json";
  ok.keep_alive_s = -1;
  ok.timeout_s = kMaxJobTimeoutS;
  ok.device = "cuda:123";
  ok.prompt.assign(kMaxPromptBytes, 'x');
  EXPECT_FALSE(CheckJobParams(ok).has_value());
}

// A valid speech job: the base of the speech cases below.
JobParams Speech() {
  JobParams p;
  p.task = "speech";
  p.input = "Hello from steno.";
  p.voice = "alloy";
  p.response_format = "mp3";
  return p;
}

TEST(JobParamsCheckTest, EachSpeechFieldHasItsCode) {
  struct Case {
    const char* field;
    const char* code;
    void (*edit)(JobParams&);
  };
  const Case cases[] = {
      {"input", "bad_input_text", [](JobParams& p) { p.input.clear(); }},
      {"input", "bad_input_text",
       [](JobParams& p) { p.input.assign(kMaxSpeechInputChars + 1, 'x'); }},
      {"voice", "bad_voice", [](JobParams& p) { p.voice.clear(); }},
      {"voice", "bad_voice", [](JobParams& p) { p.voice = "../etc"; }},
      {"voice", "bad_voice", [](JobParams& p) { p.voice.assign(65, 'v'); }},
      {"speed", "bad_speed", [](JobParams& p) { p.speed = 0.2f; }},
      {"speed", "bad_speed", [](JobParams& p) { p.speed = 4.5f; }},
      // Transcription formats are not speech formats, and the reverse (below).
      {"response_format", "bad_response_format", [](JobParams& p) { p.response_format = "json"; }},
      {"response_format", "bad_response_format", [](JobParams& p) { p.response_format = "MP3"; }},
      {"instructions", "bad_instructions",
       [](JobParams& p) { p.instructions.assign(kMaxSpeechInputChars + 1, 'i'); }},
  };
  for (const auto& c : cases) {
    JobParams p = Speech();
    c.edit(p);
    auto problem = CheckJobParams(p);
    ASSERT_TRUE(problem.has_value()) << c.field;
    EXPECT_EQ(problem->field, c.field);
    EXPECT_EQ(problem->error.code, c.code);
    EXPECT_EQ(problem->error.kind, ErrorKind::kBadInput);
  }
  // The control: every speech format and the boundaries pass; 4096 characters of multi-byte
  // text are 4096 characters, not bytes.
  for (const char* format : {"mp3", "opus", "aac", "flac", "wav", "pcm"}) {
    JobParams p = Speech();
    p.response_format = format;
    EXPECT_FALSE(CheckJobParams(p).has_value()) << format;
  }
  JobParams edge = Speech();
  edge.speed = 0.25f;
  edge.input.clear();
  for (size_t i = 0; i < kMaxSpeechInputChars; ++i) edge.input += "\xc3\xa9";  // é
  edge.voice = "en-US_v1.2";
  EXPECT_FALSE(CheckJobParams(edge).has_value());
  edge.speed = 4.0f;
  EXPECT_FALSE(CheckJobParams(edge).has_value());
  // A speech format asked of a transcription.
  JobParams transcribe;
  transcribe.response_format = "mp3";
  ASSERT_TRUE(CheckJobParams(transcribe).has_value());
  EXPECT_EQ(CheckJobParams(transcribe)->field, "response_format");
}

TEST(JobParamsCheckTest, TheModelMustBeAbleToDoTheTask) {
  using models::Capability;
  const models::Capabilities whisper{Capability::kTranscribe, Capability::kTranslate};
  const models::Capabilities tts{Capability::kSpeech};
  EXPECT_FALSE(CheckModelTask("base", "transcribe", whisper).has_value());
  EXPECT_FALSE(CheckModelTask("base", "translate", whisper).has_value());
  EXPECT_FALSE(CheckModelTask("tts", "speech", tts).has_value());
  auto speech_of_whisper = CheckModelTask("base", "speech", whisper);
  ASSERT_TRUE(speech_of_whisper.has_value());
  EXPECT_EQ(speech_of_whisper->field, "model");
  EXPECT_EQ(speech_of_whisper->error.code, "model_cannot_do_task");
  EXPECT_NE(speech_of_whisper->error.message.find("'base'"), std::string::npos);
  auto transcribe_of_tts = CheckModelTask("tts", "transcribe", tts);
  ASSERT_TRUE(transcribe_of_tts.has_value());
  EXPECT_EQ(transcribe_of_tts->field, "model");
  // A model with no capability (an http server) is named with where it is served.
  auto http = CheckModelTask("llama", "transcribe", {});
  ASSERT_TRUE(http.has_value());
  EXPECT_NE(http->error.message.find("/v1/servers/llama"), std::string::npos);
}

TEST(JobParamsCheckTest, SpeechParamsSurviveTheStore) {
  JobParams p = Speech();
  p.speed = 1.5f;
  p.instructions = "Cheerfully.";
  p.response_format = "flac";
  auto back = JobParamsFromJson(JobParamsToJson(p));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->task, "speech");
  EXPECT_EQ(back->input, p.input);
  EXPECT_EQ(back->voice, "alloy");
  EXPECT_FLOAT_EQ(back->speed, 1.5f);
  EXPECT_EQ(back->instructions, "Cheerfully.");
  EXPECT_EQ(back->response_format, "flac");
  // A transcription's stored params carry none of them.
  EXPECT_EQ(JobParamsToJson(JobParams{}).find("voice"), std::string::npos);
}

}  // namespace
}  // namespace steno::server

namespace steno::server {
namespace {

// The decision of a call expected to succeed.
std::optional<VadSettings> Decided(const JobParams& params, double seconds, const VadPolicy& p) {
  auto d = DecideVad(params, seconds, p);
  EXPECT_TRUE(d.ok()) << d.error().message;
  return d.ok() ? *d : std::nullopt;
}

// DecideVad: the request's chunking_strategy against the server's --vad default.
TEST(VadPolicyTest, RequestAndServerDefaultDecide) {
  test::ScopedTempDir dir("steno-vad-policy");
  const std::string model = dir.path + "/ggml-silero-v6.2.0.bin";
  VadPolicy with{VadPolicy::Mode::kAuto, 30, model};
  std::ofstream(model) << "any file counts as installed here";
  VadPolicy without{VadPolicy::Mode::kAuto, 30, dir.path + "/missing.bin"};

  JobParams asked;
  asked.chunking_strategy = "server_vad";
  asked.vad = VadSettings{0.4f, 100, 500};
  auto d = DecideVad(asked, 5, with);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, std::optional<VadSettings>(VadSettings{0.4f, 100, 500}));
  // Asked for explicitly without the model: refused, with the pull hint.
  d = DecideVad(asked, 5, without);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().kind, ErrorKind::kBadInput);
  EXPECT_EQ(d.error().code, "vad_model_missing");
  EXPECT_NE(d.error().message.find("steno models pull silero-v6.2.0"), std::string::npos);

  JobParams auto_asked;
  auto_asked.chunking_strategy = "auto";
  EXPECT_EQ(Decided(auto_asked, 5, with), std::optional<VadSettings>(VadSettings{}));
  EXPECT_EQ(Decided(auto_asked, 5, without), std::nullopt);  // quietly without

  // Not asked: the server's default. auto: only for audio at least min_duration_s long.
  JobParams plain;
  EXPECT_EQ(Decided(plain, 29.9, with), std::nullopt);
  EXPECT_EQ(Decided(plain, 30, with), std::optional<VadSettings>(VadSettings{}));
  EXPECT_EQ(Decided(plain, 600, without), std::nullopt);
  VadPolicy on = with;
  on.mode = VadPolicy::Mode::kOn;
  EXPECT_EQ(Decided(plain, 1, on), std::optional<VadSettings>(VadSettings{}));
  VadPolicy off = with;
  off.mode = VadPolicy::Mode::kOff;
  EXPECT_EQ(Decided(plain, 600, off), std::nullopt);
  // A stray decision in the params is never trusted without the request asking.
  plain.vad = VadSettings{0.9f, 0, 0};
  EXPECT_EQ(Decided(plain, 600, off), std::nullopt);

  EXPECT_EQ(ParseVadMode("on"), VadPolicy::Mode::kOn);
  EXPECT_EQ(ParseVadMode("auto"), VadPolicy::Mode::kAuto);
  EXPECT_EQ(ParseVadMode("off"), VadPolicy::Mode::kOff);
  EXPECT_FALSE(ParseVadMode("yes").has_value());
}

}  // namespace
}  // namespace steno::server
