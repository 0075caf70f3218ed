// Group commit (store/group_sync.h): one flush covers every Sync() that arrived while the
// previous flush ran, no Sync() is answered by a flush that began before it, and a failed flush
// fails exactly the writes it covered. Then the SQLite store acknowledging its writes that way.
#include "store/group_sync.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "store/job_store.h"
#include "store/sqlite_job_store.h"
#include "support/test_env.h"

namespace steno::store {
namespace {

// Waits (hang-only bound) until `pred` holds.
template <typename Pred>
bool WaitFor(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Inserts one job; true when the store acknowledged it.
bool Submit(JobStore& store) {
  NewJob job;
  job.model = "base";
  job.blob_digest = std::string(64, 'a');
  return store.Insert(job).ok();
}

// A flush the test holds open until it says so; it fails when `fail_next` is set.
struct HeldFlush {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> calls{0};
  std::atomic<bool> hold_first{true};
  std::atomic<bool> fail_next{false};

  Status operator()() {
    if (calls.fetch_add(1) == 0 && hold_first) released.wait();
    if (fail_next.exchange(false)) return Error(ErrorKind::kIo, kErrStoreIo, "flush failed");
    return {};
  }
};

TEST(GroupSyncTest, WritersArrivingDuringAFlushShareTheNextOne) {
  HeldFlush flush;
  GroupSync sync([&] { return flush(); });
  std::vector<std::thread> threads;
  std::atomic<int> answered_after_second{0};
  threads.emplace_back([&] { EXPECT_TRUE(sync.Sync().ok()); });  // leads; its flush is held
  ASSERT_TRUE(WaitFor([&] { return flush.calls.load() == 1; }));
  for (int i = 0; i < 7; ++i) {
    threads.emplace_back([&] {
      EXPECT_TRUE(sync.Sync().ok());
      // The held flush began before this call: only a later one may answer it.
      if (sync.flushes() >= 2) answered_after_second.fetch_add(1);
    });
  }
  ASSERT_TRUE(WaitFor([&] { return sync.waiting() == 8; }));
  flush.release.set_value();
  for (auto& t : threads) t.join();
  EXPECT_EQ(sync.flushes(), 2);  // one for the first write, one for the seven that waited
  EXPECT_EQ(sync.syncs(), 8);
  EXPECT_EQ(answered_after_second.load(), 7);
  EXPECT_EQ(sync.waiting(), 0);
}

TEST(GroupSyncTest, AFailedFlushFailsTheWritesItCoveredAndNoOthers) {
  HeldFlush flush;
  GroupSync sync([&] { return flush(); });
  std::promise<Status> first;
  std::thread leader([&] { first.set_value(sync.Sync()); });
  ASSERT_TRUE(WaitFor([&] { return flush.calls.load() == 1; }));
  std::vector<std::future<Status>> covered;
  for (int i = 0; i < 3; ++i)
    covered.push_back(std::async(std::launch::async, [&] { return sync.Sync(); }));
  ASSERT_TRUE(WaitFor([&] { return sync.waiting() == 4; }));
  flush.fail_next = true;  // the held flush fails when released
  flush.release.set_value();
  leader.join();
  EXPECT_FALSE(first.get_future().get().ok());
  for (auto& f : covered) EXPECT_TRUE(f.get().ok());  // a later flush covered them
  const Status later = sync.Sync();
  EXPECT_TRUE(later.ok());
  EXPECT_EQ(sync.flushes(), 3);
}

TEST(GroupSyncTest, ASyncWithNoFlushRunningFlushesAtOnce) {
  std::atomic<int> calls{0};
  GroupSync sync([&]() -> Status {
    calls.fetch_add(1);
    return {};
  });
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(sync.Sync().ok());
  EXPECT_EQ(calls.load(), 5);  // each write alone: its own flush, none skipped
  EXPECT_EQ(sync.syncs(), 5);
}

TEST(GroupSyncTest, WalFlushOfADatabaseWithNoWalYetIsFine) {
  test::ScopedTempDir dir{"steno-group-sync"};
  EXPECT_TRUE(WalFlush(dir.path + "/none.db")().ok());
}

TEST(SqliteGroupCommitTest, EveryWriteOfADurableStoreWaitsForAFlush) {
  test::ScopedTempDir dir{"steno-group-sync"};
  SqliteOptions options;
  options.path = DefaultDbPath(dir.path);
  auto store = SqliteJobStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.error().message;
  constexpr int kThreads = 8, kEach = 25;
  std::vector<std::thread> threads;
  std::atomic<int> inserted{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        if (Submit(**store)) inserted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(inserted.load(), kThreads * kEach);
  EXPECT_EQ((*store)->synced_writes(), kThreads * kEach);
  EXPECT_GE((*store)->flushes(), 1);
  EXPECT_LE((*store)->flushes(), kThreads * kEach);
  auto counts = (*store)->Count();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[JobState::kPending], kThreads * kEach);
}

TEST(SqliteGroupCommitTest, AStoreThatIsNotDurableNeverFlushes) {
  test::ScopedTempDir dir{"steno-group-sync"};
  SqliteOptions options;
  options.path = DefaultDbPath(dir.path);
  options.durable = false;
  auto store = SqliteJobStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.error().message;
  ASSERT_TRUE(Submit(**store));
  EXPECT_EQ((*store)->flushes(), 0);
}

}  // namespace
}  // namespace steno::store
