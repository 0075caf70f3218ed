// Job store throughput: 10,000 insert -> claim -> complete cycles against SQLite in a temp dir,
// reporting cycles/s, store operations/s and p50/p99 latency per cycle and per operation.
//
//   store_bench                                  (both durability settings)
//   store_bench --benchmark_filter=Durable       (durable only, the default in steno)
//
// BM_StoreGetUnderWrites/<readers>/<writer>: the latency of Get (what GET /v1/jobs/{id} costs in
// the store) from <readers> threads while one thread runs durable insert -> claim -> complete
// cycles (<writer> = 1) or nothing (0, the baseline). Each commit is fsynced, so a Get that has to
// wait for the writer shows it in get_p99_us.
//
// "durable" is what steno runs with (every commit fsynced: survives power loss); "crash_safe"
// is synchronous=NORMAL in WAL mode (survives a process crash, may lose the last commits on
// power loss), shown for comparison.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite_job_store.h"

namespace {
using namespace steno;
using namespace steno::store;
using Clock = std::chrono::steady_clock;

constexpr int kCycles = 10'000;

std::string TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/steno-store-bench.XXXXXX";
  if (!mkdtemp(tmpl.data())) std::abort();
  return tmpl;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// A result of realistic size: 20 segments of text with timings (~2.5 kB of JSON).
std::string SampleResult() {
  std::string r = R"({"language":"en","duration":30.0,"segments":[)";
  for (int i = 0; i < 20; ++i) {
    if (i) r += ",";
    r += R"({"id":)" + std::to_string(i) + R"(,"start":)" + std::to_string(i * 1.5) + R"(,"end":)" +
         std::to_string(i * 1.5 + 1.5) +
         R"(,"text":" the quick brown fox jumps over the lazy dog, again and again"})";
  }
  return r + "]}";
}

void Cycles(benchmark::State& state, bool durable) {
  std::string dir = TempDir();
  SqliteOptions options;
  options.path = DefaultDbPath(dir);
  options.durable = durable;
  auto store = SqliteJobStore::Open(options);
  if (!store.ok()) {
    state.SkipWithError(store.error().message.c_str());
    return;
  }
  const std::string result = SampleResult();
  const std::string digest(64, 'a');
  std::vector<double> cycle_us, insert_us, claim_us, complete_us;
  for (auto& v : {&cycle_us, &insert_us, &claim_us, &complete_us}) v->reserve(kCycles);
  auto us = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::micro>(b - a).count();
  };
  int64_t n = 0;
  for (auto _ : state) {
    NewJob job;
    job.model = "base.en";
    job.blob_digest = digest;
    job.idempotency_key = "bench-" + std::to_string(n++);
    auto t0 = Clock::now();
    auto inserted = (*store)->Insert(job);
    auto t1 = Clock::now();
    auto claimed = (*store)->Claim({"bench", 60'000, std::nullopt, {}});
    auto t2 = Clock::now();
    if (!inserted.ok() || !claimed.ok() || !claimed->has_value()) {
      state.SkipWithError("insert or claim failed");
      break;
    }
    auto done = (*store)->Complete((*claimed)->id, "bench", result);
    auto t3 = Clock::now();
    if (!done.ok()) {
      state.SkipWithError(done.error().message.c_str());
      break;
    }
    insert_us.push_back(us(t0, t1));
    claim_us.push_back(us(t1, t2));
    complete_us.push_back(us(t2, t3));
    cycle_us.push_back(us(t0, t3));
  }
  state.counters["cycles_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["ops_per_s"] = benchmark::Counter(3.0 * static_cast<double>(state.iterations()),
                                                   benchmark::Counter::kIsRate);
  state.counters["cycle_p50_us"] = Percentile(cycle_us, 0.50);
  state.counters["cycle_p99_us"] = Percentile(cycle_us, 0.99);
  state.counters["insert_p99_us"] = Percentile(insert_us, 0.99);
  state.counters["claim_p99_us"] = Percentile(claim_us, 0.99);
  state.counters["complete_p99_us"] = Percentile(complete_us, 0.99);
  store->reset();
  std::filesystem::remove_all(dir);
}

void BM_StoreCycle_Durable(benchmark::State& state) {
  Cycles(state, true);
}
void BM_StoreCycle_CrashSafe(benchmark::State& state) {
  Cycles(state, false);
}

BENCHMARK(BM_StoreCycle_Durable)->Iterations(kCycles)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_StoreCycle_CrashSafe)
    ->Iterations(kCycles)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Concurrent submissions, as 200 API clients make them: <threads> threads each inserting
// durable jobs for 2 s, with group commit (one WAL fsync covers every insert committed meanwhile:
// the default) or without (<group> = 0: each commit fsyncs itself). inserts_per_s and
// insert_p99_us of the two, side by side in one run, are the gain.
void BM_StoreConcurrentInserts(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  std::string dir = TempDir();
  SqliteOptions options;
  options.path = DefaultDbPath(dir);
  options.group_commit = state.range(1) != 0;
  auto store = SqliteJobStore::Open(options);
  if (!store.ok()) {
    state.SkipWithError(store.error().message.c_str());
    return;
  }
  std::vector<std::vector<double>> per_thread(threads);
  std::atomic<bool> failed{false};
  for (auto _ : state) {
    const auto end = Clock::now() + std::chrono::seconds(2);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        NewJob job;
        job.model = "base.en";
        job.blob_digest = std::string(64, 'a');
        while (Clock::now() < end) {
          const auto t0 = Clock::now();
          if (!(*store)->Insert(job).ok()) failed = true;
          per_thread[t].push_back(
              std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
      });
    }
    for (auto& w : workers) w.join();
  }
  if (failed) state.SkipWithError("an insert failed");
  std::vector<double> all;
  for (const auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  state.counters["inserts_per_s"] =
      benchmark::Counter(static_cast<double>(all.size()), benchmark::Counter::kIsRate);
  state.counters["insert_p50_us"] = Percentile(all, 0.50);
  state.counters["insert_p99_us"] = Percentile(all, 0.99);
  state.counters["fsyncs_per_insert"] =
      options.group_commit && !all.empty()
          ? static_cast<double>((*store)->flushes()) / static_cast<double>(all.size())
          : 1.0;
  store->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_StoreConcurrentInserts)
    ->ArgsProduct({{1, 16, 64}, {0, 1}})
    ->ArgNames({"threads", "group"})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Claiming from a deep queue: 10,000 jobs pending, claimed one by one. The cost of a claim must
// not grow with the queue (the jobs_queue index serves the ORDER BY).
void BM_StoreClaimDeepQueue(benchmark::State& state) {
  std::string dir = TempDir();
  SqliteOptions options;
  options.path = DefaultDbPath(dir);
  options.durable = false;
  auto store = SqliteJobStore::Open(options);
  if (!store.ok()) {
    state.SkipWithError(store.error().message.c_str());
    return;
  }
  for (int i = 0; i < kCycles; ++i) {
    NewJob job;
    job.model = i % 2 ? "base.en" : "small";
    job.priority = static_cast<Priority>(i % 3);
    (void)(*store)->Insert(job);
  }
  std::vector<double> claim_us;
  claim_us.reserve(kCycles);
  for (auto _ : state) {
    auto t0 = Clock::now();
    auto claimed = (*store)->Claim({"bench", 60'000, std::nullopt, {}});
    claim_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!claimed.ok() || !claimed->has_value()) {
      state.SkipWithError("claim failed");
      break;
    }
  }
  state.counters["claims_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["claim_p99_us"] = Percentile(claim_us, 0.99);
  store->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_StoreClaimDeepQueue)
    ->Iterations(kCycles)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Readers call Get on random ids of 1,000 stored jobs for kGetWindow while the writer (if any)
// completes durable cycles; every Get is timed. Like HTTP clients, a reader pauses between calls
// (0-1 ms at random), so Gets arrive at any moment of the writer's cycle rather than in a tight
// loop that keeps the writer itself from ever getting a turn.
constexpr auto kGetWindow = std::chrono::seconds(3);

void BM_StoreGetUnderWrites(benchmark::State& state) {
  const int readers = static_cast<int>(state.range(0));
  const bool writing = state.range(1) != 0;
  std::string dir = TempDir();
  SqliteOptions options;
  options.path = DefaultDbPath(dir);
  options.durable = true;
  auto store = SqliteJobStore::Open(options);
  if (!store.ok()) {
    state.SkipWithError(store.error().message.c_str());
    return;
  }
  std::vector<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    NewJob job;
    job.model = "base.en";
    auto inserted = (*store)->Insert(job);
    if (!inserted.ok()) {
      state.SkipWithError(inserted.error().message.c_str());
      return;
    }
    ids.push_back(inserted->job.id);
  }
  const std::string result = SampleResult();
  std::vector<double> get_us;
  int64_t writes = 0;
  bool failed = false;
  for (auto _ : state) {
    std::atomic<bool> stop{false};
    std::atomic<bool> error{false};
    std::thread writer;
    if (writing) {
      writer = std::thread([&] {
        while (!stop.load()) {
          NewJob job;
          job.model = "small";
          auto inserted = (*store)->Insert(job);
          auto claimed = (*store)->Claim({"bench", 60'000, std::nullopt, {"small"}});
          if (!inserted.ok() || !claimed.ok() || !claimed->has_value() ||
              !(*store)->Complete((*claimed)->id, "bench", result).ok()) {
            error = true;
            return;
          }
          writes += 3;
        }
      });
    }
    std::vector<std::vector<double>> per_reader(static_cast<size_t>(readers));
    std::vector<std::thread> threads;
    auto deadline = Clock::now() + kGetWindow;
    for (int r = 0; r < readers; ++r) {
      threads.emplace_back([&, r] {
        std::mt19937 rng(static_cast<unsigned>(r));
        std::uniform_int_distribution<size_t> pick(0, ids.size() - 1);
        std::uniform_int_distribution<int> pause_us(0, 1000);
        auto& out = per_reader[static_cast<size_t>(r)];
        while (Clock::now() < deadline) {
          auto t0 = Clock::now();
          auto got = (*store)->Get(ids[pick(rng)]);
          out.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
          if (!got.ok()) {
            error = true;
            return;
          }
          std::this_thread::sleep_for(std::chrono::microseconds(pause_us(rng)));
        }
      });
    }
    for (auto& t : threads) t.join();
    stop = true;
    if (writer.joinable()) writer.join();
    for (auto& v : per_reader) get_us.insert(get_us.end(), v.begin(), v.end());
    failed = error.load();
  }
  if (failed) state.SkipWithError("a store call failed");
  double seconds = std::chrono::duration<double>(kGetWindow).count();
  state.counters["gets_per_s"] = static_cast<double>(get_us.size()) / seconds;
  state.counters["writes_per_s"] = static_cast<double>(writes) / seconds;
  state.counters["get_p50_us"] = Percentile(get_us, 0.50);
  state.counters["get_p99_us"] = Percentile(get_us, 0.99);
  state.counters["get_p999_us"] = Percentile(get_us, 0.999);
  state.counters["get_max_us"] = get_us.empty() ? 0 : get_us.back();
  store->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_StoreGetUnderWrites)
    ->ArgNames({"readers", "writer"})
    ->Args({4, 0})
    ->Args({1, 1})
    ->Args({4, 1})
    ->Args({16, 1})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
