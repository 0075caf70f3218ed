// `steno serve` end to end on loopback (CPU, tiny random model): every endpoint's round trip,
// the OpenAI formats with their content types, async jobs with paging, server-side paths, live
// events in order, cancel, model load/unload and `steno ps`, API keys, CORS, and a clean stop.
#include <atomic>
#include <filesystem>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "api_test_server.h"
#include "support/process.h"

namespace steno::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

httplib::Result Transcribe(httplib::Client& c, const std::string& format,
                           const std::string& path = "/v1/audio/transcriptions",
                           std::vector<httplib::MultipartFormData> extra = {}) {
  httplib::MultipartFormDataItems items = {FilePart("speech.wav"), Field("model", "tiny"),
                                           Field("language", "en"),
                                           Field("response_format", format)};
  for (auto& e : extra) items.push_back(std::move(e));
  return c.Post(path, items);
}

TEST(ApiServerTest, HealthMonitoringAndModels) {
  ApiTestServer s;
  auto c = s.Client();
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = c.Get("/readyz");
  ASSERT_TRUE(ready) << httplib::to_string(ready.error());
  EXPECT_EQ(ready->status, 200);

  auto models = JsonOf(c.Get("/v1/models"));
  EXPECT_EQ(models["object"], "list");
  ASSERT_EQ(models["data"].size(), 1u) << models.dump();
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_EQ(models["data"][0]["object"], "model");
  // From the model catalog: its runner kind, what it can do, where its memory figure comes from.
  EXPECT_EQ(models["data"][0]["kind"], "whisper");
  EXPECT_EQ(models["data"][0]["capabilities"], json::array({"transcribe", "translate"}));
  EXPECT_EQ(models["data"][0]["footprint"], "estimated");
  auto one = c.Get("/v1/models/tiny");
  ASSERT_TRUE(one) << httplib::to_string(one.error());
  EXPECT_EQ(one->status, 200);

  auto gpus = JsonOf(c.Get("/v1/gpus"));
  EXPECT_EQ(gpus["object"], "list");
  EXPECT_TRUE(gpus["data"].empty()) << "--device cpu: no GPU sampled";
  auto memory = JsonOf(c.Get("/api/memory_status"));
  EXPECT_TRUE(memory["devices"].is_array());
  EXPECT_FALSE(memory["cpu"].is_null());

  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  EXPECT_NE(metrics->body.find("# TYPE steno_jobs gauge"), std::string::npos);
  EXPECT_NE(metrics->body.find("steno_queue_length{priority=\"normal\"} 0"), std::string::npos);
  EXPECT_NE(metrics->body.find("steno_http_requests_total{route=\"/healthz\""), std::string::npos);
}

