// Several `steno serve` nodes sharing one private PostgreSQL (--store postgres://...): a job
// submitted to one node is read, with its result, from another; a node runs a job whose upload
// it never received, fetching it from PostgreSQL; the job of a node killed with SIGKILL finishes,
// once, on another after its lease ran out; jobs of a model a node lacks neither hide its own
// jobs nor reach it; a bad or unreachable store stops the start with a message that never shows
// the password.
#include <signal.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "api_test_server.h"
#include "store/blob_store.h"
#include "store/pg_blob_store.h"
#include "store/pg_job_store.h"
#include "support/child_process.h"
#include "support/pg_server.h"
#include "support/process.h"

namespace steno::test {
namespace {

namespace fs = std::filesystem;

// Submits `minutes` of speech (speech_60s.wav repeated); the job id, or "" after a test failure.
std::string PostLongJob(httplib::Client& c, int minutes) {
  ScopedTempDir dir("steno-cluster");
  const std::string audio = dir.path + "/long.wav";
  auto made = RunProcess({"ffmpeg", "-nostdin", "-loglevel", "error", "-stream_loop",
                          std::to_string(minutes - 1), "-i", MediaPath("speech_60s.wav"), "-c",
                          "copy", audio});
  EXPECT_EQ(made.exit_code, 0) << made.err;
  auto bytes = ReadFileBytes(audio);
  auto posted = c.Post(
      "/v1/jobs", httplib::MultipartFormDataItems{
                      {"file", std::string(bytes.begin(), bytes.end()), "long.wav", "audio/wav"},
                      Field("model", "tiny")});
  EXPECT_TRUE(posted);
  if (!posted) return "";
  EXPECT_EQ(posted->status, 202) << posted->body;
  return JsonOf(posted).value("id", "");
}

TEST(ClusterServeTest, JobSubmittedToOneNodeIsReadWithItsResultFromAnother) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  ApiTestServer a(NodeFlags(url, "node-a"));
  ApiTestServer b(NodeFlags(url, "node-b"));
  ASSERT_GT(a.port, 0);
  ASSERT_GT(b.port, 0);
  auto ca = a.Client();
  auto cb = b.Client();

  const std::string id = PostJob(ca);
  ASSERT_FALSE(id.empty());
  // Readable on the other node at once, whatever its state.
  auto seen = cb.Get("/v1/jobs/" + id);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->status, 200) << seen->body;
  EXPECT_EQ(JsonOf(seen)["id"], id);

  auto done = WaitForJob(cb, id);
  ASSERT_EQ(done["state"], "completed") << done.dump();
  auto from_b = cb.Get("/v1/jobs/" + id + "/result?format=verbose_json");
  auto from_a = ca.Get("/v1/jobs/" + id + "/result?format=verbose_json");
  ASSERT_TRUE(from_a && from_b);
  ASSERT_EQ(from_b->status, 200) << from_b->body;
  EXPECT_EQ(from_b->body, from_a->body);
  EXPECT_TRUE(JsonOf(from_b)["segments"].is_array());
  auto listed = JsonOf(cb.Get("/v1/jobs?state=completed"));
  ASSERT_EQ(listed["data"].size(), 1u) << listed.dump();
  EXPECT_EQ(listed["data"][0]["id"], id);
  auto missing = cb.Get("/v1/jobs/job_doesnotexist/result");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  // One of them ran it, once, and its upload is in PostgreSQL; the other never fetched it.
  auto jobs = OpenPgJobStore(url);
  ASSERT_TRUE(jobs);
  auto attempts = jobs->Attempts(id);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 1u);
  const std::string ran_on = (*attempts)[0].owner;
  EXPECT_TRUE(ran_on == "node-a" || ran_on == "node-b") << ran_on;
  EXPECT_EQ((*attempts)[0].outcome, "completed");
  const std::string digest = jobs->Get(id)->blob_digest;
  store::PgOptions options;
  options.url = url;
  auto blobs = store::PgBlobStore::Open(options);
  ASSERT_TRUE(blobs.ok());
  EXPECT_TRUE((*blobs)->Contains(digest).value());
  // A received the upload; B has a copy only if it ran the job.
  EXPECT_TRUE(fs::exists(a.data + "/blobs/" + digest));
  EXPECT_EQ(fs::exists(b.data + "/blobs/" + digest), ran_on == "node-b")
      << "B fetched an upload it did not run";

  // A cancel on one node is seen on the other. The job is one neither node can run (a model
  // neither has), so it is surely still pending when the cancel comes: 200 and cancelled.
  store::NewJob waiting;
  waiting.model = "large-v3";
  waiting.blob_digest = digest;
  auto inserted = jobs->Insert(waiting);
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  const std::string second = inserted->job.id;
  EXPECT_EQ(JsonOf(cb.Get("/v1/jobs/" + second))["state"], "pending");
  auto cancelled = ca.Delete("/v1/jobs/" + second);
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 200) << cancelled->body;
  EXPECT_EQ(JsonOf(cancelled)["state"], "cancelled") << cancelled->body;
  EXPECT_EQ(JsonOf(cb.Get("/v1/jobs/" + second))["state"], "cancelled");
  // Cancelling it again on B finds it cancelled already (a cancel is idempotent).
  auto again = cb.Delete("/v1/jobs/" + second);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200) << again->body;
  EXPECT_EQ(JsonOf(again)["state"], "cancelled") << again->body;
  EXPECT_EQ(JsonOf(again)["finished_ms"], JsonOf(cancelled)["finished_ms"]) << again->body;
}

