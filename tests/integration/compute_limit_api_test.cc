// The compute limit of `steno serve` (--max-concurrency-per-device auto|N|0, its STENO_ variable
// and config key) on a simulated card whose runners compute on the CPU: GET /v1/gpus and
// /metrics show it, a configured cap is honoured, a learned one stays near the cores on a burst,
// bad values stop the server with exit 2.
//
// What a bug would break: with cap 1 the two jobs' runs overlapping (the second claimed before
// the first ended, from the jobs' own attempt records) or the card showing more than one job
// running; under auto a burst's runs overlapping as memory alone lets them (dozens), or never
// more than one; the limit missing from /v1/gpus or /metrics; a bad value accepted.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "api_test_server.h"
#include "support/child_process.h"
#include "support/process.h"

namespace steno {
namespace {

using test::ApiTestServer;
using test::Field;
using test::JsonOf;

std::vector<std::string> OneCard(std::vector<std::string> extra, const std::string& data) {
  std::vector<std::string> flags = {"--device", "auto",       "--simulate-gpus",
                                    "1x8GiB",   "--data-dir", data};
  flags.insert(flags.end(), extra.begin(), extra.end());
  return flags;
}

// The card's entry in GET /v1/gpus, once the scheduler has sampled it.
nlohmann::json Card(httplib::Client& c) {
  nlohmann::json card;
  test::WaitUntil(
      [&] {
        auto gpus = JsonOf(c.Get("/v1/gpus"));
        if (!gpus.contains("data") || gpus["data"].empty()) return false;
        card = gpus["data"][0];
        return card.contains("compute");
      },
      std::chrono::seconds(30));
  return card;
}

std::string Submit(ApiTestServer& s, const std::string& name) {
  auto bytes = test::ReadFileBytes(test::MediaPath("speech.wav"));
  auto r = s.Client().Post("/v1/jobs",
                           httplib::MultipartFormDataItems{
                               {"file", std::string(bytes.begin(), bytes.end()), name, "audio/wav"},
                               Field("model", "tiny"),
                               Field("language", "en")});
  EXPECT_EQ(test::StatusOf(r), 202) << (r ? r->body : "");
  return r && r->status == 202 ? JsonOf(r).value("id", "") : "";
}

TEST(ComputeLimitApiTest, GpusAndMetricsShowTheLearnedLimit) {
  test::ScopedTempDir dir("steno-limit");
  ApiTestServer s(OneCard({"--max-concurrency-per-device", "auto"}, dir.path + "/data"));
  auto c = s.Client();
  const auto card = Card(c);
  ASSERT_TRUE(card.contains("compute")) << card.dump();
  EXPECT_EQ(card["compute"]["mode"], "auto");
  EXPECT_EQ(card["compute"]["limit"], 1) << "learning starts at one job";
  EXPECT_EQ(card["compute"]["running"], 0);
  const auto ledger = JsonOf(c.Get("/api/memory_status"));
  EXPECT_EQ(ledger["devices"][0]["compute"]["mode"], "auto") << ledger.dump();
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("steno_device_concurrency_limit{device=\"cuda:0\",mode=\"auto\"} 1"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("steno_device_jobs_running{device=\"cuda:0\"} 0"),
            std::string::npos);
  EXPECT_NE(
      metrics->body.find("steno_device_throughput_audio_seconds_per_second{device=\"cuda:0\"}"),
      std::string::npos);
}

// auto is the default since bench/compute_limit.sh showed it beating 0 (README).
TEST(ComputeLimitApiTest, AutoIsTheDefaultAndZeroMeansNoComputeLimit) {
  test::ScopedTempDir dir("steno-limit");
  {
    ApiTestServer s(OneCard({}, dir.path + "/default"));
    auto c = s.Client();
    EXPECT_EQ(Card(c)["compute"]["mode"], "auto");
  }
  ApiTestServer s(OneCard({"--max-concurrency-per-device", "0"}, dir.path + "/data"));
  auto c = s.Client();
  const auto card = Card(c);
  EXPECT_EQ(card["compute"]["mode"], "off") << card.dump();
  EXPECT_TRUE(card["compute"]["limit"].is_null());
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->body.find("steno_device_concurrency_limit{"), std::string::npos)
      << "no limit, no sample";
}

TEST(ComputeLimitApiTest, CapOfOneRunsTwoJobsOnOneCardNeverAtOnce) {
  test::ScopedTempDir dir("steno-limit");
  // Memory would run both at once: one runner of four streams fits the card many times over.
  ApiTestServer s(
      OneCard({"--max-concurrency-per-device", "1", "--max-streams", "4"}, dir.path + "/data"));
  auto c = s.Client();
  ASSERT_EQ(Card(c)["compute"]["limit"], 1);
  const std::string a = Submit(s, "a.wav");
  const std::string b = Submit(s, "b.wav");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  // While they are unfinished, the card never shows more than one job running, nor the job
  // list more than one of them claimed.
  int looks = 0;
  auto final = [&](const std::string& id) {
    const std::string state = JsonOf(c.Get("/v1/jobs/" + id)).value("state", "");
    return state == "completed" || state == "failed" || state == "cancelled";
  };
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        const auto card = Card(c);
        EXPECT_LE(card["compute"]["running"].get<int>(), 1) << card.dump();
        int active = 0;
        for (const auto& id : {a, b}) {
          const std::string state = JsonOf(c.Get("/v1/jobs/" + id)).value("state", "");
          active += state == "loading" || state == "processing";
        }
        EXPECT_LE(active, 1);
        ++looks;
        return final(a) && final(b);
      },
      std::chrono::seconds(240)));
  EXPECT_GT(looks, 0);
  const auto ja = JsonOf(c.Get("/v1/jobs/" + a));
  const auto jb = JsonOf(c.Get("/v1/jobs/" + b));
  ASSERT_EQ(ja["state"], "completed") << ja.dump();
  ASSERT_EQ(jb["state"], "completed") << jb.dump();
  ASSERT_EQ(ja["attempts"].size(), 1u) << ja.dump();
  ASSERT_EQ(jb["attempts"].size(), 1u) << jb.dump();
  const auto& ra = ja["attempts"][0];
  const auto& rb = jb["attempts"][0];
  // One run began only once the other had ended (the scheduler claims the second job in the
  // same step that frees the first one's slot).
  const bool a_first = ra["started_ms"].get<int64_t>() <= rb["started_ms"].get<int64_t>();
  const auto& first = a_first ? ra : rb;
  const auto& second = a_first ? rb : ra;
  EXPECT_GE(second["started_ms"].get<int64_t>(), first["ended_ms"].get<int64_t>())
      << ja.dump() << "\n"
      << jb.dump();
}

