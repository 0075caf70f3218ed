// SqliteJobStore under concurrency: reads run on read-only connections and so proceed while the
// writer sits inside a transaction (a slow fsync), never see uncommitted work, see every write
// that has returned, and stay consistent while one thread writes and many read.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "store/sqlite_job_store.h"
#include "support/test_env.h"

namespace steno::store {
namespace {

using namespace std::chrono_literals;

const std::string kDigest(64, 'b');

// Holds the writer inside its next transaction, just before COMMIT, until released: what a write
// stuck in a long fsync looks like to readers.
class CommitGate {
 public:
  void Arm() {
    std::lock_guard lock(mu_);
    armed_ = true;
    entered_ = released_ = false;
  }
  // The store's before_commit hook.
  void Hook() {
    std::unique_lock lock(mu_);
    if (!armed_) return;
    armed_ = false;
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return released_; });
  }
  bool WaitEntered() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [this] { return entered_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false, entered_ = false, released_ = false;
};

class StoreConcurrencyTest : public ::testing::Test {
 protected:
  std::unique_ptr<SqliteJobStore> OpenStore(int read_connections = 4) {
    SqliteOptions options;
    options.path = DefaultDbPath(dir_.path);
    options.durable = false;  // the same WAL visibility rules, without an fsync per commit
    options.read_connections = read_connections;
    options.before_commit = [this] { gate_.Hook(); };
    auto store = SqliteJobStore::Open(options);
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return store.ok() ? std::move(store).value() : nullptr;
  }

  static Job Submit(SqliteJobStore& store, const std::string& model = "base") {
    NewJob job;
    job.model = model;
    job.blob_digest = kDigest;
    auto inserted = store.Insert(job);
    EXPECT_TRUE(inserted.ok()) << inserted.error().message;
    return inserted.ok() ? inserted->job : Job{};
  }

  // Runs `call` on another thread; true if it returned within `limit` (it is joined either way,
  // so a read stuck behind the gate fails the test instead of hanging it).
  template <class F>
  bool ReturnsWithin(F call, std::chrono::milliseconds limit, CommitGate& gate) {
    auto done = std::async(std::launch::async, std::move(call));
    bool in_time = done.wait_for(limit) == std::future_status::ready;
    if (!in_time) gate.Release();
    done.get();
    return in_time;
  }

