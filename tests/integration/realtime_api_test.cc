// Live transcription sessions over WebSocket (GET /v1/realtime, OpenAI Realtime transcription
// events): the real JobService and HTTP server over real sockets, with the test-only echo runner
// kind (support/echo_kind.h), whose live sessions answer a commit with a transcript derived from
// the samples it received. One simulated 8 GiB card holds one runner of the "echo-live" model
// (6 GiB) with one stream: a second session must wait for the first.
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "api/http_server.h"
#include "api_test_server.h"
#include "core/base64.h"
#include "server/job_service.h"
#include "support/echo_kind.h"
#include "support/process.h"
#include "support/test_env.h"
#include "support/ws_client.h"

namespace steno {
namespace {

using nlohmann::json;
using test::WsClient;
constexpr int64_t kMiB = int64_t{1} << 20;
constexpr auto kLong = std::chrono::seconds(60);  // a bound no healthy run comes near

struct LiveServerOptions {
  api::RealtimeOptions realtime;
  std::vector<std::string> keys;
  int64_t live_max_samples = 0;
  std::string default_model;
};

class LiveServer {
 public:
  explicit LiveServer(LiveServerOptions options = {}) {
    server::ServiceOptions o;
    o.data_dir = dir.path + "/data";
    o.node = "test-node";
    o.runtime.data_dir = dir.path;
    o.runtime.models_dir = dir.path + "/models";
    o.runtime.gpu.simulate_spec = "1x8GiB";
    o.runtime.gpu.data_dir = dir.path;
    test::EchoKindOptions echo;
    echo.weights_bytes = 6144 * kMiB;
    echo.stream_bytes = 128 * kMiB;
    echo.live_max_samples = options.live_max_samples;
    o.runtime.extra_kinds.emplace_back(test::kEchoKind, test::EchoKind(echo));
    models::DeclaredModel m;
    m.name = "echo-live";
    m.kind = test::kEchoKind;
    m.weights_bytes = 6144 * kMiB;
    m.stream_bytes = 128 * kMiB;
    m.max_streams = 1;
    m.capabilities = {models::Capability::kTranscribe};
    o.runtime.declared_models.push_back(m);
    auto service = server::JobService::Open(std::move(o));
    if (!service.ok()) {
      ADD_FAILURE() << service.error().message;
      return;
    }
    service_ = std::move(service).value();
    api::HttpOptions h;
    h.port = 0;
    h.realtime = options.realtime;
    h.default_model = options.default_model;
    auto keys = api::ApiKeys::Load(options.keys, "");
    if (!keys.ok()) ADD_FAILURE() << keys.error().message;
    h.keys = std::move(keys).value();
    auto http = api::HttpServer::Start(std::move(h), *service_);
    if (!http.ok()) {
      ADD_FAILURE() << http.error().message;
      return;
    }
    http_ = std::move(http).value();
    port = http_->port();
  }

  ~LiveServer() { Stop(); }

  // As `steno serve` stops: the service first (sessions end), then the HTTP server.
  void Stop() {
    if (service_) service_->Shutdown(std::chrono::milliseconds(0));
    if (http_) http_->Stop();
    http_.reset();
    service_.reset();
  }

  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    return c;
  }

  test::ScopedTempDir dir{"steno-realtime"};
  int port = 0;

 private:
  std::unique_ptr<server::JobService> service_;
  std::unique_ptr<api::HttpServer> http_;
};

std::string Pcm16(const std::vector<int16_t>& samples) {
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(samples.data()),
                                       samples.size() * sizeof(int16_t)));
}

// `n` samples, the first `first`, the rest a quiet ramp.
std::vector<int16_t> Samples(size_t n, int16_t first) {
  std::vector<int16_t> s(n);
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<int16_t>(i == 0 ? first : i % 200);
  return s;
}

json Append(const std::vector<int16_t>& samples) {
  return {{"type", "input_audio_buffer.append"}, {"audio", Pcm16(samples)}};
}

