// PgJobStore::Count without a scan of jobs (schema v6: count deltas kept by statement triggers,
// folded when they pile up): a store migrated from v5 counts the jobs it already held, and counts
// stay exact while several nodes insert, claim, finish, cancel and delete jobs at once and Count
// folds the deltas meanwhile. The truth each time is a scan of the jobs table.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "store/pg_connection.h"
#include "store/pg_job_store.h"
#include "store/pg_migrations.h"
#include "support/pg_server.h"

namespace steno::store {
namespace {

using test::FreshPgDatabase;

std::unique_ptr<PgJobStore> OpenPg(const std::string& url) {
  PgOptions options;
  options.url = url;
  options.connect_timeout_s = 5;
  auto store = PgJobStore::Open(options);
  EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
  return store.ok() ? std::move(store).value() : nullptr;
}

// state name -> jobs, read by scanning the jobs table over its own connection.
std::map<std::string, int64_t> Scanned(const std::string& url) {
  auto conn = pg::Connection::Open(url, 5);
  EXPECT_TRUE(conn.ok());
  if (!conn.ok()) return {};
  auto rows = (*conn)->Query("SELECT state, count(*) FROM jobs GROUP BY state");
  EXPECT_TRUE(rows.ok()) << rows.error().message;
  std::map<std::string, int64_t> out;
  for (int r = 0; rows.ok() && r < rows->size(); ++r) out[rows->Text(r, 0)] = rows->Int(r, 1);
  return out;
}

std::map<std::string, int64_t> Counted(JobStore& store) {
  auto counts = store.Count();
  EXPECT_TRUE(counts.ok()) << counts.error().message;
  std::map<std::string, int64_t> out;
  for (size_t s = 0; counts.ok() && s < counts->by_state.size(); ++s) {
    if (counts->by_state[s] != 0) out[JobStateName(static_cast<JobState>(s))] = counts->by_state[s];
  }
  return out;
}

int64_t DeltaRows(const std::string& url) {
  auto conn = pg::Connection::Open(url, 5);
  if (!conn.ok()) return -1;
  auto rows = (*conn)->Query("SELECT count(*) FROM job_count_deltas");
  return rows.ok() ? rows->Int(0, 0) : -1;
}

TEST(PgCountsTest, AStoreMigratedFromVersion5CountsTheJobsItHeld) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  {
    auto conn = pg::Connection::Open(url, 5);
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE(pg::Migrate(**conn, 5).ok());
    auto st = (*conn)->Exec(R"sql(
      INSERT INTO jobs (id, state, priority, model, params, attempt, created_ms, updated_ms)
      SELECT lpad(g::text, 26, '0'),
             CASE WHEN g % 3 = 0 THEN 'completed' WHEN g % 3 = 1 THEN 'pending' ELSE 'failed' END,
             1, 'base', '{}', 1, g, g
      FROM generate_series(1, 300) g;
    )sql");
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  auto store = OpenPg(url);
  ASSERT_TRUE(store);
  const std::map<std::string, int64_t> expected = {
      {"completed", 100}, {"pending", 100}, {"failed", 100}};
  EXPECT_EQ(Scanned(url), expected);
  EXPECT_EQ(Counted(*store), expected);
}

TEST(PgCountsTest, CountsStayExactWhileNodesChangeJobsAndCountFoldsTheDeltas) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  constexpr int kNodes = 3, kJobsEach = 120;
  std::vector<std::unique_ptr<PgJobStore>> nodes;
  for (int i = 0; i < kNodes; ++i) {
    nodes.push_back(OpenPg(url));
    ASSERT_TRUE(nodes.back());
  }
  auto counter = OpenPg(url);
  ASSERT_TRUE(counter);
  std::atomic<bool> done{false};
  std::atomic<int> count_failures{0};
  std::thread counting([&] {  // counts (and folds) all along
    while (!done) {
      if (!counter->Count().ok()) ++count_failures;
    }
  });
  std::vector<std::thread> writers;
  for (int n = 0; n < kNodes; ++n) {
    writers.emplace_back([&, n] {
      JobStore& s = *nodes[n];
      const std::string owner = "node-" + std::to_string(n);
      for (int i = 0; i < kJobsEach; ++i) {
        auto in = s.Insert({"base", Priority::kNormal, {}, std::string(64, 'd'), ""});
        ASSERT_TRUE(in.ok()) << in.error().message;
        const std::string& id = in->job.id;
        switch (i % 5) {
          case 0: break;  // stays pending
          case 1: ASSERT_TRUE(s.Cancel(id).ok()); break;
          default: {
            auto claimed = s.Claim({owner, 60'000, id, {}});
            ASSERT_TRUE(claimed.ok() && claimed->has_value());
            if (i % 5 == 2) break;  // stays loading
            if (i % 5 == 3) {
              ASSERT_TRUE(s.Complete(id, owner, "{\"text\":\"x\"}").ok());
            } else {
              ASSERT_TRUE(s.Fail(id, owner, Error(ErrorKind::kInternal, "x", "failed")).ok());
            }
          }
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  counting.join();
  EXPECT_EQ(count_failures.load(), 0);
  const int64_t each = kNodes * kJobsEach / 5;
  const std::map<std::string, int64_t> expected = {{"pending", each},
                                                   {"cancelled", each},
                                                   {"loading", each},
                                                   {"completed", each},
                                                   {"failed", each}};
  EXPECT_EQ(Scanned(url), expected);
  EXPECT_EQ(Counted(*counter), expected);

  // Retention deletes (and folds, whoever counts or not): still exact, and a handful of rows.
  ASSERT_TRUE(nodes[0]->DeleteFinishedBefore(INT64_MAX, 1000).ok());
  const std::map<std::string, int64_t> kept = {{"pending", each}, {"loading", each}};
  EXPECT_EQ(Scanned(url), kept);
  EXPECT_EQ(Counted(*counter), kept);
  EXPECT_LE(DeltaRows(url), 6) << "the deltas were not folded";
}

}  // namespace
}  // namespace steno::store
