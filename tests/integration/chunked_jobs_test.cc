// Long recordings across streams (server/chunked_jobs.h) against real `steno serve` processes:
// the real Silero model (../shared/models) on twenty copies of the espeak-ng speech, one every
// 12 s (some 130 s of speech: at least four chunks of at most 30 s of it, engine/chunk_plan.h),
// and the tiny random-weight model, greedy without temperature fallback (ApiTestServer's flags),
// so a chunk decodes to the same text wherever it runs. Two streams: --threads 1 on --cpu-cores 2.
// The assertions read the server's log for what ran where (its lines are written in the order they
// happened) and wait for events, never for time.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api_test_server.h"
#include "support/child_process.h"
#include "support/gapped_speech.h"
#include "support/process.h"
#include "support/test_env.h"

namespace steno::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kCopies = 20;
constexpr double kPeriod = 12;   // a silence of some 5 s after each copy
constexpr int kMinChunks = 4;    // some 130 s of speech: at least four chunks of 30 s
constexpr double kMargin = 0.3;  // beyond the VAD's own boundary error

std::unique_ptr<ApiTestServer> ChunkServer(int chunk_streams, const std::string& level = "info") {
  auto s = std::make_unique<ApiTestServer>(
      std::vector<std::string>{"--chunk-streams", std::to_string(chunk_streams)}, level);
  fs::create_symlink(SileroModel(), s->models + "/ggml-silero-v6.2.0.bin");
  return s;
}

std::string PostAudio(httplib::Client& c, const std::string& path) {
  auto r = c.Post("/v1/jobs",
                  httplib::MultipartFormDataItems{
                      {"file", ReadFileText(path), fs::path(path).filename().string(), "audio/wav"},
                      Field("model", "tiny"),
                      Field("language", "en")});
  EXPECT_EQ(StatusOf(r), 202) << (r ? r->body : "");
  return r ? JsonOf(r).value("id", "") : "";
}

json VerboseResult(httplib::Client& c, const std::string& id) {
  return JsonOf(c.Get("/v1/jobs/" + id + "/result?format=verbose_json"));
}

// "job ID: chunk K of N (...) started on runner R (attempt A)": (K, A) in log order.
std::vector<std::pair<int, int>> ChunkStarts(const std::string& log, const std::string& id) {
  const std::regex re("job " + id +
                      R"(: chunk (\d+) of \d+ \([^)]*\) started on runner \d+ \(attempt (\d+)\))");
  std::vector<std::pair<int, int>> out;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
       ++it) {
    out.emplace_back(std::stoi((*it)[1]), std::stoi((*it)[2]));
  }
  return out;
}

