// Listing and counting as the store grows (issue 23's target: GET /v1/jobs, any filter, p99
// <= 20 ms with 100,000 jobs in the store). One SQLite store is filled once with 100,000 jobs as
// a busy server leaves them: 90 % completed, 5 % failed, 4 % pending, 1 % cancelled, over three
// models of which one is rare (1 %). Each benchmark then runs one query shape the API issues
// (first page of 100, newest first unless said) and reports its p50/p99.
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

#include "store/sqlite_job_store.h"

using namespace steno;
using namespace steno::store;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kJobs = 100'000;

struct Filled {
  std::string dir;
  std::unique_ptr<SqliteJobStore> store;
  std::string error;
};

std::string ModelOf(int i) {
  if (i % 100 == 0) return "rare";
  return i % 2 ? "base.en" : "small";
}

// Built on first use and kept for every benchmark of the run.
Filled& Store() {
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

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

template <typename Query>
void Run(benchmark::State& state, Query query) {
  Filled& f = Store();
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

bool List(SqliteJobStore& store, JobFilter filter) {
  auto page = store.List(filter);
  return page.ok() && !page->jobs.empty();
}

void BM_ListAll(benchmark::State& state) {
  Run(state, [](SqliteJobStore& s) { return List(s, JobFilter{}); });
}
void BM_ListPending(benchmark::State& state) {
  Run(state, [](SqliteJobStore& s) {
    JobFilter f;
    f.states = {JobState::kPending};
    return List(s, f);
  });
}
void BM_ListFailedOrCancelled(benchmark::State& state) {
  Run(state, [](SqliteJobStore& s) {
    JobFilter f;
    f.states = {JobState::kFailed, JobState::kCancelled};
    return List(s, f);
  });
}
void BM_ListRareModel(benchmark::State& state) {
  Run(state, [](SqliteJobStore& s) {
    JobFilter f;
    f.model = "rare";
    return List(s, f);
  });
}
void BM_ListRareModelPending(benchmark::State& state) {
  Run(state, [](SqliteJobStore& s) {
    JobFilter f;
    f.model = "rare";
    f.states = {JobState::kPending};
    return List(s, f);
  });
}
void BM_ListPendingQueueOrder(benchmark::State& state) {
  Run(state, [](SqliteJobStore& s) {
    JobFilter f;
    f.states = {JobState::kPending};
    f.order = ListOrder::kQueueOrder;
    return List(s, f);
  });
}
void BM_Count(benchmark::State& state) {
  Run(state, [](SqliteJobStore& s) { return s.Count().ok(); });
}

BENCHMARK(BM_ListAll)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ListPending)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ListFailedOrCancelled)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ListRareModel)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ListRareModelPending)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ListPendingQueueOrder)->Iterations(200)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Count)->Iterations(200)->Unit(benchmark::kMillisecond);

}  // namespace
