// Promise 3 with real processes: the store driver (tests/helpers/store_driver.cc) accepts 50
// uploads and processes them while this test kill -9s it at chosen moments (during an upload,
// during processing, while a result is written, at random), restarts it with the keys not yet
// acknowledged (as a client retrying with its idempotency key would), and checks after every
// kill and at the end that:
//  - every acknowledged job is in the database, pointing at a complete, intact upload;
//  - an upload cut off midway never became a job;
//  - every job ends completed exactly once, with its own result;
//  - no orphan blobs or partial uploads remain after the startup sweep.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "helpers/store_payload.h"
#include "store/blob_store.h"
#include "store/retention.h"
#include "store/sqlite_job_store.h"
#include "support/test_env.h"

namespace steno::store {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kJobs = 50;

// The driver as a child process whose stdout we read line by line.
class Driver {
 public:
  Driver(const std::string& data_dir, const std::vector<std::string>& keys, int run) {
    std::string joined;
    for (const auto& k : keys) joined += (joined.empty() ? "" : ",") + k;
    std::vector<std::string> argv = {test::HelperBin("store_driver"), "--data-dir", data_dir,
                                     "--keys", joined};
    std::string log = data_dir + "/driver-" + std::to_string(run) + ".log";
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      int err = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) dup2(err, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
  }
  ~Driver() {
    if (pid_ > 0) Kill();
    if (fd_ >= 0) close(fd_);
  }

  // The next line, or nullopt at end of output or when `deadline` passes.
  std::optional<std::string> ReadLine(Clock::time_point deadline) {
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        lines_.push_back(line);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

  // kill -9; then everything it managed to write before dying is read.
  void Kill() {
    kill(pid_, SIGKILL);
    Wait();
  }
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    while (ReadLine(Clock::now() + std::chrono::seconds(2))) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
  std::vector<std::string> lines_;
};

std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

class StoreCrashTest : public ::testing::Test {
 protected:
  std::string DataDir() const { return dir_.path; }

  // Folds one run's output into what the "client" knows: acknowledgements and completions.
  void Absorb(const Driver& driver) {
    for (const auto& line : driver.lines()) {
      auto w = Words(line);
      if (w.size() == 5 && w[0] == "ACK") {
        auto [it, fresh] = acked_.emplace(w[1], w[2]);
        EXPECT_EQ(it->second, w[2]) << "key " << w[1] << " acknowledged as two different jobs";
        EXPECT_EQ(w[3], Sha256Of(w[1])) << "acknowledged digest is not the upload's";
      } else if (w.size() == 2 && w[0] == "DONE") {
        ++done_lines_[w[1]];
      }
    }
  }

  std::string Sha256Of(const std::string& key) {
    if (!digests_.count(key)) {
      test::ScopedTempDir scratch("steno-digest");
      auto blobs = BlobStore::Open(scratch.path);
      digests_[key] = blobs->Put(test::StorePayload(key))->digest;
    }
    return digests_[key];
  }

