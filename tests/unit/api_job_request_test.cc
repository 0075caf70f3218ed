// ParseJobRequest: the request fields every transcription route shares, with a 400 naming the
// field for each bad value.
#include "api/job_request.h"

#include <gtest/gtest.h>

namespace steno::api {
namespace {

std::optional<ApiError> Parse(const RequestFields& f, server::SubmitJob& out,
                              JobRequestRules rules = {"transcribe", ""}) {
  return ParseJobRequest(f, rules, out);
}

TEST(ApiJobRequestTest, FullOpenAiRequestFillsTheJob) {
  server::SubmitJob job;
  auto e = Parse({{"model", {"tiny"}},
                  {"language", {"EN"}},
                  {"prompt", {"Steno, GPUs."}},
                  {"temperature", {"0.2"}},
                  {"response_format", {"verbose_json"}},
                  {"timestamp_granularities[]", {"segment", "word"}},
                  {"priority", {"high"}},
                  {"keep_alive", {"5m"}},
                  {"device", {"cuda:1"}},
                  {"timeout", {"90"}},
                  {"stream", {"false"}},
                  {"some_future_option", {"x"}}},
                 job);
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(job.model, "tiny");
  EXPECT_EQ(job.params.task, "transcribe");
  EXPECT_EQ(job.params.language, "en");
  EXPECT_EQ(job.params.prompt, "Steno, GPUs.");
  EXPECT_FLOAT_EQ(job.params.temperature, 0.2f);
  EXPECT_EQ(job.params.response_format, "verbose_json");
  EXPECT_TRUE(job.params.word_timestamps);
  EXPECT_EQ(job.priority, Priority::kHigh);
  EXPECT_EQ(job.params.keep_alive_s, 300);
  EXPECT_EQ(job.params.device, "cuda:1");
  EXPECT_EQ(job.params.timeout_s, 90);
}

TEST(ApiJobRequestTest, DefaultsAndTheDefaultModel) {
  server::SubmitJob job;
  ASSERT_FALSE(Parse({{"model", {"tiny"}}}, job));
  EXPECT_EQ(job.params.response_format, "json");
  EXPECT_FALSE(job.params.word_timestamps);
  EXPECT_EQ(job.params.device, "");
  EXPECT_FALSE(job.params.keep_alive_s.has_value());

  server::SubmitJob missing;
  auto e = Parse({}, missing);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "missing_model");
  EXPECT_EQ(e->param, "model");

