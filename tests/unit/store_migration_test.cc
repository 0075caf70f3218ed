// Schema migrations: from an empty file, from the previous version with data in it, and the
// clear errors for databases this steno must not touch.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>

#include "store/sqlite_db.h"
#include "store/sqlite_job_store.h"
#include "store/sqlite_migrations.h"
#include "support/test_env.h"

namespace steno::store {
namespace {

class StoreMigrationTest : public ::testing::Test {
 protected:
  std::string Path() const { return DefaultDbPath(dir_.path); }

  Result<std::unique_ptr<SqliteJobStore>> Open() {
    SqliteOptions options;
    options.path = Path();
    return SqliteJobStore::Open(options);
  }

  // Runs raw SQL through a separate connection, as an older steno (or another program) would.
  void RawSql(const std::string& sql) {
    auto db = sqlite::Db::Open(Path(), 1000);
    ASSERT_TRUE(db.ok());
    auto st = (*db)->Exec(sql);
    ASSERT_TRUE(st.ok()) << st.error().message;
  }

  int Version() {
    auto db = sqlite::Db::Open(Path(), 1000);
    auto v = sqlite::SchemaVersion(**db);
    return v.ok() ? *v : -1;
  }

  test::ScopedTempDir dir_{"steno-migrate"};
};

TEST_F(StoreMigrationTest, MigrationsAreNumberedInOrder) {
  const auto& all = sqlite::Migrations();
  ASSERT_GE(all.size(), 2u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].version, static_cast<int>(i) + 1);
  EXPECT_EQ(sqlite::LatestSchemaVersion(), static_cast<int>(all.size()));
}

TEST_F(StoreMigrationTest, EmptyFileBecomesLatestSchema) {
  std::ofstream(Path()).close();  // a zero-byte file, as `touch` would leave
  {
    auto store = Open();
    ASSERT_TRUE(store.ok()) << store.error().message;
    NewJob job{"base", Priority::kNormal, {}, "", ""};
    ASSERT_TRUE((*store)->Insert(job).ok());
    ASSERT_TRUE((*store)->PutFootprint({"base", "cpu", 1, 2, 0}).ok());
  }
  EXPECT_EQ(Version(), sqlite::LatestSchemaVersion());
  // Reopening an up-to-date database applies nothing and keeps the data.
  auto again = Open();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->Count()->by_state[0], 1);
}

TEST_F(StoreMigrationTest, WalModePersistsInTheFile) {
  auto store = Open();
  ASSERT_TRUE(store.ok());
  store->reset();
  auto db = sqlite::Db::Open(Path(), 1000);
  auto mode = (*db)->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode->Step().value());
  EXPECT_EQ(mode->Text(0), "wal");  // WAL is a property of the file, seen by any connection
}

TEST_F(StoreMigrationTest, PreviousVersionIsUpgradedKeepingItsJobs) {
  {
    auto db = sqlite::Db::Open(Path(), 1000);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(sqlite::Migrate(**db, 1).ok());
  }
  ASSERT_EQ(Version(), 1);
  // Rows as steno with schema v1 wrote them: one finished job with its result, one running.
  RawSql(R"sql(
    INSERT INTO jobs (id, state, priority, model, params, blob_digest, attempt, created_ms,
                      updated_ms, started_ms, finished_ms, idempotency_key)
      VALUES ('01HV1DONE00000000000000000', 'completed', 1, 'base', '{"language":"fr"}', NULL, 1,
              100, 200, 150, 200, 'key-1');
    INSERT INTO results (job_id, result, created_ms)
      VALUES ('01HV1DONE00000000000000000', '{"text":"bonjour"}', 200);
    INSERT INTO jobs (id, state, priority, model, params, attempt, created_ms, updated_ms,
                      lease_owner, lease_expires_ms)
      VALUES ('01HV1RUN000000000000000000', 'processing', 0, 'tiny', '{}', 1, 300, 300, 'old', 999);
  )sql");

  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(Version(), sqlite::LatestSchemaVersion());
  auto done = (*store)->Get("01HV1DONE00000000000000000");
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(done->state, JobState::kCompleted);
  EXPECT_EQ(done->params.language, "fr");
  EXPECT_EQ(done->not_before_ms, 0);  // the column v2 added, defaulted
  EXPECT_EQ((*store)->GetResult(done->id).value(), R"({"text":"bonjour"})");
  // The idempotency key written under v1 still deduplicates.
  NewJob retry{"base", Priority::kNormal, {}, "", "key-1"};
  EXPECT_TRUE((*store)->Insert(retry)->existing);
  // The v1 job that was running is recovered, and the v2 tables work for it.
  auto run = (*store)->Get("01HV1RUN000000000000000000");
  EXPECT_EQ(run->state, JobState::kPending);
  EXPECT_EQ(run->attempt, 2);
  auto claimed = (*store)->Claim({"w", 1000, run->id, {}});
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  EXPECT_TRUE((*store)->Complete(run->id, "w", "{}").ok());
  EXPECT_TRUE((*store)->PutFootprint({"tiny", "cpu", 1, 1, 0}).ok());
}