  // What must hold in the data dir whenever the driver is dead, however it died.
  // Returns the number of temp (.part) files found, i.e. uploads cut off midway.
  int CheckInvariants(const std::string& when) {
    SCOPED_TRACE(when);
    SqliteOptions options;
    options.path = DefaultDbPath(DataDir());
    options.own_queue = false;  // look, do not recover
    auto store = SqliteJobStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.error().message;
    if (!store.ok()) return 0;
    auto blobs = BlobStore::Open(DataDir() + "/blobs");
    JobFilter all;
    all.limit = 1000;
    auto page = (*store)->List(all);
    EXPECT_TRUE(page.ok());
    std::map<std::string, Job> by_key;
    for (const auto& job : page->jobs) {
      EXPECT_TRUE(by_key.emplace(job.idempotency_key, job).second)
          << "two jobs for key " << job.idempotency_key;
      EXPECT_NE(job.state, JobState::kFailed) << job.id << ": " << job.error->message;
      EXPECT_NE(job.state, JobState::kCancelled);
      // The job's upload is complete and intact: a cut-off upload never became a job.
      EXPECT_EQ(job.blob_digest, Sha256Of(job.idempotency_key)) << job.id;
      EXPECT_TRUE(blobs->Verify(job.blob_digest).ok()) << job.id;
      if (job.state == JobState::kCompleted) {
        auto result = (*store)->GetResult(job.id);
        EXPECT_TRUE(result.ok()) << job.id;
        if (!result.ok()) continue;
        auto r = nlohmann::json::parse(*result);
        EXPECT_EQ(r["key"], job.idempotency_key);
        EXPECT_EQ(r["digest"], job.blob_digest);
        EXPECT_EQ(r["segments"].size(), 40u);
      }
    }
    // Durability: every job the client was told about exists, under the id it was told.
    for (const auto& [key, id] : acked_) {
      auto it = by_key.find(key);
      EXPECT_TRUE(it != by_key.end()) << "acknowledged job lost: " << key;
      if (it != by_key.end()) {
        EXPECT_EQ(it->second.id, id);
      }
    }
    int temps = 0;
    for (const auto& e : fs::directory_iterator(DataDir() + "/blobs/tmp"))
      temps += e.is_regular_file();
    return temps;
  }

  // Keys among the first `submitted` that have no acknowledgement yet: a client that keeps
  // submitting new work and retries what it was never told about.
  std::vector<std::string> Unacked(int submitted = kJobs) const {
    std::vector<std::string> keys;
    for (int i = 0; i < std::min(submitted, kJobs); ++i) {
      std::string key = "job-" + std::to_string(i);
      if (!acked_.count(key)) keys.push_back(key);
    }
    return keys;
  }