TEST(ClusterServeTest, NodeRunsAJobWhoseUploadItNeverReceived) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  // Another node (this test) stores the upload and the job, then goes away.
  ScopedTempDir elsewhere("steno-cluster");
  auto local = store::BlobStore::Open(elsewhere.path + "/blobs");
  ASSERT_TRUE(local.ok());
  auto bytes = ReadFileBytes(MediaPath("speech.wav"));
  auto put = local->Put(std::string_view(bytes.data(), bytes.size()));
  ASSERT_TRUE(put.ok());
  store::PgOptions options;
  options.url = url;
  auto shared = store::PgBlobStore::Open(options);
  ASSERT_TRUE(shared.ok()) << shared.error().message;
  ASSERT_TRUE((*shared)->Push(*local, put->digest).ok());
  auto jobs = OpenPgJobStore(url);
  ASSERT_TRUE(jobs);
  store::NewJob job;
  job.model = "tiny";
  job.params.language = "en";
  job.blob_digest = put->digest;
  auto inserted = jobs->Insert(job);
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  const std::string id = inserted->job.id;
  // Two more jobs some other nodes hold: one whose node is alive (a long lease), and one whose
  // node died (its lease ran out).
  auto busy = jobs->Insert(job);
  auto orphan = jobs->Insert(job);
  ASSERT_TRUE(busy.ok() && orphan.ok());
  ASSERT_TRUE(jobs->Claim({"node-x", 3'600'000, busy->job.id, {}}).value());
  ASSERT_TRUE(jobs->Claim({"node-y", 1, orphan->job.id, {}}).value());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));

  ApiTestServer b(NodeFlags(url, "node-b"));
  auto cb = b.Client();
  auto done = WaitForJob(cb, id);
  ASSERT_EQ(done["state"], "completed") << done.dump();
  // The dead node's job is requeued and run here; the live node's job is left alone.
  auto rerun = WaitForJob(cb, orphan->job.id);
  EXPECT_EQ(rerun["state"], "completed") << rerun.dump();
  auto orphan_runs = jobs->Attempts(orphan->job.id).value();
  ASSERT_EQ(orphan_runs.size(), 2u);
  EXPECT_EQ(orphan_runs[0].owner, "node-y");
  EXPECT_EQ(orphan_runs[0].outcome, "lease_expired");
  EXPECT_EQ(orphan_runs[1].owner, "node-b");
  auto held = jobs->Get(busy->job.id).value();
  EXPECT_EQ(held.state, JobState::kLoading);
  EXPECT_EQ(held.lease_owner, "node-x");
  EXPECT_EQ(jobs->Attempts(busy->job.id)->size(), 1u);
  const std::string copy = b.data + "/blobs/" + put->digest;
  ASSERT_TRUE(fs::exists(copy));
  auto got = ReadFileBytes(copy);
  EXPECT_TRUE(got == bytes) << "the fetched upload differs from the original";
  EXPECT_EQ(jobs->Attempts(id)->at(0).owner, "node-b");
}

