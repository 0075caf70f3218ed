// Listing and counting as the store grows (issue 23's target: GET /v1/jobs, any filter, p99
// <= 20 ms with 100,000 jobs in the store), on SQLite and on PostgreSQL. Each store is filled
// once with 100,000 jobs as a busy server leaves them: 90 % completed, 5 % failed, 4 % pending,
// 1 % cancelled, over three models of which one is rare (1 %); a few are held by a node. Each
// benchmark then runs one query shape the API issues (first page of 100, newest first unless
// said) and reports its p50/p99.
//
// SQLite is filled through the store's own calls. PostgreSQL (a private server started with the
// tests' PgServer, fsync off: the figures are for reads) is filled with one INSERT ... SELECT
// copying a job the store wrote (so the rows are what the store writes), then counted once
// through the store, which must agree with the fill.
//
//   store_list_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "store/pg_connection.h"
#include "store/pg_job_store.h"
#include "store/sqlite_job_store.h"
#include "support/pg_server.h"

using namespace steno;
using namespace steno::store;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kJobs = 100'000;

struct Filled {
  std::string dir;
  std::string url;  // PostgreSQL: the database's
  std::unique_ptr<JobStore> store;
  std::string error;
};

std::string ModelOf(int i) {
  if (i % 100 == 0) return "rare";
  return i % 2 ? "base.en" : "small";
}

// Built on first use and kept for every benchmark of the run.
Filled& SqliteStore() {
  static Filled* filled = [] {
    auto* f = new Filled;
    f->dir = (std::filesystem::temp_directory_path() /
              ("steno-list-bench-" + std::to_string(::getpid())))
                 .string();
    std::filesystem::create_directories(f->dir);
    SqliteOptions options;
    options.path = DefaultDbPath(f->dir);
    options.durable = false;  // filling only; the queries read
    auto store = SqliteJobStore::Open(options);
    if (!store.ok()) {
      f->error = store.error().message;
      return f;
    }
    f->store = std::move(store).value();
    const std::string digest(64, 'a');
    for (int i = 0; i < kJobs; ++i) {
      NewJob job;
      job.model = ModelOf(i);
      job.blob_digest = digest;
      auto inserted = f->store->Insert(job);
      if (!inserted.ok()) {
        f->error = inserted.error().message;
        return f;
      }
      const int kind = i % 100;
      if (kind < 4) continue;  // pending
      const std::string& id = inserted->job.id;
      if (kind == 4) {
        (void)f->store->Cancel(id);
        continue;
      }
      ClaimRequest claim{"bench", 60'000, id, {}};
      auto claimed = f->store->Claim(claim);
      if (!claimed.ok() || !claimed->has_value()) {
        f->error = "claim failed while filling";
        return f;
      }
      const std::string& cid = (*claimed)->id;
      if (kind < 10) {
        (void)f->store->Fail(cid, "bench", Error(ErrorKind::kInternal, "x", "failed"));
      } else {
        (void)f->store->Complete(cid, "bench", "{\"text\":\"done\"}");
      }
    }
    return f;
  }();
  return *filled;
}

// The same mix as SqliteStore, generated in SQL: row i's state and model follow i % 100 as
// there, ids are 26 digits in creation order (valid job ids), every 1000th pending job is held
// by node "bench" (loading).
const char kPgFill[] = R"sql(
INSERT INTO jobs (id, state, priority, model, params, blob_digest, attempt, created_ms,
                  updated_ms, started_ms, finished_ms, not_before_ms, lease_owner,
                  lease_expires_ms, node)
SELECT lpad(g::text, 26, '0'),
       CASE WHEN g % 1000 = 1 THEN 'loading' WHEN g % 100 < 4 THEN 'pending'
            WHEN g % 100 = 4 THEN 'cancelled' WHEN g % 100 < 10 THEN 'failed'
            ELSE 'completed' END,
       1, CASE WHEN g % 100 = 0 THEN 'rare' WHEN g % 2 = 1 THEN 'base.en' ELSE 'small' END,
       t.params, t.blob_digest, 1, 1700000000000 + g, 1700000000000 + g,
       CASE WHEN g % 100 >= 5 OR g % 1000 = 1 THEN 1700000000000 + g END,
       CASE WHEN g % 100 >= 5 THEN 1700000000500 + g END, 0,
       CASE WHEN g % 1000 = 1 THEN 'bench' END,
       CASE WHEN g % 1000 = 1 THEN 1900000000000 END,
       CASE WHEN g % 100 >= 5 OR g % 1000 = 1 THEN 'bench' END
FROM generate_series(0, 99999) g, (SELECT params, blob_digest FROM jobs LIMIT 1) t;
)sql";

