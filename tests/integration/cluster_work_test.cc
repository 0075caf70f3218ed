// Work sharing between real `steno serve` nodes on one private PostgreSQL (--store postgres://):
// each node runs on one simulated 8 GiB GPU (--simulate-gpus; its runners compute on the CPU)
// and may run kCapacity jobs at once (--max-running). A submission only inserts the job; nodes
// claim what they can run at once, never more. Checked on the store's attempt records:
//  - 500 jobs over three nodes: every job completes exactly once, each node runs a fair share and
//    never holds more jobs than its capacity;
//  - kill -9 of a node: the jobs it was running go back to the queue when its lease runs out and
//    complete, once, on the others;
//  - a node joining mid-run takes work (the others did not hoard the queue);
//  - SIGTERM with no grace: the node stops claiming, hands its running jobs back at once
//    (attempt outcome "requeued", not a lease expiry), exits 0 and leaves the nodes table; the
//    others complete those jobs once.
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api_test_server.h"
#include "store/pg_job_store.h"
#include "support/pg_server.h"
#include "support/process.h"

namespace steno::test {
namespace {

using namespace std::chrono_literals;
using store::AttemptRecord;

constexpr int kCapacity = 3;  // --max-running of every node
// How late a store write may land after the moment it describes (a job's end recorded after the
// node already claimed the next one, a claim under way when SIGTERM came): a healthy run lags
// milliseconds, a busy CI machine under a second.
constexpr int64_t kStoreLagMs = 2'000;

// A node: the shared store, one simulated GPU used for real (--device auto wins over the test
// server's --device cpu), a bounded number of running jobs, room for every test's queue.
std::unique_ptr<ApiTestServer> StartNode(const std::string& url, const std::string& node,
                                         std::vector<std::string> extra = {}) {
  std::vector<std::string> flags =
      NodeFlags(url, node,
                {"--device", "auto", "--simulate-gpus", "1x8GiB", "--max-running",
                 std::to_string(kCapacity), "--max-queue", "1000"});
  flags.insert(flags.end(), extra.begin(), extra.end());
  auto server = std::make_unique<ApiTestServer>(flags);
  if (server->port <= 0) return server;
  // The node schedules on its simulated GPU (and not on the CPU).
  auto c = server->Client();
  auto gpus = JsonOf(c.Get("/v1/gpus"));
  EXPECT_EQ(gpus["data"].size(), 1u) << node << ": " << gpus.dump();
  if (gpus["data"].size() == 1) {
    EXPECT_EQ(gpus["data"][0]["device"], "cuda:0") << node;
    EXPECT_EQ(gpus["data"][0]["simulated"], true) << node;
    EXPECT_EQ(gpus["data"][0]["total_bytes"], int64_t{8} << 30) << node;
  }
  return server;
}

// `seconds` of speech.wav, or all of `media` when seconds is 0, as WAV bytes.
std::string Clip(const ScopedTempDir& dir, const std::string& media, int seconds = 0) {
  if (seconds == 0) {
    auto bytes = ReadFileBytes(MediaPath(media));
    return std::string(bytes.begin(), bytes.end());
  }
  const std::string out = dir.path + "/clip.wav";
  auto made = RunProcess({"ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", MediaPath(media),
                          "-t", std::to_string(seconds), out});
  EXPECT_EQ(made.exit_code, 0) << made.err;
  auto bytes = ReadFileBytes(out);
  return std::string(bytes.begin(), bytes.end());
}

// POST /v1/jobs with `clip`; a 503 (queue_full) is retried after its Retry-After. The job id, or
// "" with `why` set.
std::string Submit(httplib::Client& c, const std::string& clip, std::string* why) {
  for (int tries = 0; tries < 200; ++tries) {
    auto r =
        c.Post("/v1/jobs", httplib::MultipartFormDataItems{{"file", clip, "clip.wav", "audio/wav"},
                                                           Field("model", "tiny"),
                                                           Field("language", "en")});
    if (!r) {
      *why = "no response: " + httplib::to_string(r.error());
      return "";
    }
    if (r->status == 202) {
      auto j = nlohmann::json::parse(r->body, nullptr, false);
      if (!j.is_discarded() && j.contains("id")) return j["id"].get<std::string>();
      *why = "202 without an id: " + r->body;
      return "";
    }
    if (r->status != 503) {
      *why = std::to_string(r->status) + " " + r->body;
      return "";
    }
    const int wait_s = std::max(1, std::atoi(r->get_header_value("Retry-After").c_str()));
    std::this_thread::sleep_for(std::chrono::seconds(std::min(wait_s, 5)));
  }
  *why = "still 503 after 200 tries";
  return "";
}

// Submits `count` jobs spread over `nodes`, `threads_per_node` client threads each. Every id, in
// no particular order; a failed submission fails the test.
std::vector<std::string> SubmitSpread(const std::vector<ApiTestServer*>& nodes,
                                      const std::string& clip, int count,
                                      int threads_per_node = 1) {
  std::mutex mu;
  std::vector<std::string> ids;
  std::vector<std::string> errors;
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < nodes.size() * threads_per_node; ++t) {
    threads.emplace_back([&, t] {
      auto c = nodes[t % nodes.size()]->Client();
      while (next.fetch_add(1) < count) {
        std::string why;
        std::string id = Submit(c, clip, &why);
        std::lock_guard<std::mutex> lock(mu);
        if (id.empty()) {
          errors.push_back(why);
        } else {
          ids.push_back(id);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(errors.empty()) << errors.size() << " submissions failed, first: " << errors[0];
  EXPECT_EQ(ids.size(), static_cast<size_t>(count));
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size()) << "duplicate ids";
  return ids;
}

// Polls `done` every 200 ms (the store and the APIs are queried, keep it light).
template <class F>
bool PollUntil(F done, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(200ms);
  }
  return true;
}

int64_t CountIn(store::PgJobStore& jobs, std::initializer_list<JobState> states) {
  auto counts = jobs.Count();
  if (!counts.ok()) return -1;
  int64_t n = 0;
  for (auto s : states) n += (*counts)[s];
  return n;
}

int64_t Finished(store::PgJobStore& jobs) {
  return CountIn(jobs, {JobState::kCompleted, JobState::kFailed, JobState::kCancelled});
}

// Every job `owner` holds (loading or processing) right now.
std::vector<Job> HeldBy(store::PgJobStore& jobs, const std::string& owner) {
  store::JobFilter filter;
  filter.states = {JobState::kLoading, JobState::kProcessing};
  filter.lease_owner = owner;
  filter.limit = 1000;
  auto page = jobs.List(filter);
  EXPECT_TRUE(page.ok()) << page.error().message;
  return page.ok() ? page->jobs : std::vector<Job>{};
}

// The clip of the tests that stop a node mid-job: 30 s of speech_60s.wav, which the tiny random
// model decodes into many tokens (8.8 s of speech.wav take a fifth of the time: its jobs could end
// between MidJob's look and the signal).
constexpr int kMidJobClipSeconds = 30;

// Waits (2 min at most) until `finished` jobs are final and `node` is surely mid-job: it began
// transcribing one less than 200 ms ago (a job of kMidJobClipSeconds takes about a second of CPU,
// more while others share the cores), so what follows (a kill, a SIGTERM) cannot race that job's
// end.
bool MidJob(store::PgJobStore& jobs, const std::string& node, int64_t finished) {
  return PollUntil(
      [&] {
        if (Finished(jobs) < finished) return false;
        const int64_t now = jobs.Now();
        const auto held = HeldBy(jobs, node);
        return std::any_of(held.begin(), held.end(), [&](const Job& j) {
          return j.state == JobState::kProcessing && now - j.started_ms < 200;
        });
      },
      std::chrono::seconds(120));
}

std::vector<Job> AllJobs(store::PgJobStore& jobs) {
  std::vector<Job> out;
  store::JobFilter filter;
  filter.limit = 1000;
  filter.order = store::ListOrder::kQueueOrder;
  while (true) {
    auto page = jobs.List(filter);
    EXPECT_TRUE(page.ok()) << page.error().message;
    if (!page.ok()) break;
    out.insert(out.end(), page->jobs.begin(), page->jobs.end());
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
  }
  return out;
}

std::string Describe(const std::vector<AttemptRecord>& attempts) {
  std::ostringstream out;
  for (const auto& a : attempts) {
    out << "[#" << a.attempt << " " << a.owner << " " << a.started_ms << ".." << a.ended_ms << " "
        << (a.outcome.empty() ? "(running)" : a.outcome);
    if (a.error) out << " " << a.error->code << ": " << a.error->message;
    out << "] ";
  }
  return out.str();
}

// Every job's attempts, by id.
std::map<std::string, std::vector<AttemptRecord>> AttemptsOf(store::PgJobStore& jobs,
                                                             const std::vector<std::string>& ids) {
  std::map<std::string, std::vector<AttemptRecord>> out;
  for (const auto& id : ids) {
    auto a = jobs.Attempts(id);
    EXPECT_TRUE(a.ok()) << id << ": " << a.error().message;
    if (a.ok()) out[id] = *a;
  }
  return out;
}

std::vector<const AttemptRecord*> Completed(const std::vector<AttemptRecord>& attempts) {
  std::vector<const AttemptRecord*> out;
  for (const auto& a : attempts) {
    if (a.outcome == "completed") out.push_back(&a);
  }
  return out;
}

// Every job is completed in the store with exactly one completed attempt; returns how many each
// node completed.
std::map<std::string, int> ExpectEachCompletedOnce(
    store::PgJobStore& jobs, const std::map<std::string, std::vector<AttemptRecord>>& attempts) {
  std::map<std::string, int> by_node;
  int bad = 0;
  for (const auto& [id, runs] : attempts) {
    auto job = jobs.Get(id);
    if (!job.ok()) {
      ADD_FAILURE() << id << ": " << job.error().message;
      continue;
    }
    auto done = Completed(runs);
    const bool ok = job->state == JobState::kCompleted && done.size() == 1;
    if (!ok && ++bad <= 10) {
      ADD_FAILURE() << id << " is " << JobStateName(job->state) << " with " << done.size()
                    << " completed attempts: " << Describe(runs);
    }
    if (done.size() == 1) ++by_node[done[0]->owner];
  }
  EXPECT_EQ(bad, 0) << "jobs not completed exactly once (10 shown)";
  return by_node;
}

// The most attempts of one owner that overlapped in time. An attempt counts from its claim to
// `slack_ms` before it ended: a node may claim its next job before its store records the end of
// the last one (on a busy machine that write can lag by a second); a node that hoards holds
// claimed jobs while whole queues of others run ahead of them.
int MaxOverlap(const std::map<std::string, std::vector<AttemptRecord>>& attempts,
               const std::string& owner, int64_t slack_ms, int64_t* at_ms) {
  std::vector<std::pair<int64_t, int>> edges;
  for (const auto& [id, runs] : attempts) {
    for (const auto& a : runs) {
      if (a.owner != owner) continue;
      const int64_t end = a.ended_ms > 0 ? a.ended_ms - slack_ms : INT64_MAX;
      if (end <= a.started_ms) continue;
      edges.push_back({a.started_ms, +1});
      edges.push_back({end, -1});
    }
  }
  std::sort(edges.begin(), edges.end());  // an end sorts before a start at the same time
  int now = 0;
  int most = 0;
  for (const auto& [t, d] : edges) {
    now += d;
    if (now > most) {
      most = now;
      *at_ms = t;
    }
  }
  return most;
}

std::string Counts(const std::map<std::string, int>& by_node) {
  std::string out;
  for (const auto& [node, n] : by_node) out += node + "=" + std::to_string(n) + " ";
  return out;
}

TEST(ClusterWorkTest, ThreeNodesProcess500Jobs) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  ScopedTempDir dir("steno-cluster-work");
  const std::string clip = Clip(dir, "speech.wav", 1);
  ASSERT_FALSE(clip.empty());
  const std::vector<std::string> names = {"node-a", "node-b", "node-c"};
  std::vector<std::unique_ptr<ApiTestServer>> nodes;
  for (const auto& n : names) {
    nodes.push_back(StartNode(url, n));
    ASSERT_GT(nodes.back()->port, 0);
  }
  auto jobs = OpenPgJobStore(url);
  ASSERT_TRUE(jobs);

  const auto start = std::chrono::steady_clock::now();
  const std::vector<std::string> ids =
      SubmitSpread({nodes[0].get(), nodes[1].get(), nodes[2].get()}, clip, 500, 2);
  ASSERT_EQ(ids.size(), 500u);
  const auto submitted = std::chrono::steady_clock::now();
  ASSERT_TRUE(PollUntil([&] { return Finished(*jobs) == 500; }, 300s))
      << Finished(*jobs) << " of 500 final; pending " << CountIn(*jobs, {JobState::kPending});
  const auto finished = std::chrono::steady_clock::now();
  std::printf("500 jobs: submitted in %.1f s, all final after %.1f s\n",
              std::chrono::duration<double>(submitted - start).count(),
              std::chrono::duration<double>(finished - start).count());

  EXPECT_EQ(AllJobs(*jobs).size(), 500u);
  const auto attempts = AttemptsOf(*jobs, ids);
  const auto by_node = ExpectEachCompletedOnce(*jobs, attempts);
  std::printf("completed per node: %s\n", Counts(by_node).c_str());
  // A healthy cluster runs each job once: no claim race, no lease lost.
  int rerun = 0;
  for (const auto& [id, runs] : attempts) {
    if (runs.size() != 1 && ++rerun <= 5) ADD_FAILURE() << id << " ran again: " << Describe(runs);
  }
  EXPECT_EQ(rerun, 0);
  for (const auto& n : names) {
    const int done = by_node.count(n) ? by_node.at(n) : 0;
    EXPECT_GE(done, 50) << n << " did less than 10% of the work: " << Counts(by_node);
    int64_t at_ms = 0;
    const int most = MaxOverlap(attempts, n, kStoreLagMs, &at_ms);
    EXPECT_LE(most, kCapacity) << n << " held " << most << " jobs at once at " << at_ms
                               << " (store clock) with room for " << kCapacity;
    int64_t unused = 0;
    EXPECT_GE(MaxOverlap(attempts, n, 0, &unused), 1) << n;
    std::printf("%s: at most %d jobs at once\n", n.c_str(), most);
  }
  // The work ran on the simulated GPUs: every node's runner is still loaded there.
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto c = nodes[i]->Client();
    auto memory = JsonOf(c.Get("/api/memory_status"));
    ASSERT_EQ(memory["devices"].size(), 1u) << memory.dump();
    EXPECT_GT(memory["devices"][0]["allocated"].get<int64_t>(), 0) << names[i] << memory.dump();
  }
}

TEST(ClusterWorkTest, KilledNodesJobsFinishOnTheOthersExactlyOnce) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  ScopedTempDir dir("steno-cluster-work");
  const std::string clip = Clip(dir, "speech_60s.wav", kMidJobClipSeconds);
  const std::vector<std::string> lease = {"--lease", "3s"};
  auto a = StartNode(url, "node-a", lease);
  auto b = StartNode(url, "node-b", lease);
  auto c = StartNode(url, "node-c", lease);
  ASSERT_TRUE(a->port > 0 && b->port > 0 && c->port > 0);
  auto jobs = OpenPgJobStore(url);
  ASSERT_TRUE(jobs);