// The chunk count of the job's plan, as logged ("... in N chunks ..."); -1 if not planned.
int PlannedChunks(const std::string& log, const std::string& id) {
  std::smatch m;
  if (!std::regex_search(log, m, std::regex("job " + id + R"(: [0-9.]+ s of audio in (\d+) )"))) {
    return -1;
  }
  return std::stoi(m[1]);
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The value of an unlabelled gauge, or the sum of a labelled family's samples, in a /metrics
// body.
double MetricIn(const std::string& body, const std::string& name) {
  double sum = 0;
  const std::regex re("^" + name + R"((\{[^}]*\})? ([0-9.eE+-]+)$)", std::regex::multiline);
  for (auto it = std::sregex_iterator(body.begin(), body.end(), re); it != std::sregex_iterator();
       ++it) {
    sum += std::stod((*it)[2]);
  }
  return sum;
}

// The same from a fresh GET /metrics (-1: no answer).
double Metric(httplib::Client& c, const std::string& name) {
  auto r = c.Get("/metrics");
  return r ? MetricIn(r->body, name) : -1;
}

int BusyStreams(httplib::Client& c) {
  const json runners = JsonOf(c.Get("/v1/runners"));
  int busy = 0;
  for (const auto& r : runners["data"]) busy += r.value("busy_streams", 0);
  return busy;
}

bool NoDecodedAudioLeft(const ApiTestServer& s) {
  std::error_code ec;
  return fs::is_empty(s.data + "/chunks", ec) && !ec;
}

bool WaitForLog(ApiTestServer& s, const std::function<bool(const std::string&)>& done) {
  return WaitUntil([&] { return done(ReadFileText(s.log)); }, 300s);
}

void SignalRunners(const ApiTestServer& s, int sig) {
  for (pid_t pid : ChildrenOf(s.pid())) kill(pid, sig);
}

class ChunkedJobsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScopedTempDir("steno-chunked");
    speech_ = new SpacedSpeech(MakeSpacedSpeech(kCopies, kPeriod));
    WriteWav16k(Long(), speech_->pcm);
  }
  static void TearDownTestSuite() {
    delete speech_;
    delete dir_;
  }
  void SetUp() override {
    if (SileroModel().empty()) GTEST_SKIP() << "the real VAD model is not at ../shared/models";
  }
  static std::string Long() { return dir_->path + "/long.wav"; }

  // Times in the original audio, increasing, and none in a silence between two copies.
  static void ExpectInTheAudiosTimeline(const json& verbose) {
    EXPECT_NEAR(verbose.value("duration", 0.0), speech_->duration(), 0.05);
    const auto& segs = verbose["segments"];
    ASSERT_FALSE(segs.empty()) << verbose.dump();
    double last_start = 0;
    for (const auto& s : segs) {
      const double start = s["start"], end = s["end"];
      EXPECT_GE(start, last_start) << s.dump();
      EXPECT_LE(start, end) << s.dump();
      EXPECT_LE(end, speech_->duration()) << s.dump();
      last_start = start;
      for (size_t i = 0; i + 1 < speech_->copies.size(); ++i) {
        const double from = speech_->copies[i].second + kMargin;
        const double to = speech_->copies[i + 1].first - kMargin;
        EXPECT_FALSE(start > from && start < to) << "starts in a silence: " << s.dump();
        EXPECT_FALSE(end > from && end < to) << "ends in a silence: " << s.dump();
      }
    }
    // The last copy's speech is in the last chunk: a segment reaches it.
    EXPECT_GE(segs.back()["end"].get<double>(), speech_->copies.back().first) << verbose.dump();
  }

  static ScopedTempDir* dir_;
  static SpacedSpeech* speech_;
};
ScopedTempDir* ChunkedJobsTest::dir_ = nullptr;
SpacedSpeech* ChunkedJobsTest::speech_ = nullptr;

std::string Trimmed(std::string s) {
  const auto first = s.find_first_not_of(' ');
  return first == std::string::npos ? "" : s.substr(first);
}

