// stream=true on POST /v1/audio/transcriptions against a real `steno serve` (the tiny random
// model, greedy and without temperature fallback, so two runs give the same text): OpenAI's
// transcript.text.delta events while the job runs, transcript.text.done with the non-streamed
// text, and a client that hangs up cancels its job.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api_test_server.h"
#include "audio/decoder.h"
#include "support/gapped_speech.h"
#include "support/test_env.h"

namespace steno::test {
namespace {

using json = nlohmann::json;

// A multipart/form-data body by hand (httplib's client streams a response only through send()).
std::string Multipart(const std::string& boundary, const std::string& audio,
                      const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string body = "--" + boundary +
                     "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"audio.wav\"\r\n"
                     "Content-Type: audio/wav\r\n\r\n" +
                     ReadFileText(audio) + "\r\n";
  for (const auto& [name, value] : fields) {
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" +
            value + "\r\n";
  }
  return body + "--" + boundary + "--\r\n";
}

struct StreamRun {
  int status = 0;
  std::string content_type;
  std::string job_id;
  std::vector<SseEvent> events;
  bool completed = false;  // the response ended by itself (not cut by the test)
};

// Streams `audio`; `on_event` sees each event as it arrives and returns false to hang up.
StreamRun Stream(const ApiTestServer& server, const std::string& audio,
                 const std::function<bool(const SseEvent&, const std::string& job_id)>& on_event) {
  StreamRun run;
  const std::string boundary = "steno-stream-test-boundary";
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/audio/transcriptions";
  req.headers.emplace("Content-Type", "multipart/form-data; boundary=" + boundary);
  req.body =
      Multipart(boundary, audio, {{"model", "tiny"}, {"language", "en"}, {"stream", "true"}});
  req.response_handler = [&run](const httplib::Response& r) {
    run.status = r.status;
    run.content_type = r.get_header_value("Content-Type");
    run.job_id = r.get_header_value("X-Steno-Job-Id");
    return true;
  };
  std::string buffer;
  bool keep_going = true;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    buffer.append(data, len);
    size_t end;
    while (keep_going && (end = buffer.find("\n\n")) != std::string::npos) {
      auto parsed = ParseSse(buffer.substr(0, end + 2));
      buffer.erase(0, end + 2);
      for (const auto& e : parsed) {
        run.events.push_back(e);
        keep_going = keep_going && on_event(e, run.job_id);
      }
    }
    return keep_going;
  };
  auto c = server.Client();
  auto r = c.send(req);
  run.completed = static_cast<bool>(r);
  return run;
}

std::string Joined(const std::vector<SseEvent>& events) {
  std::string text;
  for (const auto& e : events) {
    if (e.event == "transcript.text.delta") text += e.data.value("delta", "");
  }
  return text;
}

class TranscriptionStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ApiTestServer(); }
  static void TearDownTestSuite() { delete server_; }
  static ApiTestServer* server_;
};
ApiTestServer* TranscriptionStreamTest::server_ = nullptr;