json Update16k(const std::string& model = "echo-live") {
  return {{"type", "transcription_session.update"},
          {"session",
           {{"input_audio_format", "pcm16_16000"},
            {"input_audio_transcription", {{"model", model}, {"language", "en"}}},
            {"turn_detection", nullptr}}}};
}

const json kCommit = {{"type", "input_audio_buffer.commit"}};

// A session on `server` with the echo model at 16 kHz (updated, not yet admitted).
std::unique_ptr<WsClient> Open16k(const LiveServer& server) {
  auto c = std::make_unique<WsClient>(server.port, "/v1/realtime?intent=transcription");
  EXPECT_TRUE(c->ok()) << c->error();
  EXPECT_FALSE(c->WaitFor("transcription_session.created", kLong).is_null());
  c->Send(Update16k());
  EXPECT_FALSE(c->WaitFor("transcription_session.updated", kLong).is_null());
  return c;
}

// Appends `n` samples and commits: the completed event (null if none came).
json Utterance(WsClient& c, size_t n, int16_t first) {
  c.Send(Append(Samples(n, first)));
  c.Send(kCommit);
  return c.WaitFor("conversation.item.input_audio_transcription.completed", kLong);
}

TEST(RealtimeApi, AppendAndCommitGiveCommittedDeltaAndCompletedPerItem) {
  LiveServer server;
  WsClient c(server.port, "/v1/realtime?intent=transcription");
  ASSERT_TRUE(c.ok()) << c.error();
  json created = c.WaitFor("transcription_session.created", kLong);
  ASSERT_FALSE(created.is_null());
  EXPECT_EQ(created["session"]["input_audio_format"], "pcm16");
  EXPECT_TRUE(created["session"]["input_audio_transcription"]["model"].is_null());

  c.Send(Update16k());
  json updated = c.WaitFor("transcription_session.updated", kLong);
  ASSERT_FALSE(updated.is_null());
  EXPECT_EQ(updated["session"]["input_audio_transcription"]["model"], "echo-live");
  EXPECT_EQ(updated["session"]["input_audio_transcription"]["language"], "en");
  EXPECT_EQ(updated["session"]["input_audio_format"], "pcm16_16000");
  EXPECT_TRUE(updated["session"]["turn_detection"].is_null());

  // Two appends, one utterance: 16000 samples whose first is 1234.
  auto samples = Samples(16000, 1234);
  c.Send(Append({samples.begin(), samples.begin() + 6000}));
  c.Send(Append({samples.begin() + 6000, samples.end()}));
  c.Send(kCommit);
  json started = c.WaitFor("input_audio_buffer.speech_started", kLong);
  ASSERT_FALSE(started.is_null());
  EXPECT_EQ(started["item_id"], "item_000001");
  json committed = c.WaitFor("input_audio_buffer.committed", kLong);
  ASSERT_FALSE(committed.is_null());
  EXPECT_EQ(committed["item_id"], "item_000001");
  EXPECT_TRUE(committed["previous_item_id"].is_null());
  json delta = c.WaitFor("conversation.item.input_audio_transcription.delta", kLong);
  ASSERT_FALSE(delta.is_null());
  EXPECT_EQ(delta["delta"], "16000");
  json done = c.WaitFor("conversation.item.input_audio_transcription.completed", kLong);
  ASSERT_FALSE(done.is_null());
  EXPECT_EQ(done["item_id"], "item_000001");
  EXPECT_EQ(done["content_index"], 0);
  EXPECT_EQ(done["transcript"], test::EchoLiveText(16000, 1234));
  EXPECT_EQ(done["audio_start_ms"], 0);
  EXPECT_EQ(done["audio_end_ms"], 1000);
  EXPECT_TRUE(done["event_id"].is_string());

  // The next utterance is the next item; its times follow in the session's timeline.
  c.Send(Append(Samples(8000, -7)));
  c.Send(kCommit);
  committed = c.WaitFor("input_audio_buffer.committed", kLong);
  ASSERT_FALSE(committed.is_null());
  EXPECT_EQ(committed["item_id"], "item_000002");
  EXPECT_EQ(committed["previous_item_id"], "item_000001");
  done = c.WaitFor("conversation.item.input_audio_transcription.completed", kLong);
  ASSERT_FALSE(done.is_null());
  EXPECT_EQ(done["transcript"], test::EchoLiveText(8000, -7));
  EXPECT_EQ(done["audio_start_ms"], 1000);
  EXPECT_EQ(done["audio_end_ms"], 1500);

  // session.close: the job ends, then the server closes normally.
  c.Send({{"type", "session.close"}});
  EXPECT_TRUE(c.WaitClosed(kLong));
  EXPECT_EQ(c.close_code(), 1000);
}

