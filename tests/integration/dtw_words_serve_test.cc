// Per-request DTW word timestamps on `steno serve` (server::Runtime::SchedulerModel): on a server
// started without --dtw-words, a request that asks for words runs on a runner of its model
// loaded with DTW (GET /v1/runners: "word_timing": "dtw") and gets DTW-timed words; a request
// without words runs on a runner of the same model that is not (flash attention kept); both are
// shown under the model's own name. With --dtw-words every runner is loaded with DTW, so one
// runner serves both. A generated model of tiny's dimensions (random weights: the text is
// garbage; the times and the timing source are what is checked).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api_test_server.h"
#include "support/child_process.h"
#include "support/process.h"

namespace steno::test {
namespace {

using json = nlohmann::json;

constexpr const char* kModel = "tinydims";  // tiny's dimensions: an alignment-heads preset

void InstallTinyDims(const ApiTestServer& server) {
  auto made = RunProcess({MakeTestModelBin(), "--preset", "tiny", "--seed", "5", "--out",
                          server.models + "/ggml-" + kModel + ".bin"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
}

httplib::Result Transcribe(const ApiTestServer& server, httplib::MultipartFormDataItems extra) {
  httplib::MultipartFormDataItems items = {FilePart("speech.wav"), Field("model", kModel),
                                           Field("language", "en"),
                                           Field("response_format", "verbose_json")};
  items.insert(items.end(), extra.begin(), extra.end());
  auto c = server.Client();
  return c.Post("/v1/audio/transcriptions", items);
}

// The runners of kModel, as GET /v1/runners shows them.
std::vector<json> RunnersOfModel(const ApiTestServer& server) {
  auto c = server.Client();
  const json list = JsonOf(c.Get("/v1/runners"));
  std::vector<json> out;
  if (!list.is_object()) return out;
  for (const auto& r : list["data"]) {
    if (r.value("model", "") == kModel) out.push_back(r);
  }
  return out;
}

// Waits until kModel's runners are exactly `want` (word_timing → jobs done); returns whether
// they were (the last list is printed when not).
bool RunnersBecome(const ApiTestServer& server, const std::map<std::string, int>& want) {
  std::vector<json> last;
  const bool ok = WaitUntil(
      [&] {
        last = RunnersOfModel(server);
        std::map<std::string, int> seen;
        for (const auto& r : last) seen[r.value("word_timing", "?")] += r.value("jobs_done", 0);
        return last.size() == want.size() && seen == want;
      },
      std::chrono::seconds(60));
  if (!ok) ADD_FAILURE() << "runners of " << kModel << ": " << json(last).dump();
  return ok;
}

// Words timed by DTW, inside the audio, starting in order; returns how many there were.
size_t ExpectDtwWordsInsideTheAudio(const json& v) {
  EXPECT_EQ(v.value("word_timing", ""), "dtw") << v.dump();
  const double duration = v.value("duration", 0.0);
  EXPECT_GT(duration, 0) << v.dump();
  size_t n = 0;
  double last_start = 0;
  for (const auto& w : v.value("words", json::array())) {
    const double start = w["start"].get<double>(), end = w["end"].get<double>();
    EXPECT_GE(start, 0) << w.dump();
    EXPECT_LE(end, duration) << w.dump();
    EXPECT_LE(start, end) << w.dump();
    EXPECT_GE(start, last_start) << w.dump();
    last_start = start;
    ++n;
  }
  return n;
}

TEST(DtwWordsServeTest, WordsRunOnTheModelsDtwRunnerAndOtherRequestsKeepTheirOwn) {
  ApiTestServer server;
  InstallTinyDims(server);

  auto words = Transcribe(server, {Field("timestamp_granularities[]", "word"),
                                   Field("timestamp_granularities[]", "segment")});
  ASSERT_EQ(StatusOf(words), 200) << (words ? words->body : "");
  EXPECT_GT(ExpectDtwWordsInsideTheAudio(JsonOf(words)), 0u);
  ASSERT_TRUE(RunnersBecome(server, {{"dtw", 1}}));
  // The request's record names the model the user asked for, not the runner's variant.
  auto c = server.Client();
  const json sync_job = JsonOf(c.Get("/v1/jobs/" + words->get_header_value("X-Steno-Job-Id")));
  EXPECT_EQ(sync_job.value("model", ""), kModel) << sync_job.dump();

  // Without words: a runner of its own, without DTW; the output has neither words nor timing.
  auto plain = Transcribe(server, {});
  ASSERT_EQ(StatusOf(plain), 200) << (plain ? plain->body : "");
  const json p = JsonOf(plain);
  EXPECT_FALSE(p.contains("words")) << p.dump();
  EXPECT_FALSE(p.contains("word_timing")) << p.dump();
  ASSERT_TRUE(RunnersBecome(server, {{"dtw", 1}, {"tokens", 1}}));
  // `steno ps` and /metrics show both runners under the model's name, told apart by how they
  // time words, never by the internal variant key.
  auto table = RunProcess({StenoBin(), "ps", "--url", server.Url()});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.find("#dtw"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("WORDS"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(" dtw "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(" tokens "), std::string::npos) << table.out;
  auto metrics = c.Get("/metrics");
  ASSERT_EQ(StatusOf(metrics), 200);
  EXPECT_EQ(metrics->body.find("#dtw"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("word_timing=\"dtw\""), std::string::npos) << metrics->body;

  // The jobs API's equivalent runs on the DTW runner too; the stored job names the model.
  auto posted = c.Post("/v1/jobs", httplib::MultipartFormDataItems{
                                       FilePart("speech.wav"), Field("model", kModel),
                                       Field("language", "en"), Field("word_timestamps", "true")});
  ASSERT_EQ(StatusOf(posted), 202) << (posted ? posted->body : "");
  const std::string id = JsonOf(posted).value("id", "");
  const json job = WaitForJob(c, id);
  ASSERT_EQ(job.value("state", ""), "completed") << job.dump();
  EXPECT_EQ(job.value("model", ""), kModel) << job.dump();
  auto result = c.Get("/v1/jobs/" + id + "/result?format=verbose_json");
  ASSERT_EQ(StatusOf(result), 200);
  EXPECT_GT(ExpectDtwWordsInsideTheAudio(JsonOf(result)), 0u);
  ASSERT_TRUE(RunnersBecome(server, {{"dtw", 2}, {"tokens", 1}}));
  const json listed = JsonOf(c.Get(std::string("/v1/jobs?model=") + kModel));
  EXPECT_EQ(listed["data"].size(), 1u) << listed.dump();  // the async job, under its model

  // Bad requests are still refused naming the field, and the variant is no model of its own.
  auto bad = Transcribe(server, {Field("timestamp_granularities[]", "sentence")});
  ASSERT_EQ(StatusOf(bad), 400);
  EXPECT_EQ(JsonOf(bad)["error"]["param"], "timestamp_granularities[]") << bad->body;
  auto c2 = server.Client();
  auto variant = c2.Post("/v1/audio/transcriptions",
                         httplib::MultipartFormDataItems{
                             FilePart("speech.wav"), Field("model", std::string(kModel) + "#dtw")});
  ASSERT_EQ(StatusOf(variant), 404) << variant->body;
  EXPECT_EQ(JsonOf(variant)["error"]["param"], "model") << variant->body;

  // Unloading the model unloads both of its runners.
  auto unload = c.Post(std::string("/v1/models/") + kModel + "/unload", "", "application/json");
  ASSERT_EQ(StatusOf(unload), 200) << unload->body;
  EXPECT_TRUE(WaitUntil([&] { return RunnersOfModel(server).empty(); }, std::chrono::seconds(60)))
      << json(RunnersOfModel(server)).dump();
}

TEST(DtwWordsServeTest, WithDtwWordsOneRunnerServesEveryRequest) {
  ApiTestServer server({"--dtw-words"});
  InstallTinyDims(server);
  auto words = Transcribe(server, {Field("timestamp_granularities[]", "word")});
  ASSERT_EQ(StatusOf(words), 200) << (words ? words->body : "");
  EXPECT_GT(ExpectDtwWordsInsideTheAudio(JsonOf(words)), 0u);
  auto plain = Transcribe(server, {});
  ASSERT_EQ(StatusOf(plain), 200) << (plain ? plain->body : "");
  EXPECT_FALSE(JsonOf(plain).contains("words"));
  ASSERT_TRUE(RunnersBecome(server, {{"dtw", 2}}));
}

}  // namespace
}  // namespace steno::test