Filled& PgStore() {
  static Filled* filled = [] {
    auto* f = new Filled;
    static test::PgServer server;
    if (!server.ok()) {
      f->error = "no PostgreSQL server: " + server.error();
      return f;
    }
    const std::string url = server.CreateDatabase();
    PgOptions options;
    options.url = url;
    auto store = PgJobStore::Open(options);
    if (!store.ok()) {
      f->error = store.error().message;
      return f;
    }
    NewJob job;  // the template row the fill copies
    job.model = "small";
    job.blob_digest = std::string(64, 'a');
    auto tmpl = (*store)->Insert(job);
    if (!tmpl.ok()) {
      f->error = tmpl.error().message;
      return f;
    }
    const std::string db = url.substr(url.rfind('/') + 1);
    std::string e = server.Exec(db, kPgFill);
    if (e.empty()) e = server.Exec(db, "DELETE FROM jobs WHERE id = '" + tmpl->job.id + "'");
    if (e.empty()) e = server.Exec(db, "VACUUM ANALYZE jobs");
    if (!e.empty()) {
      f->error = e;
      return f;
    }
    auto counts = (*store)->Count();
    int64_t total = 0;
    if (counts.ok()) {
      for (int64_t n : counts->by_state) total += n;
    }
    if (total != kJobs) {
      f->error = "the store counts " + std::to_string(total) + " jobs after filling " +
                 std::to_string(kJobs);
      return f;
    }
    f->url = url;
    f->store = std::move(store).value();
    return f;
  }();
  return *filled;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

template <typename Query>
void Run(benchmark::State& state, Filled& f, Query query) {
  if (!f.error.empty()) {
    state.SkipWithError(f.error.c_str());
    return;
  }
  std::vector<double> ms;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    if (!query(*f.store)) {
      state.SkipWithError("query failed");
      return;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  state.counters["p50_ms"] = Percentile(ms, 0.50);
  state.counters["p99_ms"] = Percentile(ms, 0.99);
}

bool List(JobStore& store, JobFilter filter) {
  auto page = store.List(filter);
  return page.ok() && !page->jobs.empty();
}

void BM_ListAll(benchmark::State& state, Filled& (*store)()) {
  Run(state, store(), [](JobStore& s) { return List(s, JobFilter{}); });
}
void BM_ListPending(benchmark::State& state, Filled& (*store)()) {
  Run(state, store(), [](JobStore& s) {
    JobFilter f;
    f.states = {JobState::kPending};
    return List(s, f);
  });
}
void BM_ListFailedOrCancelled(benchmark::State& state, Filled& (*store)()) {
  Run(state, store(), [](JobStore& s) {
    JobFilter f;
    f.states = {JobState::kFailed, JobState::kCancelled};
    return List(s, f);
  });
}
void BM_ListRareModel(benchmark::State& state, Filled& (*store)()) {
  Run(state, store(), [](JobStore& s) {
    JobFilter f;
    f.model = "rare";
    return List(s, f);
  });
}
void BM_ListRareModelPending(benchmark::State& state, Filled& (*store)()) {
  Run(state, store(), [](JobStore& s) {
    JobFilter f;
    f.model = "rare";
    f.states = {JobState::kPending};
    return List(s, f);
  });
}
void BM_ListPendingQueueOrder(benchmark::State& state, Filled& (*store)()) {
  Run(state, store(), [](JobStore& s) {
    JobFilter f;
    f.states = {JobState::kPending};
    f.order = ListOrder::kQueueOrder;
    return List(s, f);
  });
}
void BM_ListHeldByNode(benchmark::State& state, Filled& (*store)()) {
  Run(state, store(), [](JobStore& s) {
    JobFilter f;  // what a shutdown lists (its page may be empty: SQLite's fill holds none)
    f.states = {JobState::kLoading, JobState::kProcessing};
    f.lease_owner = "bench";
    return s.List(f).ok();
  });
}
void BM_ListCommonModelFailed(benchmark::State& state, Filled& (*store)()) {
  Run(state, store(), [](JobStore& s) {
    JobFilter f;
    f.model = "base.en";
    f.states = {JobState::kFailed};
    return List(s, f);
  });
}
// What PgJobStore::Count ran before schema v6 (a scan of jobs), for comparison.
void BM_CountByScanningJobs(benchmark::State& state) {
  Filled& f = PgStore();
  auto conn =
      f.error.empty() ? pg::Connection::Open(f.url, 10) : Error(ErrorKind::kInternal, "x", f.error);
  if (!conn.ok()) {
    state.SkipWithError(conn.error().message.c_str());
    return;
  }
  Run(state, f, [&](JobStore&) {
    return (*conn)->Query("SELECT state, count(*) FROM jobs GROUP BY state").ok();
  });
}
void BM_Count(benchmark::State& state, Filled& (*store)()) {
  Run(state, store(), [](JobStore& s) { return s.Count().ok(); });
}

BENCHMARK_CAPTURE(BM_ListAll, sqlite, SqliteStore)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListAll, pg, PgStore)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListPending, sqlite, SqliteStore)
    ->Iterations(200)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListPending, pg, PgStore)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListFailedOrCancelled, sqlite, SqliteStore)
    ->Iterations(200)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListFailedOrCancelled, pg, PgStore)
    ->Iterations(200)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListRareModel, sqlite, SqliteStore)
    ->Iterations(200)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListRareModel, pg, PgStore)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListRareModelPending, sqlite, SqliteStore)
    ->Iterations(200)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListRareModelPending, pg, PgStore)
    ->Iterations(200)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListPendingQueueOrder, sqlite, SqliteStore)
    ->Iterations(200)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListPendingQueueOrder, pg, PgStore)
    ->Iterations(200)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListHeldByNode, sqlite, SqliteStore)
    ->Iterations(200)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListHeldByNode, pg, PgStore)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListCommonModelFailed, sqlite, SqliteStore)
    ->Iterations(200)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_ListCommonModelFailed, pg, PgStore)
    ->Iterations(200)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CountByScanningJobs)
    ->Name("BM_CountByScanningJobs/pg")
    ->Iterations(50)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Count, sqlite, SqliteStore)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Count, pg, PgStore)->Iterations(200)->Unit(benchmark::kMillisecond);

}  // namespace