TEST(RealtimeApi, OpenAiPcm16At24kHzIsResampledTo16kHz) {
  LiveServer server;
  // OpenAI's clients connect with ?model= and send 24 kHz PCM16 (the default format).
  WsClient c(server.port, "/v1/realtime?model=echo-live");
  ASSERT_TRUE(c.ok()) << c.error();
  json created = c.WaitFor("transcription_session.created", kLong);
  ASSERT_FALSE(created.is_null());
  EXPECT_EQ(created["session"]["input_audio_transcription"]["model"], "echo-live");
  // 1.5 s at 24 kHz in 100 ms chunks: 1.5 s at 16 kHz reach the runner.
  for (int i = 0; i < 15; ++i) c.Send(Append(Samples(2400, 100)));
  c.Send(kCommit);
  json done = c.WaitFor("conversation.item.input_audio_transcription.completed", kLong);
  ASSERT_FALSE(done.is_null());
  const std::string text = done["transcript"];
  const int samples = std::stoi(text);
  EXPECT_NEAR(samples, 24000, 48) << text;
}

TEST(RealtimeApi, GaSessionUpdateOfATranscriptionSessionIsAccepted) {
  LiveServer server;
  WsClient c(server.port, "/v1/realtime?intent=transcription");
  ASSERT_TRUE(c.ok()) << c.error();
  c.Send(
      {{"type", "session.update"},
       {"session",
        {{"type", "transcription"},
         {"audio",
          {{"input",
            {{"format", {{"type", "audio/pcm"}, {"rate", 16000}}},
             {"transcription", {{"model", "echo-live"}}},
             {"turn_detection",
              {{"type", "server_vad"}, {"threshold", 0.6}, {"silence_duration_ms", 300}}}}}}}}}});
  json updated = c.WaitFor("transcription_session.updated", kLong);
  ASSERT_FALSE(updated.is_null());
  EXPECT_EQ(updated["session"]["input_audio_format"], "pcm16_16000");
  EXPECT_EQ(updated["session"]["turn_detection"]["silence_duration_ms"], 300);
  EXPECT_NEAR(updated["session"]["turn_detection"]["threshold"].get<double>(), 0.6, 1e-6);
  json done = Utterance(c, 4000, 9);
  ASSERT_FALSE(done.is_null());
  EXPECT_EQ(done["transcript"], test::EchoLiveText(4000, 9));
}