// 250 older jobs of a model this node lacks (other nodes' work) neither hide its own job from
// it nor get claimed by it; the queue bound counts them (the cluster's pending jobs).
TEST(ClusterServeTest, JobsThisNodeCannotRunNeitherHideNorReachIt) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  auto jobs = OpenPgJobStore(url);
  ASSERT_TRUE(jobs);
  store::NewJob other;
  other.model = "large-v3";  // not in this node's models directory
  other.blob_digest = std::string(64, 'a');
  std::vector<std::string> others;
  for (int i = 0; i < 250; ++i) {
    auto inserted = jobs->Insert(other);
    ASSERT_TRUE(inserted.ok()) << inserted.error().message;
    others.push_back(inserted->job.id);
  }
  ApiTestServer a(NodeFlags(url, "node-a", {"--max-queue", "251"}));
  ASSERT_GT(a.port, 0);
  auto ca = a.Client();
  const std::string id = PostJob(ca);
  ASSERT_FALSE(id.empty());
  auto done = WaitForJob(ca, id);
  EXPECT_EQ(done["state"], "completed") << done.dump();
  for (const auto& o : others) {
    auto job = jobs->Get(o);
    ASSERT_TRUE(job.ok());
    EXPECT_EQ(job->state, JobState::kPending) << o;
    EXPECT_TRUE(jobs->Attempts(o)->empty()) << o << " was claimed by a node without its model";
  }

  // 251 pending in the cluster: the bound is reached, whichever node holds them.
  ASSERT_TRUE(jobs->Insert(other).ok());
  auto full = ca.Post(
      "/v1/jobs", httplib::MultipartFormDataItems{FilePart("speech.wav"), Field("model", "tiny")});
  ASSERT_TRUE(full);
  EXPECT_EQ(full->status, 503) << full->body;
  EXPECT_EQ(JsonOf(full)["error"]["code"], "queue_full") << full->body;
  EXPECT_FALSE(full->get_header_value("Retry-After").empty());
}

TEST(ClusterServeTest, BadOrUnreachableStoreStopsTheStartWithoutShowingThePassword) {
  ScopedTempDir dir("steno-cluster-bad");
  auto bad = RunProcess({StenoBin(), "serve", "--port", "0", "--data-dir", dir.path, "--store",
                         "mysql://user:Sekrit-99@localhost/db"},
                        {{}, "", 30});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--store"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.err.find("Sekrit-99"), std::string::npos) << bad.err;

  // Nothing listens on port 1.
  auto unreachable =
      RunProcess({StenoBin(), "serve", "--port", "0", "--data-dir", dir.path, "--store",
                  "postgres://user:Sekrit-99@127.0.0.1:1/db?connect_timeout=2"},
                 {{}, "", 60});
  EXPECT_NE(unreachable.exit_code, 0);
  EXPECT_NE(unreachable.err.find("127.0.0.1"), std::string::npos) << unreachable.err;
  EXPECT_EQ(unreachable.err.find("Sekrit-99"), std::string::npos) << unreachable.err;
  EXPECT_EQ(unreachable.out.find("listening"), std::string::npos);
}

// kill -9 of the node running a job: its lease runs out, the other node requeues the job and
// runs it; the job completes exactly once (one completed attempt, after the lost one), and
// GET /v1/jobs/{id} shows both attempts with their nodes.
TEST(ClusterServeTest, AKilledNodesJobFinishesOnAnotherExactlyOnce) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  ApiTestServer a(NodeFlags(url, "node-a", {"--lease", "3s"}));
  ApiTestServer b(NodeFlags(url, "node-b", {"--lease", "3s"}));
  auto ca = a.Client();
  auto cb = b.Client();
  // Two minutes of speech: still running when the node is killed.
  const std::string id = PostLongJob(ca, 2);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitUntil([&] { return JsonOf(cb.Get("/v1/jobs/" + id))["state"] == "processing"; },
                        std::chrono::seconds(60)));
  // Whichever node claimed it is killed; the other finishes it.
  auto jobs = OpenPgJobStore(url);
  ASSERT_TRUE(jobs);
  const std::string first = jobs->Get(id)->lease_owner;
  ASSERT_TRUE(first == "node-a" || first == "node-b") << first;
  ApiTestServer& killed = first == "node-a" ? a : b;
  auto survivor = (first == "node-a" ? b : a).Client();
  const std::string second = first == "node-a" ? "node-b" : "node-a";
  killed.Signal(SIGKILL);
  killed.Stop();  // reaps it

  auto done = WaitForJob(survivor, id);
  ASSERT_EQ(done["state"], "completed") << done.dump();
  EXPECT_EQ(done["attempt"], 2) << done.dump();
  auto result = survivor.Get("/v1/jobs/" + id + "/result?format=json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  auto attempts = jobs->Attempts(id);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 2u);
  EXPECT_EQ((*attempts)[0].owner, first);
  EXPECT_NE((*attempts)[0].outcome, "completed");
  EXPECT_EQ((*attempts)[1].owner, second);
  EXPECT_EQ((*attempts)[1].outcome, "completed");
  // The API explains it: the node that finished it, and both runs with their nodes and outcomes.
  EXPECT_EQ(done["node"], second) << done.dump();
  ASSERT_EQ(done["attempts"].size(), 2u) << done.dump();
  EXPECT_EQ(done["attempts"][0]["node"], first);
  EXPECT_EQ(done["attempts"][0]["outcome"], "lease_expired") << done.dump();
  EXPECT_EQ(done["attempts"][0]["error"]["code"], "lease_expired") << done.dump();
  EXPECT_EQ(done["attempts"][1]["node"], second);
  EXPECT_EQ(done["attempts"][1]["outcome"], "completed");
}