  test::ScopedTempDir dir_{"steno-store-conc"};
  CommitGate gate_;
};

TEST_F(StoreConcurrencyTest, ReadsProceedWhileTheWriterHoldsATransaction) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->read_connections(), 4);
  Job done = Submit(*store);
  ASSERT_TRUE(store->Claim({"w1", 60'000, done.id, {}}).ok());
  ASSERT_TRUE(store->Complete(done.id, "w1", R"({"text":"done"})").ok());
  ASSERT_TRUE(store->PutFootprint({"base", "cpu", 100, 10, 0}).ok());
  Job job = Submit(*store);

  // The writer claims `job` and stops inside its transaction, holding the writer connection.
  gate_.Arm();
  auto writer = std::async(std::launch::async, [&] {
    auto claimed = store->Claim({"w1", 60'000, job.id, {}});
    EXPECT_TRUE(claimed.ok() && claimed->has_value());
    // Read-after-write on the writing thread, through a read connection.
    EXPECT_EQ(store->Get(job.id)->state, JobState::kLoading);
  });
  ASSERT_TRUE(gate_.WaitEntered());

  bool in_time = ReturnsWithin(
      [&] {
        // Every read returns, and none sees the claim that is not committed yet.
        auto got = store->Get(job.id);
        ASSERT_TRUE(got.ok());
        EXPECT_EQ(got->state, JobState::kPending);
        EXPECT_TRUE(got->lease_owner.empty());
        auto page = store->List({});
        ASSERT_TRUE(page.ok());
        EXPECT_EQ(page->jobs.size(), 2u);
        auto counts = store->Count();
        ASSERT_TRUE(counts.ok());
        EXPECT_EQ((*counts)[JobState::kPending], 1);
        EXPECT_EQ((*counts)[JobState::kLoading], 0);
        EXPECT_EQ(store->GetResult(done.id).value(), R"({"text":"done"})");
        EXPECT_EQ(store->GetResult(job.id).error().code, kErrResultNotFound);
        auto attempts = store->Attempts(job.id);
        ASSERT_TRUE(attempts.ok());
        EXPECT_TRUE(attempts->empty()) << "the uncommitted claim's attempt is visible";
        EXPECT_EQ(store->Attempts(done.id)->size(), 1u);
        EXPECT_EQ(store->GetFootprint("base", "cpu").value()->weights_bytes, 100);
        EXPECT_EQ(store->ListFootprints()->size(), 1u);
        EXPECT_EQ(store->ReferencedBlobs()->size(), 1u);
      },
      60s, gate_);
  EXPECT_TRUE(in_time) << "reads waited for the writer's transaction";
  gate_.Release();
  writer.get();

  // Once the write returned, every thread sees it.
  auto got = store->Get(job.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, JobState::kLoading);
  EXPECT_EQ(got->lease_owner, "w1");
  EXPECT_EQ(store->Attempts(job.id)->size(), 1u);
  EXPECT_EQ(store->Count().value()[JobState::kLoading], 1);
}

TEST_F(StoreConcurrencyTest, WithoutReadConnectionsReadsShareTheWriter) {
  auto store = OpenStore(/*read_connections=*/0);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->read_connections(), 0);
  Job job = Submit(*store);
  EXPECT_EQ(store->Get(job.id)->state, JobState::kPending);

  // The one connection is busy in the writer's transaction: a read waits for its commit, and
  // then sees it.
  gate_.Arm();
  auto writer = std::async(std::launch::async, [&] {
    EXPECT_TRUE(store->Claim({"w1", 60'000, job.id, {}}).ok());
  });
  ASSERT_TRUE(gate_.WaitEntered());
  auto reader = std::async(std::launch::async, [&] { return store->Get(job.id); });
  EXPECT_EQ(reader.wait_for(200ms), std::future_status::timeout);
  gate_.Release();
  writer.get();
  auto got = reader.get();
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state, JobState::kLoading);
  // Two-statement reads end their snapshot: the writer can start its next transaction.
  EXPECT_EQ(store->GetResult(job.id).error().code, kErrResultNotFound);
  EXPECT_EQ(store->Attempts(job.id)->size(), 1u);
  ASSERT_TRUE(store->Complete(job.id, "w1", "{}").ok());
  EXPECT_EQ(store->GetResult(job.id).value(), "{}");
}

// A reader that finds a connection left inside a transaction would read a stale snapshot. The
// pool rolls back any transaction on return; here many short reads interleave with writes and
// each thread's reads must move forward only.
TEST_F(StoreConcurrencyTest, ManyReadersStayConsistentWhileOneThreadWrites) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  constexpr int kJobs = 150;
  constexpr int kReaders = 8;
  const auto result_of = [](const std::string& id) { return R"({"id":")" + id + R"("})"; };

  std::mutex ids_mu;
  std::vector<std::string> ids;      // every id inserted so far
  std::atomic<int64_t> inserted{0};  // jobs whose Insert has returned
  std::atomic<bool> writing{true};
  std::atomic<int64_t> reads{0};

  std::thread writer([&] {
    // However the writer ends (a failed ASSERT returns early), the readers stop.
    struct Done {
      std::atomic<bool>& flag;
      ~Done() { flag = false; }
    } done{writing};
    for (int i = 0; i < kJobs; ++i) {
      Job job = Submit(*store, i % 2 ? "base" : "small");
      {
        std::lock_guard lock(ids_mu);
        ids.push_back(job.id);
      }
      inserted.fetch_add(1);
      // The writer's own reads see each of its writes at once.
      EXPECT_EQ(store->Get(job.id)->state, JobState::kPending);
      ASSERT_TRUE(store->Claim({"w1", 60'000, job.id, {}}).ok());
      EXPECT_EQ(store->Get(job.id)->state, JobState::kLoading);
      if (i % 5 == 4) {
        ASSERT_TRUE(store->Cancel(job.id).ok());
        EXPECT_EQ(store->Get(job.id)->state, JobState::kCancelled);
        continue;
      }
      ASSERT_TRUE(store->MarkProcessing(job.id, "w1").ok());
      EXPECT_EQ(store->Get(job.id)->state, JobState::kProcessing);
      ASSERT_TRUE(store->Complete(job.id, "w1", result_of(job.id)).ok());
      EXPECT_EQ(store->GetResult(job.id).value(), result_of(job.id));
    }
  });

  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937 rng(static_cast<unsigned>(r));
      std::map<std::string, JobState> seen;  // the latest state this thread read per job
      while (writing.load()) {
        std::string id;
        {
          std::lock_guard lock(ids_mu);
          if (!ids.empty()) id = ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
        }
        int64_t before = inserted.load();
        auto counts = store->Count();
        int64_t after = inserted.load();
        ASSERT_TRUE(counts.ok()) << counts.error().message;
        int64_t total = 0;
        for (auto n : counts->by_state) total += n;
        // A snapshot holds every insert that returned before the read, and at most the one
        // insert in flight beyond those counted afterwards.
        EXPECT_GE(total, before);
        EXPECT_LE(total, after + 1);
        if (id.empty()) continue;

        auto job = store->Get(id);
        ASSERT_TRUE(job.ok()) << job.error().message;
        // pending < loading < processing < completed|cancelled: never backwards.
        if (auto it = seen.find(id); it != seen.end()) {
          EXPECT_GE(static_cast<int>(job->state), static_cast<int>(it->second))
              << id << " went from " << JobStateName(it->second) << " back to "
              << JobStateName(job->state);
        }
        seen[id] = job->state;
        if (job->state == JobState::kCompleted) {
          // The result was committed with the state: it is there, whole.
          EXPECT_EQ(store->GetResult(id).value(), result_of(id));
        }
        if (IsFinal(job->state)) {
          auto attempts = store->Attempts(id);
          ASSERT_TRUE(attempts.ok());
          ASSERT_EQ(attempts->size(), 1u);
          EXPECT_EQ(attempts->front().outcome, JobStateName(job->state));
          EXPECT_GT(attempts->front().ended_ms, 0);
        }
        JobFilter active;
        active.states = {JobState::kLoading, JobState::kProcessing};
        auto page = store->List(active);
        ASSERT_TRUE(page.ok());
        EXPECT_LE(page->jobs.size(), 1u) << "the writer holds one job at a time";
        reads.fetch_add(1);
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_GT(reads.load(), 0);

  auto counts = store->Count();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[JobState::kCompleted], kJobs - kJobs / 5);
  EXPECT_EQ((*counts)[JobState::kCancelled], kJobs / 5);
}

// The pool lends each connection to one thread at a time: with more threads than connections,
// the extra ones wait their turn and every read still succeeds.
TEST_F(StoreConcurrencyTest, MoreReadersThanConnectionsShareThePool) {
  auto store = OpenStore(/*read_connections=*/2);
  ASSERT_TRUE(store);
  Job job = Submit(*store);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto got = store->Get(job.id);
        if (got.ok() && got->id == job.id) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 16 * 200);
}

// A read on the store's pool sees a write committed through another connection at once (WAL),
// and reads keep working while another connection holds the write lock.
TEST_F(StoreConcurrencyTest, ReadsIgnoreAnotherConnectionsWriteLock) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  Job job = Submit(*store);
  SqliteOptions look;
  look.path = DefaultDbPath(dir_.path);
  look.own_queue = false;
  auto other = SqliteJobStore::Open(look);
  ASSERT_TRUE(other.ok()) << other.error().message;

  gate_.Arm();
  auto writer = std::async(std::launch::async, [&] { EXPECT_TRUE(store->Cancel(job.id).ok()); });
  ASSERT_TRUE(gate_.WaitEntered());
  bool in_time = ReturnsWithin([&] { EXPECT_EQ((*other)->Get(job.id)->state, JobState::kPending); },
                               60s, gate_);
  EXPECT_TRUE(in_time);
  gate_.Release();
  writer.get();
  EXPECT_EQ((*other)->Get(job.id)->state, JobState::kCancelled);
}

}  // namespace
}  // namespace steno::store