// The same chunks on two streams (two at a time) and on one (one at a time) give the same
// transcript; the job on two streams had its runner grown to two streams, and a streamed request
// of it gets the same text in deltas, in order.
TEST_F(ChunkedJobsTest, TwoStreamsGiveTheSameTranscriptAsOneAtATime) {
  auto two = ChunkServer(2);
  auto one = ChunkServer(1);
  auto c2 = two->Client();
  auto c1 = one->Client();
  const std::string id2 = PostAudio(c2, Long());
  const std::string id1 = PostAudio(c1, Long());
  ASSERT_EQ(WaitForJob(c2, id2).value("state", ""), "completed");
  ASSERT_EQ(WaitForJob(c1, id1).value("state", ""), "completed");
  const json r2 = VerboseResult(c2, id2), r1 = VerboseResult(c1, id1);
  ExpectInTheAudiosTimeline(r2);
  ASSERT_EQ(r2["segments"].size(), r1["segments"].size()) << r2.dump() << "\n" << r1.dump();
  EXPECT_EQ(r2["text"], r1["text"]);
  for (size_t i = 0; i < r2["segments"].size(); ++i) {
    const json &a = r2["segments"][i], &b = r1["segments"][i];
    EXPECT_EQ(a["id"], static_cast<int>(i));
    EXPECT_EQ(a["text"], b["text"]) << i;
    EXPECT_DOUBLE_EQ(a["start"], b["start"]) << i;
    EXPECT_DOUBLE_EQ(a["end"], b["end"]) << i;
  }

  const std::string log2 = ReadFileText(two->log);
  const int chunks = PlannedChunks(log2, id2);
  EXPECT_GE(chunks, kMinChunks) << log2;
  EXPECT_EQ(PlannedChunks(ReadFileText(one->log), id1), chunks);
  EXPECT_EQ(ChunkStarts(log2, id2).size(), static_cast<size_t>(chunks)) << log2;
  // Two streams were granted to the job on `two`; one was enough on `one`.
  auto streams = [](httplib::Client& c) {
    const json runners = JsonOf(c.Get("/v1/runners"));
    int n = 0;
    for (const auto& r : runners["data"]) n += r.value("streams", 0);
    return n;
  };
  EXPECT_EQ(streams(c2), 2);
  EXPECT_EQ(streams(c1), 1);
  EXPECT_TRUE(NoDecodedAudioLeft(*two));
  EXPECT_TRUE(NoDecodedAudioLeft(*one));
  one.reset();

  // stream=true: the deltas of the chunks, in order, make the same text.
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/audio/transcriptions";
  const std::string boundary = "steno-chunked-boundary";
  req.headers.emplace("Content-Type", "multipart/form-data; boundary=" + boundary);
  req.body = "--" + boundary +
             "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"long.wav\"\r\n\r\n" +
             ReadFileText(Long()) + "\r\n";
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"model", "tiny"}, {"language", "en"}, {"stream", "true"}}) {
    req.body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + k + "\"\r\n\r\n" +
                v + "\r\n";
  }
  req.body += "--" + boundary + "--\r\n";
  auto r = c2.send(req);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto events = ParseSse(r->body);
  ASSERT_GE(events.size(), 2u);
  std::string deltas;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i].event, "transcript.text.delta");
    deltas += events[i].data.value("delta", "");
  }
  EXPECT_EQ(events.back().event, "transcript.text.done");
  EXPECT_EQ(events.back().data.value("text", ""), deltas);
  EXPECT_EQ(Trimmed(deltas), Trimmed(r2.value("text", "")));
  // That synchronous request (kept in memory, never stored) ran as the same chunks.
  const std::string sync_id = r->get_header_value("X-Steno-Job-Id");
  ASSERT_FALSE(sync_id.empty());
  EXPECT_EQ(PlannedChunks(ReadFileText(two->log), sync_id), chunks);
  EXPECT_TRUE(NoDecodedAudioLeft(*two));
}

// kill -9 of the runner while it runs a chunk (not the first): that chunk runs again, alone;
// the plan and the chunks done before are not run again, and the transcript is the one an
// uninterrupted run gives.
TEST_F(ChunkedJobsTest, KilledRunnerRetriesOnlyTheChunkItWasRunning) {
  auto s = ChunkServer(1);  // one chunk at a time: the runner runs exactly one when killed
  auto c = s->Client();
  const std::string id = PostAudio(c, Long());
  // The chunks that lost their run, by the coordinator's lines: chunk -> times.
  auto lost = [&id](const std::string& log) {
    std::map<int, int> out;
    const std::regex re("job " + id + R"(: chunk (\d+) lost its run)");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
         ++it) {
      ++out[std::stoi((*it)[1])];
    }
    return out;
  };
  // Kill right after a chunk's start. A kill that landed between two chunks (the runner idle)
  // loses nothing and is followed by the next chunk's first start: that one is killed in turn.
  size_t seen = 0;
  for (int tries = 0; lost(ReadFileText(s->log)).empty() && tries < 3; ++tries) {
    ASSERT_TRUE(WaitForLog(*s, [&](const std::string& log) {
      auto starts = ChunkStarts(log, id);
      return starts.size() > seen && starts.back().first >= 1;
    })) << "no chunk started";
    seen = ChunkStarts(ReadFileText(s->log), id).size();
    SignalRunners(*s, SIGKILL);
    ASSERT_TRUE(WaitForLog(*s, [&](const std::string& log) {
      return !lost(log).empty() || ChunkStarts(log, id).size() > seen;
    })) << "nothing happened after the kill";
  }
  ASSERT_EQ(WaitForJob(c, id).value("state", ""), "completed");

  const std::string log = ReadFileText(s->log);
  const std::map<int, int> lost_runs = lost(log);
  ASSERT_FALSE(lost_runs.empty()) << log;
  EXPECT_EQ(lost_runs.count(0), 0u) << "chunk 0 was done before the kill";
  EXPECT_EQ(Count(log, "job " + id + ": the plan"), 0u) << log;  // planned once
  EXPECT_GE(PlannedChunks(log, id), kMinChunks);
  // Each chunk ran once, and once more for each run it lost; attempts count up.
  std::map<int, int> runs;
  for (const auto& [chunk, attempt] : ChunkStarts(log, id)) {
    EXPECT_EQ(attempt, ++runs[chunk]) << chunk;
  }
  ASSERT_EQ(runs.size(), static_cast<size_t>(PlannedChunks(log, id)));
  for (const auto& [chunk, n] : runs) {
    const auto it = lost_runs.find(chunk);
    EXPECT_EQ(n, 1 + (it == lost_runs.end() ? 0 : it->second)) << "chunk " << chunk;
  }

  // The same audio again, uninterrupted: the same transcript.
  const json retried = VerboseResult(c, id);
  const std::string again = PostAudio(c, Long());
  ASSERT_EQ(WaitForJob(c, again).value("state", ""), "completed");
  const json clean = VerboseResult(c, again);
  EXPECT_EQ(retried["text"], clean["text"]);
  EXPECT_EQ(retried["segments"].size(), clean["segments"].size());
  ExpectInTheAudiosTimeline(retried);
  EXPECT_TRUE(NoDecodedAudioLeft(*s));
}