  test::ScopedTempDir dir_{"steno-crash"};
  std::map<std::string, std::string> acked_;  // key -> job id
  std::map<std::string, int> done_lines_;     // job id -> DONE lines seen over all runs
  std::map<std::string, std::string> digests_;
};

TEST_F(StoreCrashTest, KilledAtAnyMomentEveryAcknowledgedJobCompletesExactlyOnce) {
  const std::uint32_t seed = test::TestSeed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (replay with STENO_TEST_SEED)");
  std::mt19937 rng(seed);
  std::vector<std::string> targets;
  for (int round = 0; round < 3; ++round) {
    for (const char* t : {"upload", "process", "complete", "random"}) targets.push_back(t);
  }
  int cut_uploads = 0, killed_while_active = 0, recovered_total = 0, swept_total = 0;
  for (size_t run = 0; run < targets.size(); ++run) {
    const std::string& target = targets[run];
    SCOPED_TRACE("run " + std::to_string(run) + ", kill during " + target);
    // Each run brings 5 new uploads, so every run has uploads and jobs in flight to kill.
    Driver driver(DataDir(), Unacked(5 * static_cast<int>(run + 1)), static_cast<int>(run));
    auto deadline = Clock::now() + std::chrono::seconds(20);
    auto ready = driver.ReadLine(deadline);
    ASSERT_TRUE(ready && ready->rfind("READY", 0) == 0) << "driver did not start";
    auto r = Words(*ready);
    recovered_total += std::stoi(r[1]);
    swept_total += std::stoi(r[2]) + std::stoi(r[3]);
    if (target == "random") {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 60'000));
    } else {
      // Wait for the n-th start of the phase, then kill within a fraction of a millisecond:
      // inside the upload's chunks, the processing sleep, or the completing transaction.
      int skip = static_cast<int>(rng() % 4);
      while (auto line = driver.ReadLine(deadline)) {
        if (line->rfind("PHASE " + target, 0) == 0 && skip-- == 0) break;
      }
      // An upload of 24 KiB or more takes at least ~0.5 ms of chunk delays plus an fsync.
      std::this_thread::sleep_for(
          std::chrono::microseconds(rng() % (target == "upload" ? 400 : 1500)));
    }
    driver.Kill();
    Absorb(driver);
    int temps = CheckInvariants("after kill in run " + std::to_string(run));
    cut_uploads += temps > 0;
    SqliteOptions look;
    look.path = DefaultDbPath(DataDir());
    look.own_queue = false;
    auto store = SqliteJobStore::Open(look);
    ASSERT_TRUE(store.ok());
    auto counts = (*store)->Count();
    killed_while_active += ((*counts)[JobState::kLoading] + (*counts)[JobState::kProcessing]) > 0;
    if (HasFatalFailure()) return;
  }

  // Final run, left alone: it must finish everything.
  Driver last(DataDir(), Unacked(), 99);
  auto deadline = Clock::now() + std::chrono::seconds(30);
  bool all_done = false;
  while (auto line = last.ReadLine(deadline)) {
    if (*line == "ALL_DONE") all_done = true;
  }
  if (!all_done) last.Kill();
  ASSERT_TRUE(all_done) << "final run did not finish: "
                        << test::ReadFileText(DataDir() + "/driver-99.log");
  EXPECT_EQ(last.Wait(), 0) << test::ReadFileText(DataDir() + "/driver-99.log");
  Absorb(last);
  recovered_total += std::stoi(Words(last.lines().at(0))[1]);
  EXPECT_EQ(CheckInvariants("after the final run"), 0) << "partial uploads left behind";

  // The crashes really hit the moments this test is about.
  EXPECT_GE(cut_uploads, 1) << "no kill landed inside an upload";
  EXPECT_GE(killed_while_active, 1) << "no kill landed while a job was running";
  EXPECT_GE(recovered_total, 1) << "no restart had to requeue a job";
  EXPECT_GE(swept_total, 1) << "no restart had to sweep a crash leftover";
  std::printf(
      "kills inside an upload: %d, with jobs running: %d; jobs requeued on restart: %d, "
      "leftovers swept: %d\n",
      cut_uploads, killed_while_active, recovered_total, swept_total);

  ASSERT_EQ(acked_.size(), static_cast<size_t>(kJobs));
  SqliteOptions look;
  look.path = DefaultDbPath(DataDir());
  look.own_queue = false;
  auto store = SqliteJobStore::Open(look);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Count()->by_state[static_cast<int>(JobState::kCompleted)], kJobs);
  // Exactly once: one completed attempt per job in the history, never two DONE lines, and
  // every restart that lost a run counted it.
  for (const auto& [key, id] : acked_) {
    auto history = (*store)->Attempts(id);
    ASSERT_TRUE(history.ok());
    int completions = 0;
    for (const auto& a : *history) completions += a.outcome == "completed";
    EXPECT_EQ(completions, 1) << key << " completed " << completions << " times";
    EXPECT_EQ(static_cast<int>(history->size()), (*store)->Get(id)->attempt) << key;
    EXPECT_EQ(history->back().outcome, "completed") << key;
    EXPECT_LE(done_lines_[id], 1) << key;
  }

  // No orphans: the final run's startup sweep left only blobs that jobs reference.
  auto blobs = BlobStore::Open(DataDir() + "/blobs");
  auto referenced = (*store)->ReferencedBlobs();
  std::set<std::string> refs(referenced->begin(), referenced->end());
  auto listed = blobs->List();
  ASSERT_TRUE(listed.ok());
  std::set<std::string> present;
  for (const auto& b : *listed) present.insert(b.digest);
  EXPECT_EQ(present, refs);
  // And once the jobs expire, retention takes every upload with them.
  store->reset();
  SqliteOptions own;
  own.path = look.path;
  auto owner = SqliteJobStore::Open(own);
  ASSERT_TRUE(owner.ok());
  RetentionPolicy policy;
  policy.max_age_ms = 0;
  policy.grace_ms = 0;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  auto report = RunRetention(**owner, *blobs, policy, now + 1);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->jobs_deleted, kJobs);
  EXPECT_TRUE(blobs->List()->empty());
}

}  // namespace
}  // namespace steno::store