  const auto start = std::chrono::steady_clock::now();
  const auto ids = SubmitSpread({a.get(), b.get(), c.get()}, clip, 60);
  ASSERT_EQ(ids.size(), 60u);
  // Mid-run: some jobs done, A transcribing.
  ASSERT_TRUE(MidJob(*jobs, "node-a", 6)) << "node-a never ran a job; finished " << Finished(*jobs);
  ASSERT_LT(Finished(*jobs), 50) << "the run ended before the kill";
  const int64_t kill_ms = jobs->Now();
  a->Signal(SIGKILL);
  const int rc = a->Stop();  // reaps it
  EXPECT_EQ(rc, 128 + SIGKILL);
  // Dead, A changes nothing more: what it holds now (its lease still runs) is what it was running.
  std::set<std::string> orphans;
  for (const auto& j : HeldBy(*jobs, "node-a")) orphans.insert(j.id);
  ASSERT_FALSE(orphans.empty()) << "node-a held nothing when it was killed";

  ASSERT_TRUE(PollUntil([&] { return Finished(*jobs) == 60; }, 180s))
      << Finished(*jobs)
      << " of 60 final; still held by node-a: " << HeldBy(*jobs, "node-a").size();
  std::printf("kill -9 with %zu jobs on node-a; all 60 final after %.1f s\n", orphans.size(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  const auto attempts = AttemptsOf(*jobs, ids);
  const auto by_node = ExpectEachCompletedOnce(*jobs, attempts);
  std::printf("completed per node: %s\n", Counts(by_node).c_str());
  for (const auto& id : orphans) {
    const auto& runs = attempts.at(id);
    auto done = Completed(runs);
    ASSERT_EQ(done.size(), 1u) << id << ": " << Describe(runs);
    EXPECT_TRUE(done[0]->owner == "node-b" || done[0]->owner == "node-c")
        << id << ": " << Describe(runs);
    const bool lost_on_a = std::any_of(runs.begin(), runs.end(), [](const AttemptRecord& r) {
      return r.owner == "node-a" && r.outcome != "completed" && !r.outcome.empty();
    });
    EXPECT_TRUE(lost_on_a) << id << ": " << Describe(runs);
    // Taken over after a lease (3 s) and a sweep, not only much later.
    EXPECT_LT(done[0]->started_ms - kill_ms, 60'000) << id << ": " << Describe(runs);
    std::printf("%s: %s\n", id.c_str(), Describe(runs).c_str());
  }
  // No job A ran is left without an outcome.
  for (const auto& [id, runs] : attempts) {
    for (const auto& r : runs) EXPECT_FALSE(r.outcome.empty()) << id << ": " << Describe(runs);
  }
  EXPECT_TRUE(HeldBy(*jobs, "node-a").empty());
}

TEST(ClusterWorkTest, NodeJoiningMidRunTakesWork) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  ScopedTempDir dir("steno-cluster-work");
  const std::string clip = Clip(dir, "speech.wav");
  auto a = StartNode(url, "node-a");
  auto b = StartNode(url, "node-b");
  ASSERT_TRUE(a->port > 0 && b->port > 0);
  auto jobs = OpenPgJobStore(url);
  ASSERT_TRUE(jobs);

  const auto start = std::chrono::steady_clock::now();
  const auto ids = SubmitSpread({a.get(), b.get()}, clip, 80, 2);
  ASSERT_EQ(ids.size(), 80u);
  ASSERT_TRUE(PollUntil([&] { return Finished(*jobs) >= 10; }, 120s)) << Finished(*jobs);
  // The two nodes hold only what they run: the rest waits in the shared queue.
  EXPECT_LE(HeldBy(*jobs, "node-a").size(), static_cast<size_t>(kCapacity));
  EXPECT_LE(HeldBy(*jobs, "node-b").size(), static_cast<size_t>(kCapacity));
  const int64_t before_join = Finished(*jobs);
  ASSERT_LT(before_join, 60) << "too little work left for a joining node";
  auto c = StartNode(url, "node-c");
  ASSERT_GT(c->port, 0);

  ASSERT_TRUE(PollUntil([&] { return Finished(*jobs) == 80; }, 180s)) << Finished(*jobs);
  std::printf("node-c joined after %lld of 80; all final after %.1f s\n",
              static_cast<long long>(before_join),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  const auto attempts = AttemptsOf(*jobs, ids);
  const auto by_node = ExpectEachCompletedOnce(*jobs, attempts);
  std::printf("completed per node: %s\n", Counts(by_node).c_str());
  EXPECT_GE(by_node.count("node-c") ? by_node.at("node-c") : 0, 1) << Counts(by_node);
}

TEST(ClusterWorkTest, GracefulLeaveHandsJobsBack) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  ScopedTempDir dir("steno-cluster-work");
  const std::string clip = Clip(dir, "speech_60s.wav", kMidJobClipSeconds);
  // A's running jobs are cut at once on SIGTERM (no grace).
  auto a = StartNode(url, "node-a", {"--shutdown-grace", "0s"});
  auto b = StartNode(url, "node-b");
  auto c = StartNode(url, "node-c");
  ASSERT_TRUE(a->port > 0 && b->port > 0 && c->port > 0);
  auto jobs = OpenPgJobStore(url);
  ASSERT_TRUE(jobs);
  ASSERT_TRUE(PollUntil(
      [&] {
        auto nodes = jobs->ListNodes();
        return nodes.ok() && std::any_of(nodes->begin(), nodes->end(),
                                         [](const auto& n) { return n.id == "node-a"; });
      },
      30s))
      << "node-a never published itself";

  const auto start = std::chrono::steady_clock::now();
  const auto ids = SubmitSpread({a.get(), b.get(), c.get()}, clip, 45);
  ASSERT_EQ(ids.size(), 45u);
  // SIGTERM while A is surely mid-job.
  ASSERT_TRUE(MidJob(*jobs, "node-a", 3)) << "node-a never ran a job; finished " << Finished(*jobs);
  ASSERT_LT(Finished(*jobs), 40) << "the run ended before the SIGTERM";
  std::set<std::string> held_before;
  for (const auto& j : HeldBy(*jobs, "node-a")) held_before.insert(j.id);
  const int64_t term_ms = jobs->Now();
  const auto term = std::chrono::steady_clock::now();
  const int rc = a->Stop(60);
  const double exit_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - term).count();
  EXPECT_EQ(rc, 0) << "node-a did not exit cleanly on SIGTERM";
  // Gone: it holds nothing and has left the nodes table.
  EXPECT_TRUE(HeldBy(*jobs, "node-a").empty());
  auto nodes = jobs->ListNodes();
  ASSERT_TRUE(nodes.ok());
  for (const auto& n : *nodes) EXPECT_NE(n.id, "node-a") << "node-a still listed after leaving";

  ASSERT_TRUE(PollUntil([&] { return Finished(*jobs) == 45; }, 180s)) << Finished(*jobs);
  std::printf("SIGTERM of node-a holding %zu jobs: exit %d after %.1f s; all final after %.1f s\n",
              held_before.size(), rc, exit_s,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  const auto attempts = AttemptsOf(*jobs, ids);
  const auto by_node = ExpectEachCompletedOnce(*jobs, attempts);
  std::printf("completed per node: %s\n", Counts(by_node).c_str());

  std::set<std::string> handed_back;
  for (const auto& [id, runs] : attempts) {
    for (const auto& r : runs) {
      if (r.owner != "node-a") continue;
      // A stopped claiming on SIGTERM (a claim already under way may land just after).
      EXPECT_LT(r.started_ms, term_ms + kStoreLagMs) << id << ": " << Describe(runs);
      if (r.outcome == "completed") continue;
      handed_back.insert(id);
      // Handed back at once, not found later by a lease running out.
      EXPECT_EQ(r.outcome, "requeued") << id << ": " << Describe(runs);
      EXPECT_LT(r.ended_ms, term_ms + static_cast<int64_t>(exit_s * 1000) + kStoreLagMs)
          << id << ": " << Describe(runs);
      auto done = Completed(runs);
      ASSERT_EQ(done.size(), 1u) << id << ": " << Describe(runs);
      EXPECT_TRUE(done[0]->owner == "node-b" || done[0]->owner == "node-c")
          << id << ": " << Describe(runs);
    }
  }
  EXPECT_FALSE(handed_back.empty()) << "no job of node-a was cut short and handed back";
  for (const auto& id : handed_back) {
    std::printf("%s: %s\n", id.c_str(), Describe(attempts.at(id)).c_str());
  }
  // What A held at SIGTERM either finished there in the moment before the cut, or was handed back.
  for (const auto& id : held_before) {
    const auto& runs = attempts.at(id);
    auto done = Completed(runs);
    ASSERT_EQ(done.size(), 1u) << id;
    EXPECT_TRUE(done[0]->owner == "node-a" ? runs.size() == 1 : handed_back.count(id) == 1)
        << id << ": " << Describe(runs);
  }
}

}  // namespace
}  // namespace steno::test