// DELETE while two chunks run and a third waits in the queue (the runner held still meanwhile,
// so none can finish first): every chunk stops, the waiting one without ever starting, nothing
// starts afterwards, the streams go idle, the scheduler holds no sub-job and the decoded audio
// is deleted.
TEST_F(ChunkedJobsTest, CancelStopsEveryChunk) {
  auto s = ChunkServer(3);
  auto c = s->Client();
  const std::string id = PostAudio(c, Long());
  ASSERT_TRUE(WaitForLog(*s, [&](const std::string& log) {
    return ChunkStarts(log, id).size() >= 2;
  })) << "two chunks did not start";
  SignalRunners(*s, SIGSTOP);
  auto cancelled = c.Delete("/v1/jobs/" + id);
  ASSERT_EQ(StatusOf(cancelled), 200) << cancelled->body;
  const std::string told = "job " + id + ": cancelled; its 3 queued or running sub-jobs";
  const bool stopped =
      WaitForLog(*s, [&](const std::string& log) { return log.find(told) != std::string::npos; });
  SignalRunners(*s, SIGCONT);
  ASSERT_TRUE(stopped) << ReadFileText(s->log);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return NoDecodedAudioLeft(*s) && BusyStreams(c) == 0 &&
               Metric(c, "steno_jobs_running") == 0 && Metric(c, "steno_queue_length") == 0;
      },
      300s))
      << ReadFileText(s->log);

  EXPECT_EQ(JsonOf(c.Get("/v1/jobs/" + id)).value("state", ""), "cancelled");
  const std::string log = ReadFileText(s->log);
  const size_t cancel_at = log.find(told);
  const auto starts = ChunkStarts(log, id);
  const auto starts_before = ChunkStarts(log.substr(0, cancel_at), id);
  EXPECT_EQ(starts.size(), starts_before.size()) << "a chunk started after the cancel: " << log;
  // Three sub-jobs were outstanding and each ended; the one that waited never started.
  const std::regex ended("job " + id + R"(: chunk (\d+) ended (\w+))");
  int ended_count = 0, never_started = 0;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), ended); it != std::sregex_iterator();
       ++it) {
    ++ended_count;
    const int chunk = std::stoi((*it)[1]);
    bool started = false;
    for (const auto& st : starts) started = started || st.first == chunk;
    if (!started) {
      ++never_started;
      EXPECT_EQ((*it)[2], "cancelled") << log;
    }
  }
  EXPECT_EQ(ended_count, 3) << log;
  EXPECT_EQ(never_started, 1) << log;
  EXPECT_LT(starts.size(), static_cast<size_t>(PlannedChunks(log, id)));
}