// Any node streams any job's events: B, which has no model and so never claims, streams the
// states and segments of a job A runs (they travel by NOTIFY), ending with the final state.
TEST(ClusterServeTest, EventsOfAJobRunningOnAnotherNodeStreamFromAnyNode) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  ScopedTempDir empty("steno-cluster");
  ApiTestServer a(NodeFlags(url, "node-a", {"--max-running", "1"}));
  ApiTestServer b(NodeFlags(url, "node-b", {"--models-dir", empty.path}));
  auto ca = a.Client();
  auto cb = b.Client();
  // A runs one job at a time: the second is still pending when B's stream opens.
  auto first = ca.Post("/v1/jobs", httplib::MultipartFormDataItems{FilePart("speech_60s.wav"),
                                                                   Field("model", "tiny")});
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 202) << first->body;
  const std::string id = PostJob(ca);
  ASSERT_FALSE(id.empty());
  std::string stream;
  auto r = cb.Get(("/v1/jobs/" + id + "/events").c_str(), [&](const char* data, size_t n) {
    stream.append(data, n);
    return true;
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  auto events = ParseSse(stream);
  std::vector<std::string> states;
  std::vector<nlohmann::json> segments;
  for (const auto& e : events) {
    if (e.event == "state") states.push_back(e.data["state"]);
    if (e.event == "segment") segments.push_back(e.data["segment"]);
  }
  EXPECT_EQ(states, (std::vector<std::string>{"pending", "loading", "processing", "completed"}))
      << stream;
  auto result = JsonOf(cb.Get("/v1/jobs/" + id + "/result?format=verbose_json"));
  ASSERT_EQ(segments.size(), result["segments"].size()) << stream;
  for (size_t i = 0; i < segments.size(); ++i) {
    EXPECT_EQ(segments[i]["text"], result["segments"][i]["text"]);
  }
  auto jobs = OpenPgJobStore(url);
  ASSERT_TRUE(jobs);
  EXPECT_EQ(jobs->Attempts(id)->at(0).owner, "node-a");
  EXPECT_EQ(WaitForJob(cb, JsonOf(first)["id"])["state"], "completed");
}

int BusyStreams(httplib::Client& c) {
  int busy = 0;
  const auto runners = JsonOf(c.Get("/v1/runners"));
  for (const auto& r : runners["data"]) busy += r.value("busy_streams", 0);
  return busy;
}

// A cancel on one node stops the run on the node running the job at once (by NOTIFY), not at its
// next heartbeat: with a 30 min lease that is 10 min away, far beyond the bound.
TEST(ClusterServeTest, CancelOnOneNodeStopsTheRunOnAnotherAtOnce) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  ScopedTempDir empty("steno-cluster");
  ApiTestServer a(NodeFlags(url, "node-a", {"--lease", "30m"}));
  ApiTestServer b(NodeFlags(url, "node-b", {"--models-dir", empty.path, "--lease", "30m"}));
  // B never claims (no model)
  auto ca = a.Client();
  auto cb = b.Client();
  // Fifteen minutes of speech (over a minute of work even on a fast CPU): still running long
  // after the cancel, so a run that only stopped by finishing overshoots the bound.
  const std::string id = PostLongJob(ca, 15);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitUntil([&] { return JsonOf(cb.Get("/v1/jobs/" + id))["state"] == "processing"; },
                        std::chrono::seconds(60)));
  ASSERT_EQ(BusyStreams(ca), 1) << JsonOf(ca.Get("/v1/runners")).dump();
  const auto asked = std::chrono::steady_clock::now();
  auto cancelled = cb.Delete("/v1/jobs/" + id);
  ASSERT_TRUE(cancelled);
  ASSERT_EQ(cancelled->status, 200) << cancelled->body;
  EXPECT_TRUE(WaitUntil([&] { return BusyStreams(ca) == 0; }, std::chrono::seconds(45)))
      << "A still runs a job cancelled on B";
  const auto took = std::chrono::steady_clock::now() - asked;
  EXPECT_LT(took, std::chrono::seconds(45));
  EXPECT_EQ(JsonOf(ca.Get("/v1/jobs/" + id))["state"], "cancelled");
}

}  // namespace
}  // namespace steno::test