  server::SubmitJob aliased;
  ASSERT_FALSE(Parse({{"model", {"whisper-1"}}}, aliased, {"transcribe", "base.en"}));
  EXPECT_EQ(aliased.model, "base.en");
  server::SubmitJob defaulted;
  ASSERT_FALSE(Parse({}, defaulted, {"translate", "base"}));
  EXPECT_EQ(defaulted.model, "base");
  EXPECT_EQ(defaulted.params.task, "translate");
}

TEST(ApiJobRequestTest, EachBadValueIsA400NamingItsField) {
  const std::pair<RequestFields, std::pair<const char*, const char*>> cases[] = {
      {{{"temperature", {"hot"}}}, {"bad_temperature", "temperature"}},
      {{{"temperature", {"1.5"}}}, {"bad_temperature", "temperature"}},
      {{{"temperature", {"nan"}}}, {"bad_temperature", "temperature"}},
      {{{"response_format", {"xml"}}}, {"bad_response_format", "response_format"}},
      {{{"timestamp_granularities[]", {"char"}}},
       {"bad_timestamp_granularity", "timestamp_granularities[]"}},
      {{{"priority", {"urgent"}}}, {"bad_priority", "priority"}},
      {{{"keep_alive", {"forever"}}}, {"bad_keep_alive", "keep_alive"}},
      {{{"keep_alive", {"-5"}}}, {"bad_keep_alive", "keep_alive"}},
      {{{"device", {"gpu7"}}}, {"bad_device", "device"}},
      {{{"device", {"cuda:x"}}}, {"bad_device", "device"}},
      {{{"timeout", {"0"}}}, {"bad_timeout", "timeout"}},
      {{{"stream", {"true"}}}, {"streaming_not_supported", "stream"}},
      {{{"word_timestamps", {"maybe"}}}, {"bad_word_timestamps", "word_timestamps"}},
      {{{"language", {std::string(40, 'x')}}}, {"bad_language", "language"}},
      {{{"language", {"klingon"}}}, {"bad_language", "language"}},
      {{{"device", {"cuda"}}}, {"bad_device", "device"}},
  };
  for (const auto& [fields, expected] : cases) {
    RequestFields f = fields;
    f["model"] = {"tiny"};
    server::SubmitJob job;
    auto e = Parse(f, job);
    ASSERT_TRUE(e) << expected.first;
    EXPECT_EQ(e->status, 400);
    EXPECT_EQ(e->code, expected.first);
    EXPECT_EQ(e->param, expected.second);
  }
  server::SubmitJob job;
  auto task = Parse({{"model", {"tiny"}}, {"task", {"summarize"}}}, job, {"", ""});
  ASSERT_TRUE(task);
  EXPECT_EQ(task->code, "bad_task");
}

TEST(ApiJobRequestTest, GranularitiesAcceptEveryClientSpelling) {
  for (const RequestFields& f : {RequestFields{{"timestamp_granularities", {"word"}}},
                                 RequestFields{{"timestamp_granularities[]", {"segment,word"}}},
                                 RequestFields{{"word_timestamps", {"true"}}}}) {
    RequestFields g = f;
    g["model"] = {"tiny"};
    server::SubmitJob job;
    ASSERT_FALSE(Parse(g, job));
    EXPECT_TRUE(job.params.word_timestamps);
  }
}

TEST(ApiJobRequestTest, KeepAliveForms) {
  EXPECT_EQ(ParseKeepAlive("30"), 30);
  EXPECT_EQ(ParseKeepAlive("30s"), 30);
  EXPECT_EQ(ParseKeepAlive("5m"), 300);
  EXPECT_EQ(ParseKeepAlive("2h"), 7200);
  EXPECT_EQ(ParseKeepAlive("0"), 0);
  EXPECT_EQ(ParseKeepAlive("-1"), -1);
  EXPECT_FALSE(ParseKeepAlive("-1m"));
  EXPECT_FALSE(ParseKeepAlive(""));
  EXPECT_FALSE(ParseKeepAlive("5 minutes"));
  EXPECT_FALSE(ParseKeepAlive("99999999h"));
}

TEST(ApiJobRequestTest, JsonBodiesBecomeFields) {
  RequestFields f;
  auto body = nlohmann::json::parse(
      R"({"model":"tiny","temperature":0.5,"word_timestamps":true,"keep_alive":60,
          "timestamp_granularities":["segment","word"],"prompt":null})");
  ASSERT_FALSE(FieldsFromJson(body, f));
  server::SubmitJob job;
  ASSERT_FALSE(Parse(f, job));
  EXPECT_FLOAT_EQ(job.params.temperature, 0.5f);
  EXPECT_TRUE(job.params.word_timestamps);
  EXPECT_EQ(job.params.keep_alive_s, 60);
  EXPECT_EQ(f.count("prompt"), 0u) << "null is absent";

  RequestFields nested;
  auto e = FieldsFromJson(nlohmann::json::parse(R"({"model":{"name":"tiny"}})"), nested);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "model");
  RequestFields array_body;
  EXPECT_TRUE(FieldsFromJson(nlohmann::json::parse("[1,2]"), array_body));
}

TEST(ApiJobRequestTest, SpeechRequestsFillTheJob) {
  server::SubmitJob job;
  auto e = Parse({{"model", {"tts"}},
                  {"input", {"Hello there."}},
                  {"voice", {"alloy"}},
                  {"speed", {"1.25"}},
                  {"instructions", {"Slowly."}},
                  {"stream_format", {"audio"}}},
                 job, {"speech", ""});
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(job.params.task, "speech");
  EXPECT_EQ(job.params.input, "Hello there.");
  EXPECT_EQ(job.params.voice, "alloy");
  EXPECT_FLOAT_EQ(job.params.speed, 1.25f);
  EXPECT_EQ(job.params.instructions, "Slowly.");
  EXPECT_EQ(job.params.response_format, "mp3");  // OpenAI's default for speech
  // The jobs API names the task in the body.
  server::SubmitJob async;
  ASSERT_FALSE(Parse({{"model", {"tts"}},
                      {"task", {"speech"}},
                      {"input", {"x"}},
                      {"voice", {"v"}},
                      {"response_format", {"wav"}}},
                     async, {"", ""}));
  EXPECT_EQ(async.params.task, "speech");
  EXPECT_EQ(async.params.response_format, "wav");
}

TEST(ApiJobRequestTest, EachBadSpeechValueIsA400NamingItsField) {
  const RequestFields base = {{"model", {"tts"}}, {"input", {"Hi."}}, {"voice", {"alloy"}}};
  struct Case {
    const char* field;
    const char* value;
    const char* code;
  };
  const Case cases[] = {
      {"input", "", "bad_input_text"},
      {"voice", "", "bad_voice"},
      {"voice", "a voice", "bad_voice"},
      {"speed", "fast", "bad_speed"},
      {"speed", "10", "bad_speed"},
      {"response_format", "srt", "bad_response_format"},
      {"stream_format", "sse", "bad_stream_format"},
  };
  for (const auto& c : cases) {
    RequestFields f = base;
    f[c.field] = {c.value};
    server::SubmitJob job;
    auto e = Parse(f, job, {"speech", ""});
    ASSERT_TRUE(e) << c.field << "=" << c.value;
    EXPECT_EQ(e->status, 400);
    EXPECT_EQ(e->param, c.field);
    EXPECT_EQ(e->code, c.code);
  }
  RequestFields no_voice = base;
  no_voice.erase("voice");
  server::SubmitJob job;
  auto e = Parse(no_voice, job, {"speech", ""});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "voice");
}

}  // namespace
}  // namespace steno::api