// A burst of short jobs on one simulated card whose runners compute on two cores, with the given
// limit; waits for every job. Returns the most runs that overlapped (from the jobs' attempt
// records) and the card's compute view at the end.
struct Burst {
  int peak = 0;
  nlohmann::json compute;
};
Burst RunBurst(const std::string& limit, const std::string& data) {
  constexpr int kJobs = 80;
  ApiTestServer s(OneCard({"--max-concurrency-per-device", limit, "--max-streams", "4", "--threads",
                           "1", "--cpu-cores", "2", "--temperature-inc", "0"},
                          data));
  auto c = s.Client();
  std::vector<std::string> ids;
  for (int i = 0; i < kJobs; ++i) {
    ids.push_back(test::PostJob(c, "speech_short.wav"));
    if (ids.back().empty()) return {};
  }
  Burst b;
  b.peak = test::MostRunsAtOnce(c, ids);
  b.compute = Card(c)["compute"];
  return b;
}

// The learned limit on real runners: a burst that memory alone runs dozens at a time runs a few
// at a time under auto, the limit ending near the two cores. (Whether that beats memory alone on
// latency and throughput is bench/compute_limit.sh's question: timing is not a test's.) On a busy
// machine more streams also take a larger share of the cores from other tenants, so auto may
// measure four, eight or even sixteen as worth it (sixteen was seen once, with another test
// beside this one: it runs alone now, RUN_SERIAL in tests/CMakeLists.txt); thirty-two is memory's
// share, and a learner that kept growing would reach it within this many jobs (1, 2, 4, 8, 16,
// 32: 62 jobs' windows, settling ones included).
TEST(ComputeLimitApiTest, LearnedLimitStaysNearTheCoresWhereMemoryRunsDozens) {
  test::ScopedTempDir dir("steno-limit");
  const Burst unlimited = RunBurst("0", dir.path + "/off");
  EXPECT_GT(unlimited.peak, 8) << "memory alone must admit more than the learned limit may";
  const Burst learned = RunBurst("auto", dir.path + "/auto");
  std::printf("burst of 80: at most %d at once with memory alone, %d under auto (limit %s)\n",
              unlimited.peak, learned.peak, learned.compute.dump().c_str());
  EXPECT_GE(learned.peak, 2) << "slow start grows from one job";
  EXPECT_LE(learned.peak, 16);
  EXPECT_LE(learned.compute.value("limit", 0), 16) << learned.compute.dump();
  EXPECT_GE(learned.compute.value("limit", 0), 1) << learned.compute.dump();
  EXPECT_GE(learned.compute.value("windows", 0), 4) << learned.compute.dump();
}

TEST(ComputeLimitApiTest, ConfigFileKeySetsTheLimitAndFlagWinsOverIt) {
  test::ScopedTempDir dir("steno-limit");
  const std::string config = dir.path + "/steno.toml";
  { std::ofstream(config) << "[serve]\nmax-concurrency-per-device = 3\n"; }
  {
    ApiTestServer s(OneCard({"--config", config}, dir.path + "/data"));
    auto c = s.Client();
    const auto card = Card(c);
    EXPECT_EQ(card["compute"]["mode"], "fixed") << card.dump();
    EXPECT_EQ(card["compute"]["limit"], 3);
  }
  ApiTestServer s(
      OneCard({"--config", config, "--max-concurrency-per-device", "0"}, dir.path + "/data2"));
  auto c = s.Client();
  EXPECT_EQ(Card(c)["compute"]["mode"], "off");
}

TEST(ComputeLimitApiTest, BadValuesStopTheServerWithExitTwoNamingTheFlag) {
  test::ScopedTempDir dir("steno-limit");
  test::ProcessOptions options;
  options.timeout_s = 60;
  for (const std::string bad : {"abc", "-1", "1025", "2.5", ""}) {
    auto r =
        test::RunProcess({test::StenoBin(), "serve", "--port", "0", "--device", "cpu", "--data-dir",
                          dir.path + "/data", "--max-concurrency-per-device", bad},
                         options);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("--max-concurrency-per-device"), std::string::npos) << r.err;
  }
  options.env = {{"STENO_MAX_CONCURRENCY_PER_DEVICE", "lots"}};
  auto r = test::RunProcess(
      {test::StenoBin(), "serve", "--port", "0", "--device", "cpu", "--data-dir", dir.path + "/d"},
      options);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--max-concurrency-per-device"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace steno