TEST_F(TranscriptionStreamTest, DeltasThenDoneGiveTheNonStreamedText) {
  auto c = server_->Client();
  auto plain =
      c.Post("/v1/audio/transcriptions",
             httplib::MultipartFormDataItems{FilePart("speech_60s.wav"), Field("model", "tiny"),
                                             Field("language", "en")});
  ASSERT_EQ(StatusOf(plain), 200);
  const std::string text = JsonOf(plain).value("text", "");
  ASSERT_FALSE(text.empty());

  StreamRun run = Stream(*server_, MediaPath("speech_60s.wav"),
                         [](const SseEvent&, const std::string&) { return true; });
  ASSERT_TRUE(run.completed);
  EXPECT_EQ(run.status, 200);
  EXPECT_EQ(run.content_type, "text/event-stream");
  ASSERT_GE(run.events.size(), 2u);
  // Deltas first (one per segment: 60 s of audio gives several), then one done, last.
  EXPECT_EQ(run.events.back().event, "transcript.text.done");
  EXPECT_EQ(run.events.back().data["type"], "transcript.text.done");
  EXPECT_EQ(run.events.back().data["text"], text);
  int deltas = 0;
  for (size_t i = 0; i + 1 < run.events.size(); ++i) {
    EXPECT_EQ(run.events[i].event, "transcript.text.delta");
    EXPECT_EQ(run.events[i].data["type"], "transcript.text.delta");
    ++deltas;
  }
  EXPECT_GE(deltas, 2);
  EXPECT_EQ(Joined(run.events), text);
  // A synchronous request's run: answered by id, completed, never stored (not in the list).
  auto job = JsonOf(c.Get("/v1/jobs/" + run.job_id));
  EXPECT_EQ(job["state"], "completed") << job.dump();
  EXPECT_TRUE(JsonOf(c.Get("/v1/jobs"))["data"].empty());
}

// The value of the metric line `name` (labels included) in an exposition; -1 if absent.
double MetricValue(const std::string& text, const std::string& name) {
  const size_t at = text.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + name.size() + 2));
}

TEST_F(TranscriptionStreamTest, FirstDeltaComesWhileTheJobRunsAndHangingUpCancelsIt) {
  // Four minutes of speech: eight 30 s windows, so most of the work is left after the first
  // window's segments are streamed.
  auto pcm = audio::Decode(audio::MediaFile(MediaPath("speech_60s.wav")));
  ASSERT_TRUE(pcm.ok());
  std::vector<float> longer;
  for (int i = 0; i < 4; ++i) longer.insert(longer.end(), pcm->begin(), pcm->end());
  ScopedTempDir dir("steno-stream");
  WriteWav16k(dir.path + "/long.wav", longer);

  std::string state_at_first_delta;
  double running_at_first_delta = -1;
  int busy_streams_at_first_delta = -1;
  auto c = server_->Client();
  const double cancelled_before = MetricValue(
      c.Get("/metrics")->body, "steno_jobs_finished_total{state=\"cancelled\",error_kind=\"\"}");
  StreamRun run =
      Stream(*server_, dir.path + "/long.wav", [&](const SseEvent& e, const std::string& id) {
        if (e.event != "transcript.text.delta") return true;
        auto c = server_->Client();
        state_at_first_delta = JsonOf(c.Get("/v1/jobs/" + id)).value("state", "");
        // In memory only, yet counted like any job while it runs.
        running_at_first_delta = MetricValue(c.Get("/metrics")->body, "steno_jobs_running");
        busy_streams_at_first_delta = 0;
        const json runners = JsonOf(c.Get("/v1/runners"));
        for (const auto& r : runners["data"]) {
          busy_streams_at_first_delta += r.value("busy_streams", 0);
        }
        return false;  // hang up
      });
  EXPECT_EQ(run.status, 200);
  ASSERT_FALSE(run.job_id.empty());
  EXPECT_EQ(state_at_first_delta, "processing") << "the first delta came only after the job ended";
  EXPECT_EQ(running_at_first_delta, 1);
  EXPECT_EQ(busy_streams_at_first_delta, 1);
  auto job = WaitForJob(c, run.job_id);
  EXPECT_EQ(job["state"], "cancelled") << job.dump();
  // The runner stops decoding it: its stream is free and the scheduler counts it cancelled.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  double cancelled = cancelled_before;
  while (cancelled <= cancelled_before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancelled = MetricValue(c.Get("/metrics")->body,
                            "steno_jobs_finished_total{state=\"cancelled\",error_kind=\"\"}");
  }
  EXPECT_EQ(cancelled, std::max(0.0, cancelled_before) + 1);
  EXPECT_EQ(MetricValue(c.Get("/metrics")->body, "steno_jobs_running"), 0);
}

}  // namespace
}  // namespace steno::test