TEST(RealtimeApi, BadInputGetsAnErrorEventAndTheSessionGoesOn) {
  LiveServer server;  // no default model
  WsClient c(server.port, "/v1/realtime?intent=transcription");
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_FALSE(c.WaitFor("transcription_session.created", kLong).is_null());
  auto expect_error = [&](const std::string& sent, const std::string& code, const json& param) {
    c.SendText(sent);
    json e = c.WaitFor("error", kLong);
    ASSERT_FALSE(e.is_null()) << sent;
    EXPECT_EQ(e["error"]["code"], code) << sent;
    EXPECT_EQ(e["error"]["param"], param) << sent;
    EXPECT_EQ(e["error"]["type"], "invalid_request_error");
    EXPECT_TRUE(e["event_id"].is_string());
  };
  expect_error("{not json", "invalid_json", nullptr);
  expect_error(R"({"type": "response.create"})", "unknown_event", "type");
  expect_error(R"({"type": "input_audio_buffer.append", "audio": "@@@"})", "invalid_base64",
               "audio");
  expect_error(R"({"type": "input_audio_buffer.append", "audio": "AA=="})", "invalid_audio",
               "audio");
  // Audio before any model is named (this server has no default).
  expect_error(Append(Samples(160, 1)).dump(), "model_required",
               "session.input_audio_transcription.model");
  expect_error(
      R"({"type": "transcription_session.update", "session": {"turn_detection": {"type": "semantic_vad"}}})",
      "unsupported_turn_detection", "session.turn_detection.type");
  expect_error(
      R"({"type": "transcription_session.update", "session": {"input_audio_format": "g711_ulaw"}})",
      "unsupported_audio_format", "session.input_audio_format");
  // The client's event id comes back in the error.
  c.SendText(R"({"type": "nope", "event_id": "evt_42"})");
  json e = c.WaitFor("error", kLong);
  ASSERT_FALSE(e.is_null());
  EXPECT_EQ(e["error"]["event_id"], "evt_42");
  // An unknown model: the error names the field; another model can still be chosen.
  c.Send(Update16k("no-such-model"));
  e = c.WaitFor("error", kLong);
  ASSERT_FALSE(e.is_null());
  EXPECT_EQ(e["error"]["param"], "session.input_audio_transcription.model");
  ASSERT_FALSE(c.WaitFor("transcription_session.updated", kLong).is_null());

  // Still usable.
  c.Send(Update16k());
  ASSERT_FALSE(c.WaitFor("transcription_session.updated", kLong).is_null());
  json done = Utterance(c, 3200, 5);
  ASSERT_FALSE(done.is_null());
  EXPECT_EQ(done["transcript"], test::EchoLiveText(3200, 5));
}

TEST(RealtimeApi, FramesItCannotTakeCloseWithTheirCodeAndTheServerCarriesOn) {
  LiveServerOptions o;
  o.realtime.max_frame_bytes = 64 * 1024;
  LiveServer server(o);
  {
    WsClient c(server.port, "/v1/realtime?intent=transcription");
    ASSERT_TRUE(c.ok()) << c.error();
    c.SendText(Append(Samples(64 * 1024, 1)).dump());  // ~170 KiB of JSON
    json e = c.WaitFor("error", kLong);
    ASSERT_FALSE(e.is_null());
    EXPECT_EQ(e["error"]["code"], "message_too_big");
    EXPECT_TRUE(c.WaitClosed(kLong));
    EXPECT_EQ(c.close_code(), 1009);
  }
  {
    WsClient c(server.port, "/v1/realtime?intent=transcription");
    ASSERT_TRUE(c.ok()) << c.error();
    c.SendBinary("\x01\x02");
    json e = c.WaitFor("error", kLong);
    ASSERT_FALSE(e.is_null());
    EXPECT_EQ(e["error"]["code"], "unsupported_frame");
    EXPECT_TRUE(c.WaitClosed(kLong));
    EXPECT_EQ(c.close_code(), 1003);
  }
  // The server carries on: HTTP and a new session.
  auto res = server.Client().Get("/v1/runners");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  auto c = Open16k(server);
  json done = Utterance(*c, 1600, 3);
  ASSERT_FALSE(done.is_null());
}

TEST(RealtimeApi, ClearDropsTheUncommittedAudio) {
  LiveServer server;
  auto c = Open16k(server);
  c->Send(Append(Samples(5000, 11)));
  c->Send({{"type", "input_audio_buffer.clear"}});
  ASSERT_FALSE(c->WaitFor("input_audio_buffer.cleared", kLong).is_null());
  json done = Utterance(*c, 2000, 22);
  ASSERT_FALSE(done.is_null());
  EXPECT_EQ(done["transcript"], test::EchoLiveText(2000, 22));
}

