// Text to speech and the server proxy through a real `steno serve`, against a real managed model
// server: tests/helpers/tts_server (espeak-ng's audio, converted by FFmpeg) declared as an
// `openai-speech` model in a --models-config file. POST /v1/audio/speech returns audio FFmpeg
// decodes to espeak-ng's own duration; the same request as a job stores the audio, which outlives
// a restart; bad requests get a 400 naming the field; /v1/servers/{name}/{path} relays any route
// with its status and body and counts as a busy stream of the runner while it is in flight.
// Streaming: with the helper sending its audio in pieces a test lets out (--pieces, --gate-file),
// the client has the first piece while the helper still holds the rest; a run that breaks off
// after it cuts the client's response; a client that leaves mid-stream cancels its job.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "api_test_server.h"
#include "audio/decoder.h"
#include "support/process.h"
#include "support/test_env.h"

namespace steno::test {
namespace {

using json = nlohmann::json;

const char* kText = "Steno manages the memory of every speech model on this machine.";

// The models config declaring the helper as "tts" (two streams: a held proxy request leaves one
// for speech); `pieces` > 0: it sends its audio in that many pieces, gated by `dir`/gate.
std::string WriteModelsConfig(const std::string& dir, int pieces = 0) {
  const std::string path = dir + "/models.toml";
  std::string gated;
  if (pieces > 0) {
    gated =
        ", \"--pieces\", \"" + std::to_string(pieces) + "\", \"--gate-file\", \"" + dir + "/gate\"";
  }
  std::ofstream(path) << "[[models]]\n"
                      << "name = \"tts\"\n"
                      << "kind = \"server\"\n"
                      << "command = [\"" << HelperBin("tts_server")
                      << "\", \"--port\", \"{port}\", \"--host\", \"{host}\", \"--hold-file\", \""
                      << dir << "/release\"" << gated << "]\n"
                      << "protocol = \"openai-speech\"\n"
                      << "ram = \"64MiB\"\n"
                      << "streams = 2\n"
                      << "ready_timeout = \"60s\"\n";
  return path;
}

// Seconds of audio FFmpeg decodes from `bytes` (written to a file named `name`).
double DecodedSeconds(const std::string& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  auto samples = audio::Decode(path);
  EXPECT_TRUE(samples.ok()) << name << ": " << (samples.ok() ? "" : samples.error().message);
  return samples.ok() ? static_cast<double>(samples->size()) / audio::kSampleRate : -1;
}

// espeak-ng's own rendering of `text` at the default speed: the duration steno must return.
double EspeakSeconds(const std::string& dir, const std::string& text) {
  std::ofstream(dir + "/ref.txt") << text;
  auto r = RunProcess({"espeak-ng", "-w", dir + "/ref.wav", "-f", dir + "/ref.txt"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto samples = audio::Decode(dir + "/ref.wav");
  EXPECT_TRUE(samples.ok());
  return samples.ok() ? static_cast<double>(samples->size()) / audio::kSampleRate : -1;
}

httplib::Result PostJson(httplib::Client& c, const std::string& path, const json& body) {
  return c.Post(path.c_str(), body.dump(), "application/json");
}

// One POST /v1/audio/speech on a thread of its own, its answer taken as it comes. `leave`: the
// client goes away once the first bytes of the body came.
class SpeechCall {
 public:
  SpeechCall(const ApiTestServer& s, const json& request, bool leave = false)
      : thread_([this, port = s.port, body = request.dump(), leave] { Run(port, body, leave); }) {}
  ~SpeechCall() {
    if (thread_.joinable()) thread_.join();
  }

  // Waits (up to 120 s) for the first bytes of the body; false if the call ended without any.
  bool WaitFirstBytes() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(120), [&] { return !body_.empty() || done_; });
    return !body_.empty();
  }
  // Waits for the call's end: whether the whole response came (false: it failed or was cut).
  bool Finish() {
    if (thread_.joinable()) thread_.join();
    return ok_;
  }
  int status() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }
  std::string header(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = headers_.find(name);
    return it == headers_.end() ? "" : it->second;
  }
  std::string body() {
    std::lock_guard<std::mutex> lock(mu_);
    return body_;
  }
  httplib::Error error() const { return error_; }  // after Finish

