// SqliteJobStore: the behaviour every JobStore shares (support/store_cases.h: the job lifecycle,
// leases, exactly-once completion, idempotency, paging, footprints, retention), and what only
// the single-node store does: crash recovery on reopen and one process owning the queue.
#include <gtest/gtest.h>

#include <set>

#include "store/job_id.h"
#include "store/sqlite_job_store.h"
#include "support/store_cases.h"
#include "support/store_history_cases.h"
#include "support/test_env.h"

namespace steno::store {
namespace {

class SqliteHarness : public cases::StoreHarness {
 public:
  std::unique_ptr<JobStore> Open(std::function<int64_t()> clock) override {
    SqliteOptions options;
    options.path = DefaultDbPath(dir_.path);
    options.clock = std::move(clock);
    auto store = SqliteJobStore::Open(options);
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return store.ok() ? std::move(store).value() : nullptr;
  }

 private:
  test::ScopedTempDir dir_{"steno-store"};
};

using cases::StoreCases;
INSTANTIATE_TEST_SUITE_P(Sqlite, StoreCases,
                         ::testing::Values(cases::StoreBackend{
                             "sqlite", [] { return std::make_unique<SqliteHarness>(); }}),
                         cases::BackendName);

class StoreSqliteTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = OpenStore(); }

  std::unique_ptr<SqliteJobStore> OpenStore(bool own_queue = true) {
    SqliteOptions options;
    options.path = DefaultDbPath(dir_.path);
    options.own_queue = own_queue;
    options.clock = [this] { return now_; };
    auto store = SqliteJobStore::Open(options);
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return store.ok() ? std::move(store).value() : nullptr;
  }

  Job Submit() {
    Job job = cases::SubmitJob(*store_);
    now_ += 1;  // distinct creation times make the expected order unambiguous
    return job;
  }

  test::ScopedTempDir dir_{"steno-store"};
  int64_t now_ = 1'700'000'000'000;
  std::unique_ptr<SqliteJobStore> store_;
};

TEST_F(StoreSqliteTest, ReopenRequeuesAbandonedJobsAndKeepsEverythingElse) {
  Job pending = Submit();
  Job loading = Submit();
  Job processing = Submit();
  Job completed = Submit();
  ASSERT_TRUE(store_->Claim({"w1", 1000, loading.id, {}}).ok());
  ASSERT_TRUE(store_->Claim({"w1", 1000, processing.id, {}}).ok());
  ASSERT_TRUE(store_->MarkProcessing(processing.id, "w1").ok());
  ASSERT_TRUE(store_->Claim({"w1", 1000, completed.id, {}}).ok());
  ASSERT_TRUE(store_->Complete(completed.id, "w1", R"({"text":"x"})").ok());
  store_.reset();  // as if the process had died: nothing in memory survives

  store_ = OpenStore();
  ASSERT_TRUE(store_);
  EXPECT_EQ(store_->recovered_on_open(), 2);
  for (const auto& id : {loading.id, processing.id}) {
    auto j = store_->Get(id);
    EXPECT_EQ(j->state, JobState::kPending) << id;
    EXPECT_EQ(j->attempt, 2) << id;
    EXPECT_TRUE(j->lease_owner.empty());
    EXPECT_EQ(j->error->code, "run_lost");
  }
  EXPECT_EQ(store_->Get(pending.id)->attempt, 1);
  EXPECT_EQ(store_->Get(completed.id)->state, JobState::kCompleted);
  EXPECT_EQ(store_->GetResult(completed.id).value(), R"({"text":"x"})");
  EXPECT_EQ(store_->Complete(loading.id, "w1", "{}").error().code, kErrLeaseNotHeld);
}

TEST_F(StoreSqliteTest, OneProcessOwnsTheQueueButReadersMayOpen) {
  SqliteOptions options;
  options.path = DefaultDbPath(dir_.path);
  auto second = SqliteJobStore::Open(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, kErrStoreLocked);
  EXPECT_EQ(second.error().kind, ErrorKind::kUnavailable);

  Job job = Submit();
  cases::ClaimNextJob(*store_, "w1");
  auto reader = OpenStore(/*own_queue=*/false);
  ASSERT_TRUE(reader);
  EXPECT_EQ(reader->recovered_on_open(), 0);
  EXPECT_EQ(reader->Get(job.id)->state, JobState::kLoading) << "a reader must not steal work";
}

}  // namespace
}  // namespace steno::store