TEST(RealtimeApi, ARunnersBufferFullBecomesAnErrorEvent) {
  LiveServerOptions o;
  o.live_max_samples = 8000;
  LiveServer server(o);
  auto c = Open16k(server);
  c->Send(Append(Samples(4000, 1)));
  c->Send(Append(Samples(6000, 2)));  // over the runner's 8000
  json e = c->WaitFor("error", kLong);
  ASSERT_FALSE(e.is_null());
  EXPECT_EQ(e["error"]["code"], "buffer_full");
  c->Send(kCommit);
  json done = c->WaitFor("conversation.item.input_audio_transcription.completed", kLong);
  ASSERT_FALSE(done.is_null());
  EXPECT_EQ(done["transcript"], test::EchoLiveText(4000, 1));
  auto metrics = server.Client().Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("steno_realtime_errors_total{code=\"buffer_full\"} 1"),
            std::string::npos);
}

TEST(RealtimeApi, ASessionWaitsForTheOnlyStreamThenFailsAfterTheAdmitTimeout) {
  LiveServerOptions o;
  o.realtime.admit_timeout_ms = 1500;
  LiveServer server(o);
  auto first = Open16k(server);
  ASSERT_FALSE(Utterance(*first, 1600, 1).is_null());  // admitted: it holds the stream

  const auto start = std::chrono::steady_clock::now();
  auto second = Open16k(server);
  json waiting = second->WaitFor("steno.session.waiting", kLong);
  ASSERT_FALSE(waiting.is_null());
  EXPECT_EQ(waiting["model"], "echo-live");
  EXPECT_EQ(waiting["admit_timeout_ms"], 1500);
  json e = second->WaitFor("error", kLong);
  ASSERT_FALSE(e.is_null());
  EXPECT_EQ(e["error"]["code"], "admission_timeout");
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  EXPECT_TRUE(second->WaitClosed(kLong));
  EXPECT_EQ(second->close_code(), 1013);
  // The first goes on.
  ASSERT_FALSE(Utterance(*first, 800, 2).is_null());
}

TEST(RealtimeApi, AudioSentWhileWaitingIsHeldUntilAdmission) {
  LiveServer server;
  auto first = Open16k(server);
  ASSERT_FALSE(Utterance(*first, 1600, 1).is_null());
  auto second = Open16k(server);
  ASSERT_FALSE(second->WaitFor("steno.session.waiting", kLong).is_null());
  second->Send(Append(Samples(3000, 77)));
  second->Send(kCommit);
  // The first ends: its stream goes to the second, which gets its held audio in order.
  first->Send({{"type", "session.close"}});
  EXPECT_TRUE(first->WaitClosed(kLong));
  json admitted = second->WaitFor("steno.session.admitted", kLong);
  ASSERT_FALSE(admitted.is_null());
  EXPECT_EQ(admitted["model"], "echo-live");
  json done = second->WaitFor("conversation.item.input_audio_transcription.completed", kLong);
  ASSERT_FALSE(done.is_null());
  EXPECT_EQ(done["transcript"], test::EchoLiveText(3000, 77));
}

TEST(RealtimeApi, AClientThatDisconnectsFreesItsStreamAtOnce) {
  LiveServer server;  // admit timeout 30 s: far longer than a freed stream takes
  auto first = Open16k(server);
  ASSERT_FALSE(Utterance(*first, 1600, 1).is_null());
  first->Send(Append(Samples(4000, 1)));  // mid-utterance
  auto second = Open16k(server);
  ASSERT_FALSE(second->WaitFor("steno.session.waiting", kLong).is_null());
  first->Drop();  // no close frame: the TCP connection just ends
  ASSERT_FALSE(second->WaitFor("steno.session.admitted", kLong).is_null());
  json done = Utterance(*second, 1000, 4);
  ASSERT_FALSE(done.is_null());
  EXPECT_EQ(done["transcript"], test::EchoLiveText(1000, 4));
}

