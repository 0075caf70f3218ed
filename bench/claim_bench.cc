// The shared PostgreSQL queue's claim path with 3 nodes: claim throughput (jobs/s) and claim
// latency (p50/p90/p99/max), then a check that every job completed exactly once.
//
// Setup: a private PostgreSQL server (tests/support/pg_server.h: Debian's binaries, a fresh
// cluster on loopback TCP, run with fsync=off and synchronous_commit=off, so the figures are the
// queue's locking and round trips, not the disk). --jobs pending jobs are inserted through
// store::PgJobStore (three models, mixed priorities, a SHA-256-shaped blob digest each).
//
// Measured: --nodes node processes (fork; owners node-1, node-2, ...) run --claimers-per-node
// threads each, every thread with its own PgJobStore (its own connection), looping
// Claim -> MarkProcessing -> Complete until Claim finds nothing. All connections are open before
// the clock starts.
//   jobs/s         jobs / (the last claimer finding the queue empty - go): full cycles per second
//                  (three transactions per job), which is what a node's claim loop can sustain.
//   claim latency  each Claim call that got a job, timed with steady_clock around the call (the
//                  one empty Claim per thread at the end is not counted).
// Check: Count shows every job completed and nothing else; no job was handed out twice; each has
// exactly one attempt, outcome completed, owned by the node that claimed it. Exit 1 if not (or on
// any store error), 0 otherwise. Not a pass/fail target on the figures.
//
//   build/bench/claim_bench [--jobs 3000] [--nodes 3] [--claimers-per-node 1,4]
// --claimers-per-node takes a comma-separated list: one run per value, each on a fresh database.
// Run as root, PostgreSQL runs as the postgres user (pg_server.h). `make bench` runs it as is.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "store/pg_job_store.h"
#include "support/pg_server.h"
#include "support/test_env.h"