 private:
  void Run(int port, const std::string& body, bool leave) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(300, 0);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/audio/speech";
    req.body = body;
    req.set_header("Content-Type", "application/json");
    req.response_handler = [this](const httplib::Response& r) {
      std::lock_guard<std::mutex> lock(mu_);
      status_ = r.status;
      headers_ = r.headers;
      return true;
    };
    req.content_receiver = [this, leave](const char* data, size_t n, uint64_t, uint64_t) {
      std::lock_guard<std::mutex> lock(mu_);
      body_.append(data, n);
      cv_.notify_all();
      return !leave;
    };
    httplib::Response res;
    const bool sent = c.send(req, res, error_);
    std::lock_guard<std::mutex> lock(mu_);
    ok_ = sent;
    done_ = true;
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int status_ = 0;
  httplib::Headers headers_;
  std::string body_;
  bool done_ = false;
  bool ok_ = false;
  httplib::Error error_ = httplib::Error::Success;
  std::thread thread_;  // last: starts once everything above exists
};

// Lets the helper send its pieces up to `n` (--gate-file).
void OpenGate(const std::string& dir, int n) {
  std::ofstream(dir + "/gate") << n;
}

class ApiSpeechTest : public ::testing::Test {
 protected:
  ScopedTempDir scratch_{"steno-speech"};
  std::string config_ = WriteModelsConfig(scratch_.path);
};

TEST_F(ApiSpeechTest, SpeechIsEspeaksAudioInTheAskedFormat) {
  ApiTestServer s({"--models-config", config_});
  auto c = s.Client();
  const double reference = EspeakSeconds(scratch_.path, kText);
  ASSERT_GT(reference, 1.0);
  struct Case {
    const char* format;
    const char* content_type;
  };
  for (const Case& k : {Case{"mp3", "audio/mpeg"}, Case{"wav", "audio/wav"}}) {
    json body = {{"model", "tts"}, {"input", kText}, {"voice", "alloy"}};
    if (std::string(k.format) != "mp3") body["response_format"] = k.format;  // mp3: the default
    auto r = PostJson(c, "/v1/audio/speech", body);
    ASSERT_EQ(StatusOf(r), 200) << r->body.substr(0, 300);
    EXPECT_EQ(r->get_header_value("Content-Type"), k.content_type);
    EXPECT_FALSE(r->get_header_value("X-Steno-Job-Id").empty());
    const double got = DecodedSeconds(scratch_.path, std::string("out.") + k.format, r->body);
    EXPECT_NEAR(got, reference, 0.1) << k.format;
  }
  // The runner and the model say what kind they are.
  auto runners = JsonOf(c.Get("/v1/runners"));
  ASSERT_EQ(runners["data"].size(), 1u) << runners.dump();
  EXPECT_EQ(runners["data"][0]["model"], "tts");
  EXPECT_EQ(runners["data"][0]["kind"], "server");
  auto model = JsonOf(c.Get("/v1/models/tts"));
  EXPECT_EQ(model["kind"], "server");
  EXPECT_EQ(model["capabilities"], json::array({"speech"}));
  auto metrics = c.Get("/metrics");
  ASSERT_EQ(StatusOf(metrics), 200);
  EXPECT_NE(metrics->body.find("steno_runners{model=\"tts\",kind=\"server\",device=\"cpu\"} 1"),
            std::string::npos)
      << metrics->body.substr(0, 2000);
}

TEST_F(ApiSpeechTest, SpeechIsStreamedToTheClientAsTheServerProducesIt) {
  ApiTestServer s({"--models-config", WriteModelsConfig(scratch_.path, 6)});
  SpeechCall call(
      s, {{"model", "tts"}, {"input", kText}, {"voice", "alloy"}, {"response_format", "wav"}});
  // The helper holds pieces 2..6 until the gate opens: the client must have piece 1 before.
  const bool first = call.WaitFirstBytes();
  if (!first) OpenGate(scratch_.path, 6);  // lets the call end
  ASSERT_TRUE(first) << "no audio reached the client while the server held the rest";
  EXPECT_EQ(call.status(), 200);
  EXPECT_EQ(call.header("Content-Type"), "audio/wav");
  EXPECT_EQ(call.header("Transfer-Encoding"), "chunked");
  const std::string id = call.header("X-Steno-Job-Id");
  ASSERT_FALSE(id.empty());
  auto c = s.Client();
  EXPECT_EQ(JsonOf(c.Get("/v1/jobs/" + id))["state"], "processing") << "the server still holds";
  OpenGate(scratch_.path, 6);
  ASSERT_TRUE(call.Finish()) << httplib::to_string(call.error());
  const std::string audio = call.body();
  EXPECT_NEAR(DecodedSeconds(scratch_.path, "streamed.wav", audio),
              EspeakSeconds(scratch_.path, kText), 0.1);
  // The same audio is the job's stored result.
  EXPECT_EQ(WaitForJob(c, id)["state"], "completed");
  auto result = c.Get(("/v1/jobs/" + id + "/result").c_str());
  ASSERT_EQ(StatusOf(result), 200);
  EXPECT_TRUE(result->body == audio)
      << "stored " << result->body.size() << " B, streamed " << audio.size() << " B";
}

TEST_F(ApiSpeechTest, ARunThatBreaksOffAfterTheFirstByteCutsTheResponse) {
  ApiTestServer s({"--models-config", WriteModelsConfig(scratch_.path, 4)});
  SpeechCall call(
      s, {{"model", "tts"}, {"input", kText}, {"voice", "cut-midway"}, {"response_format", "wav"}});
  const bool first = call.WaitFirstBytes();
  OpenGate(scratch_.path, 4);  // the helper breaks its answer off where piece 2 would go
  ASSERT_TRUE(first) << "no audio reached the client";
  EXPECT_EQ(call.status(), 200);
  EXPECT_FALSE(call.Finish()) << "a response cut short must not read as a success ("
                              << call.body().size() << " B)";
  EXPECT_NE(call.error(), httplib::Error::Success);
}

TEST_F(ApiSpeechTest, AClientThatLeavesMidStreamCancelsItsJob) {
  ApiTestServer s({"--models-config", WriteModelsConfig(scratch_.path, 8)});
  SpeechCall call(
      s, {{"model", "tts"}, {"input", kText}, {"voice", "alloy"}, {"response_format", "wav"}},
      /*leave=*/true);
  const bool first = call.WaitFirstBytes();
  EXPECT_FALSE(call.Finish()) << "the client left";
  ASSERT_TRUE(first) << "no audio reached the client";
  const std::string id = call.header("X-Steno-Job-Id");
  ASSERT_FALSE(id.empty());
  // Pieces 2..7 go out, to a client that left; the last stays held, so only a cancel ends the job.
  OpenGate(scratch_.path, 7);
  auto c = s.Client();
  EXPECT_EQ(WaitForJob(c, id)["state"], "cancelled");
}

TEST_F(ApiSpeechTest, SpeechAsAJobStoresItsAudioAcrossARestart) {
  const std::string data = scratch_.path + "/data";
  std::string id, audio;
  {
    ApiTestServer s({"--models-config", config_, "--data-dir", data});
    auto c = s.Client();
    auto r = PostJson(c, "/v1/jobs",
                      {{"model", "tts"},
                       {"task", "speech"},
                       {"input", kText},
                       {"voice", "alloy"},
                       {"response_format", "flac"}});
    ASSERT_EQ(StatusOf(r), 202) << r->body;
    id = JsonOf(r)["id"];
    auto job = WaitForJob(c, id);
    ASSERT_EQ(job["state"], "completed") << job.dump();
    auto result = c.Get(("/v1/jobs/" + id + "/result").c_str());
    ASSERT_EQ(StatusOf(result), 200) << result->body.substr(0, 300);
    EXPECT_EQ(result->get_header_value("Content-Type"), "audio/flac");
    audio = result->body;
    EXPECT_EQ(ReadFileText(data + "/results/" + id + ".flac"), audio);
    EXPECT_NEAR(DecodedSeconds(scratch_.path, "job.flac", audio),
                EspeakSeconds(scratch_.path, kText), 0.1);
    // A format the audio is not stored in is refused, naming the parameter.
    auto other = c.Get(("/v1/jobs/" + id + "/result?format=json").c_str());
    EXPECT_EQ(StatusOf(other), 400);
    EXPECT_EQ(JsonOf(other)["error"]["param"], "format");
  }
  ApiTestServer again({"--models-config", config_, "--data-dir", data});
  auto c = again.Client();
  auto result = c.Get(("/v1/jobs/" + id + "/result").c_str());
  ASSERT_EQ(StatusOf(result), 200) << result->body.substr(0, 300);
  EXPECT_EQ(result->body, audio) << "the stored audio changed across a restart";
}

TEST_F(ApiSpeechTest, BadSpeechRequestsAre400sNamingTheField) {
  ApiTestServer s({"--models-config", config_});
  auto c = s.Client();
  const json good = {{"model", "tts"}, {"input", "Hello."}, {"voice", "alloy"}};
  struct Case {
    const char* field;
    json value;
    int status;
    const char* param;
  };
  const Case cases[] = {
      {"input", "", 400, "input"},         {"voice", "not a voice", 400, "voice"},
      {"speed", 9, 400, "speed"},          {"response_format", "srt", 400, "response_format"},
      {"model", "tiny", 400, "model"},      // a transcription model asked for speech
      {"model", "no-such", 404, "model"},   // unknown
      {"voice", "no-such-voice", 400, ""},  // the server's own 400, with its message
  };
  for (const auto& k : cases) {
    json body = good;
    body[k.field] = k.value;
    auto r = PostJson(c, "/v1/audio/speech", body);
    ASSERT_EQ(StatusOf(r), k.status) << k.field << ": " << r->body;
    auto e = JsonOf(r)["error"];
    if (*k.param) {
      EXPECT_EQ(e["param"], k.param) << r->body;
    } else {
      EXPECT_NE(e["message"].get<std::string>().find("no-such-voice"), std::string::npos)
          << r->body;
    }
  }
  // A speech model named for a transcription.
  auto r = c.Post("/v1/audio/transcriptions",
                  httplib::MultipartFormDataItems{FilePart("speech.wav"), Field("model", "tts")});
  ASSERT_EQ(StatusOf(r), 400) << r->body;
  EXPECT_EQ(JsonOf(r)["error"]["param"], "model");
}

TEST_F(ApiSpeechTest, TheServerProxyRelaysAnyRouteAndHoldsAStream) {
  ApiTestServer s({"--models-config", config_});
  auto c = s.Client();
  auto voices = c.Get("/v1/servers/tts/v1/voices");
  ASSERT_EQ(StatusOf(voices), 200) << voices->body;
  EXPECT_EQ(JsonOf(voices)["voices"][0], "alloy");
  // Bodies both ways, the status and headers of the server's answer, the query string.
  std::string payload(3 << 20, 'x');
  for (size_t i = 0; i < payload.size(); i += 4096) payload[i] = static_cast<char>('a' + i % 26);
  auto echo = c.Post("/v1/servers/tts/v1/echo?q=42", payload, "application/x-test");
  ASSERT_EQ(StatusOf(echo), 201);
  EXPECT_EQ(echo->get_header_value("Content-Type"), "application/x-test");
  EXPECT_EQ(echo->get_header_value("X-Echo-Query"), "42");
  EXPECT_TRUE(echo->body == payload) << "the echoed body differs (" << echo->body.size() << " B)";
  // Unknown and non-server models.
  auto unknown = c.Get("/v1/servers/nope/v1/voices");
  ASSERT_EQ(StatusOf(unknown), 404);
  EXPECT_EQ(JsonOf(unknown)["error"]["param"], "model");
  auto whisper = c.Get("/v1/servers/tiny/anything");
  ASSERT_EQ(StatusOf(whisper), 400);
  EXPECT_EQ(JsonOf(whisper)["error"]["param"], "model");

  // A request in flight is a busy stream of the runner until it ends.
  auto busy = [&] {
    auto runners = JsonOf(c.Get("/v1/runners"));
    for (const auto& r : runners["data"]) {
      if (r["model"] == "tts") return r["busy_streams"].get<int>();
    }
    return -1;
  };
  auto held = std::async(std::launch::async, [&s] {
    auto hc = s.Client();
    auto r = hc.Get("/v1/servers/tts/v1/hold");
    return r ? std::make_pair(r->status, r->body) : std::make_pair(0, std::string());
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (busy() != 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(busy(), 1) << "the held request is not counted on its runner";
  std::ofstream(scratch_.path + "/release") << "go";
  auto [status, body] = held.get();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "released");
  while (busy() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(busy(), 0) << "the finished request still holds its stream";
}

TEST_F(ApiSpeechTest, LoadAndUnloadWorkForServerModels) {
  ApiTestServer s({"--models-config", config_});
  auto c = s.Client();
  auto loaded = PostJson(c, "/v1/models/tts/load", json::object());
  ASSERT_EQ(StatusOf(loaded), 200) << loaded->body;
  auto body = JsonOf(loaded);
  ASSERT_EQ(body["runners"].size(), 1u) << body.dump();
  EXPECT_EQ(body["runners"][0]["kind"], "server");
  // The server answers through the proxy: it really runs.
  EXPECT_EQ(StatusOf(c.Get("/v1/servers/tts/health")), 200);
  auto unloaded = PostJson(c, "/v1/models/tts/unload", json::object());
  ASSERT_EQ(StatusOf(unloaded), 200) << unloaded->body;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  json runners;
  while (std::chrono::steady_clock::now() < deadline) {
    runners = JsonOf(c.Get("/v1/runners"));
    if (runners["data"].empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(runners["data"].empty()) << runners.dump();
}

TEST_F(ApiSpeechTest, TheProxyWantsTheApiKey) {
  ApiTestServer s({"--models-config", config_, "--api-key", "sk-speech-test"});
  auto c = s.Client();
  EXPECT_EQ(StatusOf(c.Get("/v1/servers/tts/v1/voices")), 401);
  EXPECT_EQ(StatusOf(PostJson(c, "/v1/audio/speech",
                              {{"model", "tts"}, {"input", "Hi."}, {"voice", "alloy"}})),
            401);
  c.set_bearer_token_auth("sk-speech-test");
  EXPECT_EQ(StatusOf(c.Get("/v1/servers/tts/v1/voices")), 200);
}

}  // namespace
}  // namespace steno::test
