// Where a job ran, through the API: GET /v1/jobs/{id} names the node that runs it (or ran its last
// attempt) and lists every attempt (attempt, node, started_ms, ended_ms, outcome, error); the
// list names the node but leaves the attempts to the job's own view. A job whose server was
// killed mid-run and that a restarted server (another --node name, same data dir) finished
// shows both runs.
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "api_test_server.h"

namespace steno::test {
namespace {

using json = nlohmann::json;

// Polls the job until it is in `state` (or 60 s pass); returns its last JSON.
json WaitForState(httplib::Client& c, const std::string& id, const std::string& state) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  json job;
  while (std::chrono::steady_clock::now() < deadline) {
    job = JsonOf(c.Get("/v1/jobs/" + id));
    if (job.is_null() || job.value("state", "") == state) return job;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "job " << id << " never became " << state << ": " << job.dump();
  return job;
}

TEST(JobHistoryApiTest, ACompletedJobNamesItsNodeAndItsOneAttempt) {
  ApiTestServer s({"--node", "node-a"});
  auto c = s.Client();
  const std::string id = PostJob(c, "speech.wav");
  json job = WaitForJob(c, id);
  ASSERT_EQ(job["state"], "completed") << job.dump();
  EXPECT_EQ(job["node"], "node-a") << job.dump();
  ASSERT_TRUE(job["attempts"].is_array()) << job.dump();
  ASSERT_EQ(job["attempts"].size(), 1u) << job.dump();
  const json& run = job["attempts"][0];
  EXPECT_EQ(run["attempt"], 1);
  EXPECT_EQ(run["node"], "node-a");
  EXPECT_EQ(run["outcome"], "completed");
  EXPECT_TRUE(run["error"].is_null()) << run.dump();
  ASSERT_TRUE(run["started_ms"].is_number() && run["ended_ms"].is_number()) << run.dump();
  EXPECT_LE(run["started_ms"].get<int64_t>(), run["ended_ms"].get<int64_t>());
  EXPECT_EQ(run["ended_ms"], job["finished_ms"]);

  // The list names the node; the attempts stay in the job's own view (the list stays one read).
  json list = JsonOf(c.Get("/v1/jobs"));
  ASSERT_EQ(list["data"].size(), 1u) << list.dump();
  EXPECT_EQ(list["data"][0]["node"], "node-a");
  EXPECT_FALSE(list["data"][0].contains("attempts"));
}

TEST(JobHistoryApiTest, AJobNeverRunHasNoNodeAndNoAttempts) {
  ApiTestServer s({"--max-running", "1"});
  auto c = s.Client();
  const std::string busy = PostJob(c, "speech_60s.wav");
  const std::string waiting = PostJob(c, "speech.wav");
  json job = JsonOf(c.Get("/v1/jobs/" + waiting));
  if (job["state"] == "pending") {
    EXPECT_TRUE(job["node"].is_null()) << job.dump();
    EXPECT_EQ(job["attempts"], json::array()) << job.dump();
  }
  json cancelled = JsonOf(c.Delete("/v1/jobs/" + busy));
  EXPECT_EQ(cancelled["state"], "cancelled");
  json after = JsonOf(c.Get("/v1/jobs/" + busy));
  ASSERT_EQ(after["attempts"].size(), 1u) << after.dump();
  EXPECT_EQ(after["attempts"][0]["outcome"], "cancelled");
  EXPECT_EQ(after["attempts"][0]["error"]["code"], "cancelled");
  EXPECT_FALSE(after["node"].is_null());
  WaitForJob(c, waiting);
}

TEST(JobHistoryApiTest, AJobRunTwiceShowsBothNodes) {
  ApiTestServer a({"--node", "node-a"});
  std::string id;
  {
    auto c = a.Client();
    id = PostJob(c, "speech_60s.wav");
    json running = WaitForState(c, id, "processing");
    EXPECT_EQ(running["node"], "node-a") << running.dump();
    ASSERT_EQ(running["attempts"].size(), 1u) << running.dump();
    EXPECT_TRUE(running["attempts"][0]["ended_ms"].is_null()) << running.dump();
    EXPECT_TRUE(running["attempts"][0]["outcome"].is_null()) << running.dump();
  }
  a.Signal(SIGKILL);
  a.Stop();

  // Another server on the same data dir, under another name, finds the run lost and runs it again.
  ApiTestServer b({"--node", "node-b", "--data-dir", a.data});
  auto c = b.Client();
  json job = WaitForJob(c, id);
  ASSERT_EQ(job["state"], "completed") << job.dump();
  EXPECT_EQ(job["attempt"], 2);
  EXPECT_EQ(job["node"], "node-b") << job.dump();
  ASSERT_EQ(job["attempts"].size(), 2u) << job.dump();
  const json& lost = job["attempts"][0];
  EXPECT_EQ(lost["attempt"], 1);
  EXPECT_EQ(lost["node"], "node-a");
  EXPECT_EQ(lost["outcome"], "lost");
  EXPECT_EQ(lost["error"]["code"], "run_lost") << lost.dump();
  EXPECT_TRUE(lost["ended_ms"].is_number());
  const json& done = job["attempts"][1];
  EXPECT_EQ(done["attempt"], 2);
  EXPECT_EQ(done["node"], "node-b");
  EXPECT_EQ(done["outcome"], "completed");
  EXPECT_GE(done["started_ms"].get<int64_t>(), lost["ended_ms"].get<int64_t>());
}

}  // namespace
}  // namespace steno::test