TEST(ApiServerTest, OpenAiTranscriptionInEveryFormat) {
  ApiTestServer s;
  auto c = s.Client();

  auto j = Transcribe(c, "json");
  ASSERT_TRUE(j);
  ASSERT_EQ(j->status, 200) << j->body;
  EXPECT_EQ(j->get_header_value("Content-Type"), "application/json");
  auto body = JsonOf(j);
  ASSERT_TRUE(body.contains("text")) << j->body;
  EXPECT_TRUE(body["text"].is_string());
  EXPECT_FALSE(j->get_header_value("X-Steno-Job-Id").empty());

  auto text = Transcribe(c, "text");
  ASSERT_TRUE(text) << httplib::to_string(text.error());
  ASSERT_EQ(text->status, 200) << text->body;
  EXPECT_EQ(text->get_header_value("Content-Type"), "text/plain; charset=utf-8");

  auto srt = Transcribe(c, "srt");
  ASSERT_TRUE(srt) << httplib::to_string(srt.error());
  ASSERT_EQ(srt->status, 200) << srt->body;
  EXPECT_EQ(srt->get_header_value("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_TRUE(std::regex_search(srt->body, std::regex(R"(^1\r?\n00:00:\d\d,\d{3} --> )")))
      << srt->body;

  auto vtt = Transcribe(c, "vtt");
  ASSERT_TRUE(vtt) << httplib::to_string(vtt.error());
  ASSERT_EQ(vtt->status, 200) << vtt->body;
  EXPECT_EQ(vtt->body.rfind("WEBVTT", 0), 0u) << vtt->body;

  auto verbose = Transcribe(
      c, "verbose_json", "/v1/audio/transcriptions",
      {Field("timestamp_granularities[]", "word"), Field("timestamp_granularities[]", "segment")});
  ASSERT_TRUE(verbose) << httplib::to_string(verbose.error());
  ASSERT_EQ(verbose->status, 200) << verbose->body;
  auto v = JsonOf(verbose);
  EXPECT_EQ(v["task"], "transcribe");
  EXPECT_GT(v["duration"].get<double>(), 5.0);
  EXPECT_TRUE(v["segments"].is_array());
  EXPECT_FALSE(v["segments"].empty());
  EXPECT_TRUE(v.contains("words")) << "word granularity asked for";

  auto translation = Transcribe(c, "verbose_json", "/v1/audio/translations");
  ASSERT_TRUE(translation) << httplib::to_string(translation.error());
  ASSERT_EQ(translation->status, 200) << translation->body;
  EXPECT_EQ(JsonOf(translation)["task"], "translate");

  // Synchronous requests are kept in memory only: none of them is a stored job.
  auto jobs = JsonOf(c.Get("/v1/jobs"));
  EXPECT_TRUE(jobs["data"].empty()) << jobs.dump();
}

TEST(ApiServerTest, AsyncJobsResultsAndPaging) {
  ApiTestServer s;
  auto c = s.Client();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(PostJob(c));
  for (const auto& id : ids) {
    auto job = WaitForJob(c, id);
    EXPECT_EQ(job["state"], "completed") << job.dump();
    EXPECT_EQ(job["result_url"], "/v1/jobs/" + id + "/result");
  }
  auto result = c.Get("/v1/jobs/" + ids[0] + "/result");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_TRUE(JsonOf(result).contains("text"));
  auto srt = c.Get("/v1/jobs/" + ids[0] + "/result?format=srt");
  ASSERT_TRUE(srt) << httplib::to_string(srt.error());
  ASSERT_EQ(srt->status, 200);
  EXPECT_EQ(srt->body.rfind("1\n", 0), 0u) << srt->body;
  auto verbose = c.Get("/v1/jobs/" + ids[0] + "/result?format=verbose_json");
  EXPECT_TRUE(JsonOf(verbose)["segments"].is_array());

  // Newest first, two per page, then the last one.
  auto page1 = JsonOf(c.Get("/v1/jobs?limit=2"));
  ASSERT_EQ(page1["data"].size(), 2u);
  EXPECT_EQ(page1["data"][0]["id"], ids[2]);
  EXPECT_TRUE(page1["has_more"].get<bool>());
  auto token = page1["next_page_token"].get<std::string>();
  auto page2 = JsonOf(c.Get(("/v1/jobs?limit=2&page_token=" + token).c_str()));
  ASSERT_EQ(page2["data"].size(), 1u);
  EXPECT_EQ(page2["data"][0]["id"], ids[0]);
  EXPECT_TRUE(page2["next_page_token"].is_null());
  EXPECT_EQ(JsonOf(c.Get("/v1/jobs?state=pending,failed"))["data"].size(), 0u);
  EXPECT_EQ(JsonOf(c.Get("/v1/jobs?model=tiny"))["data"].size(), 3u);
  EXPECT_EQ(JsonOf(c.Get("/v1/jobs?model=other"))["data"].size(), 0u);

  // Idempotency: the same key gives the same job, not a second one.
  httplib::Headers key = {{"Idempotency-Key", "upload-42"}};
  httplib::MultipartFormDataItems items = {FilePart("speech.wav"), Field("model", "tiny")};
  auto first = c.Post("/v1/jobs", key, items);
  auto again = c.Post("/v1/jobs", key, items);
  ASSERT_TRUE(first) << httplib::to_string(first.error());
  ASSERT_EQ(first->status, 202);
  ASSERT_TRUE(again) << httplib::to_string(again.error());
  ASSERT_EQ(again->status, 200);
  EXPECT_EQ(JsonOf(first)["id"], JsonOf(again)["id"]);
}

TEST(ApiServerTest, ServerSidePathUnderAnAllowedRoot) {
  ScopedTempDir audio("steno-api-audio");
  fs::copy_file(MediaPath("speech.wav"), audio.path + "/meeting.wav");
  ApiTestServer s({"--allow-path", audio.path});
  auto c = s.Client();
  json body = {{"path", audio.path + "/meeting.wav"}, {"model", "tiny"}, {"language", "en"}};
  auto r = c.Post("/v1/jobs", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  auto job = JsonOf(r);
  EXPECT_EQ(job["filename"], "meeting.wav");
  auto done = WaitForJob(c, job["id"]);
  EXPECT_EQ(done["state"], "completed") << done.dump();
}

TEST(ApiServerTest, EventsStreamStatesAndSegmentsInOrder) {
  // One job at a time: the second job is still pending when its stream opens.
  ApiTestServer s({"--max-running", "1"});
  auto c = s.Client();
  const std::string first = PostJob(c, "speech_60s.wav");
  const std::string id = PostJob(c);
  std::string stream;
  auto r = c.Get(("/v1/jobs/" + id + "/events").c_str(), [&](const char* data, size_t n) {
    stream.append(data, n);
    return true;
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  auto events = ParseSse(stream);
  ASSERT_FALSE(events.empty()) << stream;

  std::vector<std::string> states;
  std::vector<json> segments;
  bool segment_outside_processing = false;
  for (const auto& e : events) {
    if (e.event == "state") states.push_back(e.data["state"]);
    if (e.event == "segment") {
      segments.push_back(e.data["segment"]);
      segment_outside_processing |= states.empty() || states.back() != "processing";
    }
  }
  EXPECT_EQ(states, (std::vector<std::string>{"pending", "loading", "processing", "completed"}))
      << stream;
  EXPECT_EQ(events.back().event, "state") << "the stream ends with the final state";
  EXPECT_FALSE(segment_outside_processing);
  auto result = JsonOf(c.Get("/v1/jobs/" + id + "/result?format=verbose_json"));
  ASSERT_EQ(segments.size(), result["segments"].size()) << stream;
  for (size_t i = 0; i < segments.size(); ++i) {
    EXPECT_EQ(segments[i]["text"], result["segments"][i]["text"]);
    EXPECT_DOUBLE_EQ(segments[i]["start"].get<double>(),
                     result["segments"][i]["start"].get<double>());
    if (i > 0) {
      EXPECT_GE(segments[i]["start"].get<double>(), segments[i - 1]["start"].get<double>());
    }
  }
  EXPECT_EQ(WaitForJob(c, first)["state"], "completed");

  // A stream opened on a finished job gives its final state and ends.
  std::string late;
  auto again = c.Get(("/v1/jobs/" + id + "/events").c_str(), [&](const char* d, size_t n) {
    late.append(d, n);
    return true;
  });
  ASSERT_TRUE(again);
  auto late_events = ParseSse(late);
  ASSERT_FALSE(late_events.empty());
  EXPECT_EQ(late_events.back().data["state"], "completed");
}

// The HTTP layer holds hundreds of waiting clients without starving the others: 200 open event
// streams, and a plain request still answers (not only once the streams end).
TEST(ApiServerTest, HundredsOfEventStreamsAtOnce) {
  ApiTestServer s({"--max-running", "1"});
  auto c = s.Client();
  std::vector<std::string> ahead;  // keep the watched job pending while the clients connect
  for (int i = 0; i < 8; ++i) ahead.push_back(PostJob(c, "speech_60s.wav"));
  const std::string id = PostJob(c);
  constexpr int kClients = 200;
  std::atomic<int> connected{0}, completed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&] {
      auto client = s.Client();
      std::string text;
      bool counted = false;
      client.Get(("/v1/jobs/" + id + "/events").c_str(), [&](const char* d, size_t n) {
        text.append(d, n);
        if (!counted) {
          counted = true;
          ++connected;
        }
        return true;
      });
      if (text.find("\"state\":\"completed\"") != std::string::npos) ++completed;
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (connected < kClients && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(connected.load(), kClients);
  const auto t0 = std::chrono::steady_clock::now();
  auto health = c.Get("/healthz");
  auto job = c.Get("/v1/jobs/" + id);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  ASSERT_TRUE(health && job);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(job->status, 200);
  EXPECT_EQ(JsonOf(job)["state"], "pending") << "the streams were not all open at once";
  // A pool starved by the streams answers only when they end: after the eight one-minute jobs
  // ahead of the watched one, minutes away. A healthy server answers in milliseconds; the bound
  // leaves room for a busy 2-core CI and a ThreadSanitizer build.
  EXPECT_LT(ms, 20'000) << "requests starved by the open streams";
  for (auto& t : clients) t.join();
  EXPECT_EQ(completed.load(), kClients) << "every stream saw the job complete";
  for (const auto& a : ahead) EXPECT_EQ(WaitForJob(c, a)["state"], "completed");
}

TEST(ApiServerTest, CancelPendingJobAndConflicts) {
  ApiTestServer s({"--max-running", "1"});
  auto c = s.Client();
  const std::string busy = PostJob(c, "speech_60s.wav");
  const std::string waiting = PostJob(c);
  auto cancel = c.Delete("/v1/jobs/" + waiting);
  ASSERT_TRUE(cancel);
  ASSERT_EQ(cancel->status, 200) << cancel->body;
  EXPECT_EQ(JsonOf(cancel)["state"], "cancelled");
  auto result = c.Get("/v1/jobs/" + waiting + "/result");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 409);
  EXPECT_EQ(JsonOf(result)["error"]["code"], "job_cancelled");
  EXPECT_EQ(WaitForJob(c, busy)["state"], "completed");
  auto late = c.Delete("/v1/jobs/" + busy);
  ASSERT_TRUE(late) << httplib::to_string(late.error());
  EXPECT_EQ(late->status, 409) << late->body;
  EXPECT_EQ(JsonOf(late)["error"]["code"], "job_finished");
}

TEST(ApiServerTest, ResultOfAnUnfinishedJobIs409) {
  ApiTestServer s({"--max-running", "1"});
  auto c = s.Client();
  const std::string busy = PostJob(c, "speech_60s.wav");
  const std::string waiting = PostJob(c);
  auto r = c.Get("/v1/jobs/" + waiting + "/result");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 409);
  EXPECT_EQ(JsonOf(r)["error"]["code"], "job_not_completed");
  WaitForJob(c, waiting);
}

TEST(ApiServerTest, LoadUnloadRunnersAndStenoPs) {
  ApiTestServer s;
  auto c = s.Client();
  auto load =
      c.Post("/v1/models/tiny/load", R"({"device":"cpu","keep_alive":"10m"})", "application/json");
  ASSERT_TRUE(load);
  ASSERT_EQ(load->status, 200) << load->body;
  json runners;
  for (int i = 0; i < 1200; ++i) {  // the load may still be finishing (up to 60 s)
    runners = JsonOf(c.Get("/v1/runners"));
    if (!runners["data"].empty() && runners["data"][0]["state"] == "ready") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(runners["data"].size(), 1u) << runners.dump();
  const auto& r = runners["data"][0];
  EXPECT_EQ(r["model"], "tiny");
  EXPECT_EQ(r["kind"], "whisper");
  EXPECT_EQ(r["device"], "cpu");
  EXPECT_GT(r["bytes"].get<int64_t>(), 0);
  EXPECT_EQ(r["busy_streams"], 0);
  EXPECT_GE(r["streams"].get<int>(), 1);

  auto table = RunProcess({StenoBin(), "ps", "--url", s.Url()});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("MODEL"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("KIND"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("whisper"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("tiny"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("cpu"), std::string::npos) << table.out;
  auto as_json = RunProcess({StenoBin(), "ps", "--url", s.Url(), "--json"});
  ASSERT_EQ(as_json.exit_code, 0);
  EXPECT_EQ(json::parse(as_json.out)[0]["model"], "tiny");

  auto unload = c.Post("/v1/models/tiny/unload", "", "application/json");
  ASSERT_TRUE(unload) << httplib::to_string(unload.error());
  ASSERT_EQ(unload->status, 200) << unload->body;
  for (int i = 0; i < 1200 && !JsonOf(c.Get("/v1/runners"))["data"].empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(JsonOf(c.Get("/v1/runners"))["data"].empty());
  auto empty = RunProcess({StenoBin(), "ps", "--url", s.Url()});
  EXPECT_NE(empty.out.find("No models loaded"), std::string::npos) << empty.out;
}

TEST(ApiServerTest, StenoPsWithoutAServerSaysSoAndExits1) {
  auto r = RunProcess({StenoBin(), "ps", "--url", "http://127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot reach a steno server at http://127.0.0.1:1"), std::string::npos)
      << r.err;
}

TEST(ApiServerTest, ApiKeysGuardEverythingButHealthProbes) {
  ApiTestServer s({"--api-key", "sk-test-123"});
  auto c = s.Client();
  auto missing = c.Get("/v1/jobs");
  ASSERT_TRUE(missing) << httplib::to_string(missing.error());
  EXPECT_EQ(missing->status, 401);
  EXPECT_EQ(JsonOf(missing)["error"]["code"], "missing_api_key");
  EXPECT_EQ(JsonOf(missing)["error"]["type"], "authentication_error");
  EXPECT_EQ(missing->get_header_value("WWW-Authenticate"), "Bearer");
  auto wrong = c.Get("/v1/jobs", {{"Authorization", "Bearer sk-test-124"}});
  ASSERT_TRUE(wrong) << httplib::to_string(wrong.error());
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(JsonOf(wrong)["error"]["code"], "invalid_api_key");
  EXPECT_EQ(wrong->body.find("sk-test"), std::string::npos) << "never echo keys";
  auto right = c.Get("/v1/jobs", {{"Authorization", "Bearer sk-test-123"}});
  ASSERT_TRUE(right) << httplib::to_string(right.error());
  EXPECT_EQ(right->status, 200);
  EXPECT_EQ(StatusOf(c.Get("/healthz")), 200);
  EXPECT_EQ(StatusOf(c.Get("/readyz")), 200);
  // An upload without a key is refused before its body is read.
  auto upload =
      c.Post("/v1/audio/transcriptions",
             httplib::MultipartFormDataItems{FilePart("speech.wav"), Field("model", "tiny")});
  ASSERT_TRUE(upload) << httplib::to_string(upload.error());
  EXPECT_EQ(upload->status, 401);
  EXPECT_EQ(JsonOf(c.Get("/v1/jobs", {{"Authorization", "Bearer sk-test-123"}}))["data"].size(),
            0u);
  // Keys never reach the log.
  EXPECT_EQ(ReadFileText(s.log).find("sk-test-123"), std::string::npos);
}

TEST(ApiServerTest, CorsOnlyWhenConfigured) {
  {
    ApiTestServer s;
    auto c = s.Client();
    auto r = c.Get("/v1/models", {{"Origin", "http://app.example"}});
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin"));
  }
  ApiTestServer s({"--cors-origin", "http://app.example"});
  auto c = s.Client();
  auto r = c.Get("/v1/models", {{"Origin", "http://app.example"}});
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "http://app.example");
  auto other = c.Get("/v1/models", {{"Origin", "http://evil.example"}});
  ASSERT_TRUE(other) << httplib::to_string(other.error());
  EXPECT_FALSE(other->has_header("Access-Control-Allow-Origin"));
  auto preflight =
      c.Options("/v1/audio/transcriptions",
                {{"Origin", "http://app.example"}, {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(preflight) << httplib::to_string(preflight.error());
  EXPECT_EQ(preflight->status, 204);
  EXPECT_NE(preflight->get_header_value("Access-Control-Allow-Methods").find("POST"),
            std::string::npos);
}

TEST(ApiServerTest, SigtermStopsCleanlyWithExit0) {
  ApiTestServer s;
  auto c = s.Client();
  EXPECT_EQ(StatusOf(c.Get("/healthz")), 200);
  EXPECT_EQ(s.Stop(), 0);
  EXPECT_NE(s.Stdout().find("shut down cleanly"), std::string::npos) << s.Stdout();
  EXPECT_FALSE(s.Client().Get("/healthz"));
}

TEST(ApiServerTest, PortInUseIsAClearStartupError) {
  ApiTestServer s;
  auto r = RunProcess({StenoBin(), "serve", "--port", std::to_string(s.port), "--data-dir",
                       s.root.path + "/other", "--device", "cpu"},
                      ProcessOptions{{}, "", 60});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("cannot listen on 127.0.0.1:" + std::to_string(s.port)), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace steno::test