TEST_F(StoreMigrationTest, AVersion3DatabaseKeepsCountingItsJobsThroughTheCountsTable) {
  {
    auto db = sqlite::Db::Open(Path(), 1000);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(sqlite::Migrate(**db, 3).ok());
  }
  // As steno with schema v3 wrote them: two completed jobs and one pending, no counts table.
  RawSql(R"sql(
    INSERT INTO jobs (id, state, priority, model, params, attempt, created_ms, updated_ms)
      VALUES ('01HV3DONEA0000000000000000', 'completed', 1, 'base', '{}', 1, 100, 200),
             ('01HV3DONEB0000000000000000', 'completed', 1, 'base', '{}', 1, 110, 210),
             ('01HV3WAIT00000000000000000', 'pending', 1, 'tiny', '{}', 1, 120, 120);
  )sql");
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(Version(), sqlite::LatestSchemaVersion());
  auto counts = (*store)->Count();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[JobState::kCompleted], 2);
  EXPECT_EQ((*counts)[JobState::kPending], 1);
  // The triggers keep the counts from here on: a claim moves one job out of pending, a
  // deletion by retention takes one completed job away.
  ASSERT_TRUE((*store)->Claim({"w", 1000, std::string("01HV3WAIT00000000000000000"), {}}).ok());
  auto none = (*store)->DeleteFinishedBefore(105, 10);  // none finished before 105
  ASSERT_TRUE(none.ok());
  ASSERT_EQ(*none, 0);
  RawSql("UPDATE jobs SET finished_ms = 150 WHERE id = '01HV3DONEA0000000000000000'");
  auto one = (*store)->DeleteFinishedBefore(1000, 10);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(*one, 1);
  counts = (*store)->Count();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[JobState::kCompleted], 1);
  EXPECT_EQ((*counts)[JobState::kPending], 0);
  EXPECT_EQ((*counts)[JobState::kLoading], 1);
}

TEST_F(StoreMigrationTest, JobsOfAVersion2DatabaseTakeTheNodeOfTheirLastAttempt) {
  {
    auto db = sqlite::Db::Open(Path(), 1000);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(sqlite::Migrate(**db, 2).ok());
  }
  // As steno with schema v2 wrote them: a job run twice (lost on old-a, completed on old-b) and
  // a job never claimed.
  RawSql(R"sql(
    INSERT INTO jobs (id, state, priority, model, params, attempt, created_ms, updated_ms,
                      started_ms, finished_ms)
      VALUES ('01HV2TWICE0000000000000000', 'completed', 1, 'base', '{}', 2, 100, 400, 300, 400);
    INSERT INTO attempts (job_id, attempt, owner, started_ms, ended_ms, outcome, error_code)
      VALUES ('01HV2TWICE0000000000000000', 1, 'old-a', 150, 250, 'lease_expired', 'lease_expired'),
             ('01HV2TWICE0000000000000000', 2, 'old-b', 300, 400, 'completed', NULL);
    INSERT INTO jobs (id, state, priority, model, params, attempt, created_ms, updated_ms)
      VALUES ('01HV2NEVER0000000000000000', 'pending', 1, 'base', '{}', 1, 500, 500);
  )sql");

  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(Version(), sqlite::LatestSchemaVersion());
  auto twice = (*store)->GetWithAttempts("01HV2TWICE0000000000000000");
  ASSERT_TRUE(twice.ok()) << twice.error().message;
  EXPECT_EQ(twice->job.node, "old-b");
  ASSERT_EQ(twice->attempts.size(), 2u);
  EXPECT_EQ(twice->attempts[0].owner, "old-a");
  EXPECT_EQ(twice->attempts[1].owner, "old-b");
  EXPECT_TRUE((*store)->Get("01HV2NEVER0000000000000000")->node.empty());
  // A claim under the new schema names its node.
  auto claimed = (*store)->Claim({"new-c", 1000, std::string("01HV2NEVER0000000000000000"), {}});
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  EXPECT_EQ((*store)->Get("01HV2NEVER0000000000000000")->node, "new-c");
}

TEST_F(StoreMigrationTest, NewerSchemaIsRefused) {
  { ASSERT_TRUE(Open().ok()); }
  RawSql("INSERT INTO schema_version (version, description, applied_ms) VALUES (99, 'future', 0)");
  auto store = Open();
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(store.error().code, kErrSchemaTooNew);
  EXPECT_NE(store.error().message.find("99"), std::string::npos) << store.error().message;
}

TEST_F(StoreMigrationTest, SomeoneElsesDatabaseIsRefusedUntouched) {
  RawSql("CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT)");
  auto store = Open();
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, kErrForeignSchema);
  EXPECT_EQ(Version(), -1) << "still foreign: nothing was created in it";
}

TEST_F(StoreMigrationTest, CorruptFileIsAClearIntegrityError) {
  std::ofstream out(Path(), std::ios::binary);
  std::string junk(8192, '\0');
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919) % 251);
  out << junk;
  out.close();
  auto store = Open();
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(store.error().code, kErrStoreCorrupt);
  EXPECT_NE(store.error().message.find(Path()), std::string::npos) << store.error().message;
}

TEST_F(StoreMigrationTest, DamagedPagesAreReportedAsCorruption) {
  {
    auto store = Open();
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 200; ++i) {
      NewJob job{"base", Priority::kNormal, {}, "", "k" + std::to_string(i)};
      job.params.prompt = std::string(200, 'p');
      ASSERT_TRUE((*store)->Insert(job).ok());
    }
  }
  RawSql("PRAGMA wal_checkpoint(TRUNCATE)");
  // Overwrite the middle of the file (past the header page) with garbage.
  {
    std::fstream f(Path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 3);
    std::string junk(4096 * 4, '\xA5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto store = Open();
  if (!store.ok()) {
    EXPECT_EQ(store.error().kind, ErrorKind::kIntegrity) << store.error().message;
    return;
  }
  JobFilter all;
  all.limit = 1000;
  auto page = (*store)->List(all);
  ASSERT_FALSE(page.ok()) << "reading damaged pages succeeded";
  EXPECT_EQ(page.error().code, kErrStoreCorrupt) << page.error().message;
}

}  // namespace
}  // namespace steno::store