TEST(RealtimeApi, AnIdleSessionCloses) {
  LiveServerOptions o;
  o.realtime.idle_timeout_ms = 1000;
  LiveServer server(o);
  auto c = Open16k(server);
  ASSERT_FALSE(Utterance(*c, 1600, 1).is_null());
  json e = c->WaitFor("error", kLong);
  ASSERT_FALSE(e.is_null());
  EXPECT_EQ(e["error"]["code"], "idle_timeout");
  EXPECT_TRUE(c->WaitClosed(kLong));
  EXPECT_EQ(c->close_code(), 1000);
  // Its stream is free again.
  auto next = Open16k(server);
  ASSERT_FALSE(Utterance(*next, 800, 2).is_null());
}

TEST(RealtimeApi, TheApiKeyIsRequiredAsOnEveryRoute) {
  LiveServerOptions o;
  o.keys = {"sekret-key"};
  LiveServer server(o);
  WsClient none(server.port, "/v1/realtime?intent=transcription");
  EXPECT_FALSE(none.ok());
  EXPECT_EQ(none.status(), 401);
  WsClient wrong(server.port, "/v1/realtime?intent=transcription",
                 {{"Authorization", "Bearer nope"}});
  EXPECT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status(), 401);

  WsClient header(server.port, "/v1/realtime?intent=transcription",
                  {{"Authorization", "Bearer sekret-key"}});
  ASSERT_TRUE(header.ok()) << header.error();
  EXPECT_FALSE(header.WaitFor("transcription_session.created", kLong).is_null());
  // What OpenAI's browser client sends: the key as a subprotocol beside "realtime".
  WsClient browser(server.port, "/v1/realtime?model=echo-live",
                   {{"Sec-WebSocket-Protocol",
                     "realtime, openai-insecure-api-key.sekret-key, openai-beta.realtime-v1"}});
  ASSERT_TRUE(browser.ok()) << browser.error();
  EXPECT_EQ(browser.protocol(), "realtime");
  EXPECT_FALSE(browser.WaitFor("transcription_session.created", kLong).is_null());
}

TEST(RealtimeApi, RunnersMetricsAndTheDashboardShowLiveSessions) {
  LiveServer server;
  auto c = Open16k(server);
  ASSERT_FALSE(Utterance(*c, 1600, 1).is_null());
  auto runners = server.Client().Get("/v1/runners");
  ASSERT_TRUE(runners);
  json r = json::parse(runners->body);
  ASSERT_EQ(r["data"].size(), 1u);
  EXPECT_EQ(r["data"][0]["live_sessions"], 1);
  EXPECT_EQ(r["data"][0]["busy_streams"], 1);

  auto metrics = server.Client().Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("steno_realtime_sessions{model=\"echo-live\",state=\"active\","),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("steno_realtime_sessions_started_total 1"), std::string::npos);

  c->Send({{"type", "session.close"}});
  EXPECT_TRUE(c->WaitClosed(kLong));
  // Gone from the runner once its job ended (the close follows the end).
  runners = server.Client().Get("/v1/runners");
  ASSERT_TRUE(runners);
  r = json::parse(runners->body);
  ASSERT_EQ(r["data"].size(), 1u);
  EXPECT_EQ(r["data"][0]["live_sessions"], 0);
}

TEST(RealtimeApi, ShutdownClosesSessionsWithGoingAway) {
  LiveServer server;
  auto active = Open16k(server);
  ASSERT_FALSE(Utterance(*active, 1600, 1).is_null());
  auto waiting = Open16k(server);
  ASSERT_FALSE(waiting->WaitFor("steno.session.waiting", kLong).is_null());
  server.Stop();
  EXPECT_TRUE(active->WaitClosed(kLong));
  EXPECT_EQ(active->close_code(), 1001);
  EXPECT_TRUE(waiting->WaitClosed(kLong));
  EXPECT_EQ(waiting->close_code(), 1001);
}