// A short job submitted while the long job's two chunks hold both streams starts before every
// chunk the long job submits after it: each of those waits behind it in the queue. The order is
// the scheduler's, from its placement lines (one thread writes them).
TEST_F(ChunkedJobsTest, ShortJobGoesAheadOfTheRemainingChunks) {
  auto s = ChunkServer(2, "debug");
  auto c = s->Client();
  const std::string id = PostAudio(c, Long());
  ASSERT_TRUE(WaitForLog(*s, [&](const std::string& log) {
    return ChunkStarts(log, id).size() >= 2;
  })) << "two chunks did not start";
  const std::string short_id = PostJob(c, "speech.wav");
  const size_t queued_at = ReadFileText(s->log).size();  // the short job is queued by now
  ASSERT_EQ(WaitForJob(c, short_id).value("state", ""), "completed");
  ASSERT_EQ(WaitForJob(c, id).value("state", ""), "completed");

  const std::string log = ReadFileText(s->log);
  const size_t short_placed = log.find("job " + short_id + " placed on runner");
  ASSERT_NE(short_placed, std::string::npos) << log;
  EXPECT_EQ(PlannedChunks(log, short_id), -1);  // short: not chunked
  const std::regex submitted("job " + id + R"(: chunk (\d+) of \d+ submitted)");
  int later = 0;
  for (auto it =
           std::sregex_iterator(log.begin() + static_cast<long>(queued_at), log.end(), submitted);
       it != std::sregex_iterator(); ++it) {
    const std::string chunk = (*it)[1];
    const size_t placed = log.find("job " + id + "~c" + chunk + " placed on runner");
    ASSERT_NE(placed, std::string::npos) << chunk;
    EXPECT_GT(placed, short_placed) << "chunk " << chunk << " went ahead of the short job";
    ++later;
  }
  EXPECT_GE(later, 1) << "no chunk was submitted after the short job: " << log;
}

// The job gauges count a chunked job once, as the job it is: in one /metrics answer that shows
// two of its chunks running at once (two busy streams), one job runs and none is queued (the
// scheduler itself holds two sub-jobs); once it ended, none.
TEST_F(ChunkedJobsTest, GaugesCountAChunkedJobOnce) {
  auto s = ChunkServer(2);
  auto c = s->Client();
  const std::string id = PostAudio(c, Long());
  ASSERT_FALSE(id.empty());
  std::string both;  // the first /metrics body with both streams busy
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto r = c.Get("/metrics");
        if (r && MetricIn(r->body, "steno_runner_streams_busy") == 2) both = r->body;
        return !both.empty();
      },
      300s))
      << "two chunks never ran at once: " << ReadFileText(s->log);
  EXPECT_EQ(MetricIn(both, "steno_jobs_running"), 1) << both;
  EXPECT_EQ(MetricIn(both, "steno_queue_length"), 0) << both;
  ASSERT_EQ(WaitForJob(c, id).value("state", ""), "completed");
  EXPECT_TRUE(WaitUntil(
      [&] { return Metric(c, "steno_jobs_running") == 0 && Metric(c, "steno_queue_length") == 0; },
      60s));
}

// --chunk-streams is read from the flag, STENO_CHUNK_STREAMS and the config file's
// `chunk-streams`; a value out of 1..64 from any of them refuses to start, naming the flag.
TEST(ChunkStreamsFlagTest, OutOfRangeIsAUsageErrorFromEverySource) {
  ScopedTempDir dir("steno-chunk-flag");
  const std::string config = dir.path + "/steno.toml";
  std::ofstream(config) << "[serve]\nchunk-streams = 65\n";
  const std::vector<std::string> serve = {
      StenoBin(),         "serve",        "--port", "0",        "--data-dir",
      dir.path + "/data", "--models-dir", dir.path, "--device", "cpu"};
  ProcessOptions o;
  o.timeout_s = 60;
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = serve;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  };
  auto flag = RunProcess(with({"--chunk-streams", "0"}), o);
  EXPECT_EQ(flag.exit_code, 2) << flag.err;
  EXPECT_NE(flag.err.find("--chunk-streams must be from 1 to 64"), std::string::npos) << flag.err;
  auto file = RunProcess(with({"--config", config}), o);
  EXPECT_EQ(file.exit_code, 2) << file.err;
  EXPECT_NE(file.err.find("--chunk-streams"), std::string::npos) << file.err;
  ProcessOptions env = o;
  env.env = {{"STENO_CHUNK_STREAMS", "0"}};
  auto from_env = RunProcess(serve, env);
  EXPECT_EQ(from_env.exit_code, 2) << from_env.err;
  EXPECT_NE(from_env.err.find("--chunk-streams"), std::string::npos) << from_env.err;
}

}  // namespace
}  // namespace steno::test
