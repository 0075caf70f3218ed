// CPU jobs sharing the cores on real runners (`steno serve --device cpu --threads 2 --cpu-cores
// 2`): a burst of jobs runs two at a time, one thread each, where one job of two threads alone
// would leave the second core to whisper.cpp's single-threaded steps; `--min-threads 2` gives every
// job both threads, one job at a time, and every transcript is the lone job's.
//
// whisper.cpp's results can depend on its thread count (whisper-cli -t 1 and -t 2 differ on this
// test's random model), so a shared job's transcript is whisper.cpp's for the threads it ran with:
// the lone job's of a server giving every job one thread, or of one giving two.
//
// What a bug would break: the burst never overlapping (the cores held by one job of two threads,
// as before the jobs shared them), more than two runs overlapping (threads beyond the cores), a
// transcript that no thread count gives, --min-threads not honoured.
#include <string>
#include <utility>
#include <vector>

#include "api_test_server.h"
#include "support/process.h"

namespace steno {
namespace {

using test::ApiTestServer;
using test::JsonOf;

// A minute of speech: each job runs long enough for the burst's submissions to queue behind it.
constexpr const char* kMedia = "speech_60s.wav";

nlohmann::json Transcript(httplib::Client& c, const std::string& id) {
  auto r = c.Get("/v1/jobs/" + id + "/result?format=verbose_json");
  EXPECT_EQ(test::StatusOf(r), 200) << (r ? r->body : "");
  nlohmann::json out = nlohmann::json::array();
  for (const auto& seg : JsonOf(r).value("segments", nlohmann::json::array())) {
    out.push_back({seg.value("start", -1.0), seg.value("end", -1.0), seg.value("text", "")});
  }
  return out;
}

// The transcript of one job alone on a server started with `flags`.
nlohmann::json LoneTranscript(std::vector<std::string> flags) {
  ApiTestServer s(std::move(flags));
  auto c = s.Client();
  const std::string id = test::PostJob(c, kMedia);
  EXPECT_EQ(test::WaitForJob(c, id).value("state", ""), "completed");
  return Transcript(c, id);
}

struct Burst {
  int peak = 0;  // runs overlapping at most (MostRunsAtOnce)
  std::vector<nlohmann::json> transcripts;
};

// `jobs` submitted one after another, each waited for.
Burst RunBurst(ApiTestServer& s, int jobs) {
  auto c = s.Client();
  std::vector<std::string> ids;
  for (int i = 0; i < jobs; ++i) {
    ids.push_back(test::PostJob(c, kMedia));
    if (ids.back().empty()) return {};
  }
  Burst b;
  std::vector<nlohmann::json> finished;
  b.peak = test::MostRunsAtOnce(c, ids, &finished);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (finished[i].value("state", "") == "completed")
      b.transcripts.push_back(Transcript(c, ids[i]));
  }
  return b;
}

TEST(CpuThreadsServeTest, ABurstRunsTwoOneThreadJobsOnTwoCoresUnlessEveryJobMustHaveTwo) {
  const std::vector<std::string> cores = {"--cpu-cores", "2"};
  auto with = [&](std::vector<std::string> flags) {
    flags.insert(flags.end(), cores.begin(), cores.end());
    return flags;
  };
  const nlohmann::json one = LoneTranscript(with({"--threads", "1"}));
  const nlohmann::json two = LoneTranscript(with({"--threads", "2"}));
  ASSERT_FALSE(one.empty()) << "the test speech gives segments";
  ASSERT_FALSE(two.empty());

  {
    ApiTestServer s(with({"--threads", "2"}));
    const Burst shared = RunBurst(s, 6);
    EXPECT_EQ(shared.peak, 2) << "two cores: two one-thread jobs at a time, never more";
    for (const auto& t : shared.transcripts) {
      EXPECT_TRUE(t == one || t == two) << t.dump();
    }
  }
  ApiTestServer s(with({"--threads", "2", "--min-threads", "2"}));
  const Burst whole = RunBurst(s, 3);
  EXPECT_EQ(whole.peak, 1) << "every job takes both cores";
  for (const auto& t : whole.transcripts) EXPECT_EQ(t, two);
}

TEST(CpuThreadsServeTest, AMinimumOutsideOneToThreadsStopsTheServerWithExitTwo) {
  test::ScopedTempDir dir("steno-threads");
  test::ProcessOptions options;
  options.timeout_s = 60;
  for (const std::string bad : {"0", "-1", "3", "abc"}) {
    auto r =
        test::RunProcess({test::StenoBin(), "serve", "--port", "0", "--device", "cpu", "--data-dir",
                          dir.path + "/data", "--threads", "2", "--min-threads", bad},
                         options);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("--min-threads"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace steno