TEST(RealtimeApi, APlainGetIsToldToUpgrade) {
  LiveServer server;
  auto res = server.Client().Get("/v1/realtime?intent=transcription");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 426);
  res = server.Client().Get("/v1/realtime?intent=conversation",
                            {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(res->body.find("intent"), std::string::npos);
}

// The real `steno serve` (its HTTP worker pool, whisper models): the upgrade is taken over from
// the HTTP server, sessions start, and HTTP requests go on being served beside them.
TEST(RealtimeApi, StenoServeTakesTheUpgradeOnItsOwnPort) {
  test::ApiTestServer server({"--api-key", "k1"});
  ASSERT_GT(server.port, 0);
  WsClient c(server.port, "/v1/realtime?intent=transcription", {{"Authorization", "Bearer k1"}});
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_FALSE(c.WaitFor("transcription_session.created", kLong).is_null());
  c.Send(Update16k("no-such-model"));
  json e = c.WaitFor("error", kLong);
  ASSERT_FALSE(e.is_null());
  EXPECT_EQ(e["error"]["code"], "model_not_found");
  json refused = c.WaitFor("transcription_session.updated", kLong);  // the model left unset
  ASSERT_FALSE(refused.is_null());
  EXPECT_TRUE(refused["session"]["input_audio_transcription"]["model"].is_null());
  c.Send(Update16k("tiny"));
  json updated = c.WaitFor("transcription_session.updated", kLong);
  ASSERT_FALSE(updated.is_null());
  EXPECT_EQ(updated["session"]["input_audio_transcription"]["model"], "tiny");
  // The HTTP server goes on beside the session (the socket it handed over is not its own).
  auto client = server.Client();
  client.set_bearer_token_auth("k1");
  for (int i = 0; i < 3; ++i) {
    auto res = client.Get("/v1/runners");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
  }
}

// A live utterance on a real whisper runner (the tiny random model: its text is garbage, but one
// committed and one completed event come for the commit), over the real `steno serve`.
TEST(RealtimeApi, StenoServeTranscribesACommittedUtteranceOnAWhisperRunner) {
  test::ApiTestServer server;
  WsClient c(server.port, "/v1/realtime?intent=transcription");
  ASSERT_TRUE(c.ok()) << c.error();
  c.Send(Update16k("tiny"));  // manual commits: no VAD model needed
  ASSERT_FALSE(c.WaitFor("transcription_session.updated", kLong).is_null());
  std::vector<int16_t> tone(16000);
  for (size_t i = 0; i < tone.size(); ++i) {
    tone[i] =
        static_cast<int16_t>(6000 * std::sin(2 * M_PI * 220 * static_cast<double>(i) / 16000));
  }
  for (size_t at = 0; at < tone.size(); at += 1600) {
    c.Send(Append(
        {tone.begin() + static_cast<long>(at), tone.begin() + static_cast<long>(at + 1600)}));
  }
  c.Send(kCommit);
  json committed = c.WaitFor("input_audio_buffer.committed", std::chrono::seconds(120));
  ASSERT_FALSE(committed.is_null()) << (c.skipped.empty() ? "" : c.skipped.back().dump());
  EXPECT_EQ(committed["item_id"], "item_000001");
  json done =
      c.WaitFor("conversation.item.input_audio_transcription.completed", std::chrono::seconds(120));
  ASSERT_FALSE(done.is_null()) << (c.skipped.empty() ? "" : c.skipped.back().dump());
  EXPECT_EQ(done["item_id"], "item_000001");
  EXPECT_TRUE(done["transcript"].is_string());
  c.Send({{"type", "session.close"}});
  EXPECT_TRUE(c.WaitClosed(kLong));
  EXPECT_EQ(c.close_code(), 1000);
}

TEST(RealtimeApi, ServeRefusesABadRealtimeFlagNamingIt) {
  test::ScopedTempDir dir;
  for (const char* flag :
       {"--realtime-admit-timeout", "--realtime-idle-timeout", "--realtime-max-buffer"}) {
    auto r = test::RunProcess({test::StenoBin(), "serve", "--port", "0", "--data-dir", dir.path,
                               "--models-dir", dir.path, flag, "0s"});
    EXPECT_EQ(r.exit_code, 2) << flag;
    EXPECT_NE(r.err.find(flag), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace steno