namespace {

using namespace steno;
using namespace steno::store;
using Clock = std::chrono::steady_clock;

const std::vector<std::string> kModels = {"base.en", "small", "large-v3"};
const char kResult[] =
    R"({"text":"hello world","language":"en","segments":[{"start":0.0,"end":1.5,"text":"hello world"}]})";

int64_t NowNs() {
  return Clock::now().time_since_epoch().count();
}  // same clock in every process

// A lowercase 64-hex digest, different per job (splitmix64; no blob behind it).
std::string Digest(uint64_t seed) {
  std::string out;
  char word[17];
  for (int i = 0; i < 4; ++i) {
    uint64_t z = (seed * 4 + i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    std::snprintf(word, sizeof word, "%016" PRIx64, z ^ (z >> 31));
    out += word;
  }
  return out;
}

NewJob MakeJob(int i) {
  NewJob job;
  job.model = kModels[i % kModels.size()];
  job.priority = i % 10 < 2 ? Priority::kHigh : i % 10 < 8 ? Priority::kNormal : Priority::kLow;
  job.params.language = "en";
  job.params.filename = "call-" + std::to_string(i) + ".wav";
  job.blob_digest = Digest(i);
  return job;
}

Result<std::unique_ptr<PgJobStore>> OpenStore(const std::string& url) {
  PgOptions options;
  options.url = url;
  return PgJobStore::Open(options);
}

std::string OneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// One claimer thread of a node: its lines for the node's report file.
void Claimer(const std::string& url, const std::string& owner, int ready_fd, int go_fd,
             std::string* report) {
  std::ostringstream out;
  auto store = OpenStore(url);
  char mark = store.ok() ? 'r' : 'x';
  if (write(ready_fd, &mark, 1) != 1) mark = 'x';
  char byte;
  while (read(go_fd, &byte, 1) < 0 && errno == EINTR) {
  }  // EOF: the parent closed its end, every claimer starts now
  if (!store.ok()) {
    *report = "error open: " + OneLine(store.error().message) + "\n";
    return;
  }
  const ClaimRequest request{owner, 60'000, std::nullopt, kModels};
  for (;;) {
    Clock::time_point t0 = Clock::now();
    auto claimed = (*store)->Claim(request);
    int64_t claim_ns = (Clock::now() - t0).count();
    if (!claimed.ok()) {
      out << "error claim: " << OneLine(claimed.error().message) << "\n";
      break;
    }
    if (!claimed->has_value()) break;
    const std::string id = (*claimed)->id;
    Status st = (*store)->MarkProcessing(id, owner);
    if (st.ok()) st = (*store)->Complete(id, owner, kResult);
    if (!st.ok()) {
      out << "error " << id << ": " << OneLine(st.error().message) << "\n";
      break;
    }
    out << "claim " << id << " " << claim_ns << "\n";
  }
  out << "end " << NowNs() << "\n";
  *report = out.str();
}

// A node process: its claimers, then their lines in `path`. Never returns.
[[noreturn]] void Node(const std::string& url, const std::string& owner, int claimers, int ready_fd,
                       int go_fd, const std::string& path) {
  std::vector<std::string> reports(claimers);
  std::vector<std::thread> threads;
  for (int c = 0; c < claimers; ++c) {
    threads.emplace_back(Claimer, url, owner, ready_fd, go_fd, &reports[c]);
  }
  for (auto& t : threads) t.join();
  std::ofstream file(path);
  for (const auto& r : reports) file << r;
  file.close();
  _exit(file ? 0 : 1);  // _exit: the parent's server and temp dir are not ours to clean up
}

double Ms(int64_t ns) {
  return ns / 1e6;
}
int64_t Percentile(const std::vector<int64_t>& sorted, double q) {
  size_t rank = static_cast<size_t>(q * sorted.size() + 0.999999);
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

// One run on a fresh database. False if a check failed or anything went wrong.
bool Run(test::PgServer& server, int jobs, int nodes, int claimers) {
  double load[1] = {0};
  getloadavg(load, 1);
  std::printf(
      "claim_bench: %d jobs, %d nodes x %d claimer%s (own process per node, own "
      "connection per claimer); %u cores, load average %.2f\n",
      jobs, nodes, claimers, claimers == 1 ? "" : "s", std::thread::hardware_concurrency(),
      load[0]);
  const std::string url = server.CreateDatabase();
  if (url.empty()) {
    std::fprintf(stderr, "claim_bench: %s\n", server.error().c_str());
    return false;
  }
  std::vector<std::string> ids;
  {
    auto store = OpenStore(url);
    if (!store.ok()) {
      std::fprintf(stderr, "claim_bench: open: %s\n", store.error().message.c_str());
      return false;
    }
    Clock::time_point t0 = Clock::now();
    for (int i = 0; i < jobs; ++i) {
      auto inserted = (*store)->Insert(MakeJob(i));
      if (!inserted.ok()) {
        std::fprintf(stderr, "claim_bench: insert: %s\n", inserted.error().message.c_str());
        return false;
      }
      ids.push_back(inserted->job.id);
    }
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("  insert   %d jobs in %.2f s (%.0f jobs/s, one connection)\n", jobs, s, jobs / s);
  }

  test::ScopedTempDir tmp("steno-claim-bench");
  int ready[2], go[2];
  if (pipe(ready) != 0 || pipe(go) != 0) return false;
  std::fflush(stdout);
  std::vector<pid_t> pids;
  for (int n = 1; n <= nodes; ++n) {
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
      close(ready[0]);
      close(go[1]);
      Node(url, "node-" + std::to_string(n), claimers, ready[1], go[0],
           tmp.path + "/node-" + std::to_string(n));
    }
    pids.push_back(pid);
  }
  close(ready[1]);
  close(go[0]);
  bool ok = true;
  for (int i = 0; i < nodes * claimers; ++i) {
    char mark = 'x';
    if (read(ready[0], &mark, 1) != 1 || mark != 'r') ok = false;  // the claimer says why later
  }
  close(ready[0]);
  const int64_t go_ns = NowNs();
  close(go[1]);
  for (pid_t pid : pids) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "claim_bench: node process %d failed (status %d)\n", pid, status);
      ok = false;
    }
  }

  // Collect what the nodes report.
  std::map<std::string, std::string> claimed_by;  // job id -> owner
  std::vector<int64_t> latencies;
  int64_t end_ns = go_ns;
  int duplicates = 0;
  for (int n = 1; n <= nodes; ++n) {
    const std::string owner = "node-" + std::to_string(n);
    std::ifstream file(tmp.path + "/" + owner);
    std::string line;
    int count = 0;
    while (std::getline(file, line)) {
      std::istringstream in(line);
      std::string word, id;
      in >> word;
      if (word == "claim") {
        int64_t ns = 0;
        in >> id >> ns;
        latencies.push_back(ns);
        if (!claimed_by.emplace(id, owner).second) ++duplicates;
        ++count;
      } else if (word == "end") {
        int64_t ns = 0;
        in >> ns;
        end_ns = std::max(end_ns, ns);
      } else {
        std::fprintf(stderr, "claim_bench: %s: %s\n", owner.c_str(), line.c_str());
        ok = false;
      }
    }
    std::printf("  %s   %d jobs\n", owner.c_str(), count);
  }
  if (latencies.empty()) {
    std::fprintf(stderr, "claim_bench: no job was claimed\n");
    return false;
  }
  const double wall_s = Ms(end_ns - go_ns) / 1000;
  std::sort(latencies.begin(), latencies.end());
  std::printf("  claim    %zu jobs in %.2f s: %.0f jobs/s (claim -> processing -> complete)\n",
              latencies.size(), wall_s, latencies.size() / wall_s);
  std::printf("  latency  claim ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n",
              Ms(Percentile(latencies, 0.50)), Ms(Percentile(latencies, 0.90)),
              Ms(Percentile(latencies, 0.99)), Ms(latencies.back()));