namespace steno::api {
namespace {

// OpenAI's chunking_strategy in each spelling a client uses.
TEST(ApiChunkingStrategyTest, AutoObjectAndBracketedFormsAreRead) {
  server::SubmitJob none;
  ASSERT_FALSE(Parse({{"model", {"tiny"}}}, none));
  EXPECT_EQ(none.params.chunking_strategy, "");
  EXPECT_FALSE(none.params.vad.has_value());

  server::SubmitJob auto_job;
  ASSERT_FALSE(Parse({{"model", {"tiny"}}, {"chunking_strategy", {"auto"}}}, auto_job));
  EXPECT_EQ(auto_job.params.chunking_strategy, "auto");
  EXPECT_FALSE(auto_job.params.vad.has_value());  // the server decides at Submit

  server::SubmitJob object;
  auto e = Parse({{"model", {"tiny"}},
                  {"chunking_strategy",
                   {R"({"type":"server_vad","threshold":0.3,"silence_duration_ms":800})"}}},
                 object);
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(object.params.chunking_strategy, "server_vad");
  ASSERT_TRUE(object.params.vad.has_value());
  // The field left out takes OpenAI's default.
  EXPECT_EQ(*object.params.vad,
            (VadSettings{0.3f, kOpenAiServerVadDefaults.prefix_padding_ms, 800}));

  // What the official clients send in a multipart form.
  server::SubmitJob brackets;
  e = Parse({{"model", {"tiny"}},
             {"chunking_strategy[type]", {"server_vad"}},
             {"chunking_strategy[prefix_padding_ms]", {"120"}}},
            brackets);
  ASSERT_FALSE(e) << e->message;
  ASSERT_TRUE(brackets.params.vad.has_value());
  EXPECT_EQ(*brackets.params.vad, (VadSettings{0.5f, 120, 200}));

  // A JSON body's nested object.
  RequestFields fields;
  ASSERT_FALSE(FieldsFromJson(
      nlohmann::json::parse(
          R"({"model":"tiny","chunking_strategy":{"type":"server_vad","threshold":0.6}})"),
      fields));
  server::SubmitJob json_job;
  ASSERT_FALSE(Parse(fields, json_job));
  ASSERT_TRUE(json_job.params.vad.has_value());
  EXPECT_FLOAT_EQ(json_job.params.vad->threshold, 0.6f);
}

TEST(ApiChunkingStrategyTest, EveryBadValueIs400NamingTheField) {
  const std::vector<RequestFields> bad = {
      {{"chunking_strategy", {"fixed"}}},
      {{"chunking_strategy", {""}}},
      {{"chunking_strategy", {"{not json"}}},
      {{"chunking_strategy", {R"({"type":"client_vad"})"}}},
      {{"chunking_strategy", {R"({"threshold":0.5})"}}},
      {{"chunking_strategy", {R"({"type":"server_vad","threshold":"high"})"}}},
      {{"chunking_strategy", {R"({"type":"server_vad","threshold":1.5})"}}},
      {{"chunking_strategy", {R"({"type":"server_vad","prefix_padding_ms":-1})"}}},
      {{"chunking_strategy", {R"({"type":"server_vad","prefix_padding_ms":2.5})"}}},
      {{"chunking_strategy", {R"({"type":"server_vad","silence_duration_ms":600000})"}}},
      {{"chunking_strategy", {R"({"type":"server_vad","eagerness":"high"})"}}},
      {{"chunking_strategy[type]", {"semantic_vad"}}},
      {{"chunking_strategy[type]", {"server_vad"}}, {"chunking_strategy[threshold]", {"x"}}},
  };
  for (RequestFields f : bad) {
    f["model"] = {"tiny"};
    server::SubmitJob job;
    auto e = Parse(f, job);
    ASSERT_TRUE(e.has_value()) << f.begin()->first << "=" << f.begin()->second[0];
    EXPECT_EQ(e->status, 400);
    EXPECT_EQ(e->code, "bad_chunking_strategy") << e->message;
    EXPECT_EQ(e->param, "chunking_strategy") << e->message;
  }
}

}  // namespace
}  // namespace steno::api