  // Every job completed exactly once, by the node that claimed it.
  auto store = OpenStore(url);
  if (!store.ok()) {
    std::fprintf(stderr, "claim_bench: open: %s\n", store.error().message.c_str());
    return false;
  }
  std::vector<std::string> problems;
  if (duplicates) problems.push_back(std::to_string(duplicates) + " jobs handed out twice");
  auto counts = (*store)->Count();
  if (!counts.ok()) {
    problems.push_back("count: " + counts.error().message);
  } else {
    for (JobState s : {JobState::kPending, JobState::kLoading, JobState::kProcessing,
                       JobState::kCompleted, JobState::kFailed, JobState::kCancelled}) {
      int64_t want = s == JobState::kCompleted ? jobs : 0;
      if ((*counts)[s] != want) {
        problems.push_back(std::string(JobStateName(s)) + ": " + std::to_string((*counts)[s]) +
                           " jobs, expected " + std::to_string(want));
      }
    }
  }
  int bad_attempts = 0;
  for (const std::string& id : ids) {
    auto attempts = (*store)->Attempts(id);
    auto it = claimed_by.find(id);
    if (!attempts.ok() || attempts->size() != 1 || (*attempts)[0].outcome != "completed" ||
        it == claimed_by.end() || (*attempts)[0].owner != it->second) {
      if (++bad_attempts <= 3)
        problems.push_back("job " + id +
                           ": not one completed attempt by "
                           "the node that claimed it");
    }
  }
  if (bad_attempts > 3) problems.push_back(std::to_string(bad_attempts) + " such jobs in all");
  if (claimed_by.size() != ids.size()) {
    problems.push_back(std::to_string(claimed_by.size()) + " jobs claimed, " +
                       std::to_string(ids.size()) + " inserted");
  }
  for (const auto& p : problems) std::fprintf(stderr, "claim_bench: FAILED: %s\n", p.c_str());
  if (problems.empty() && ok) {
    std::printf("  check    ok: %d jobs completed, each once, one attempt each\n", jobs);
  }
  std::fflush(stdout);
  return problems.empty() && ok;
}

int Usage() {
  std::fprintf(stderr,
               "usage: claim_bench [--jobs N] [--nodes N] [--claimers-per-node N[,N...]]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int jobs = 3000, nodes = 3;
  std::vector<int> claimers = {1, 4};
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) return Usage();
    std::string value = argv[++i];
    if (flag == "--jobs") {
      jobs = std::atoi(value.c_str());
    } else if (flag == "--nodes") {
      nodes = std::atoi(value.c_str());
    } else if (flag == "--claimers-per-node") {
      claimers.clear();
      std::istringstream in(value);
      for (std::string item; std::getline(in, item, ',');)
        claimers.push_back(std::atoi(item.c_str()));
    } else {
      return Usage();
    }
  }
  if (jobs < 1 || nodes < 1 || claimers.empty() ||
      std::any_of(claimers.begin(), claimers.end(), [](int c) { return c < 1; })) {
    return Usage();
  }
  // PgServer allows 60 connections; each run also opens one of its own.
  if (nodes * *std::max_element(claimers.begin(), claimers.end()) > 50) {
    std::fprintf(stderr, "claim_bench: at most 50 claimers in all (nodes x claimers-per-node)\n");
    return 2;
  }
  log::Init();
  log::SetLevel("warn");  // not the store's "schema applied" lines
  test::PgServer server;
  if (!server.ok()) {
    std::fprintf(stderr, "claim_bench: %s\n", server.error().c_str());
    return 1;
  }
  bool ok = true;
  for (int c : claimers) ok = Run(server, jobs, nodes, c) && ok;
  return ok ? 0 : 1;
}
