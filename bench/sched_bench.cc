// Scheduler costs and simulated throughput, on a VirtualClock with simulated GPUs.
//
//   sched_bench                                     (everything)
//   sched_bench --benchmark_filter=Decision         (one scheduling decision, 10,000 queued)
//
// BM_SchedulingDecision: one event through the scheduler thread (a backoff ending, which makes
// it run a full pass) while 10,000 jobs are queued and 50 runners are busy: every group of
// queued jobs (10 models) is tried against placement and must wait, the worst case of a pass.
// Includes the hand-off to the worker thread and the snapshot it publishes after every event.
// Target: < 50 µs, whatever the number queued (the pass walks groups, not jobs).
// BM_PassOnly: the same pass driven on SchedulerState directly, without the worker thread's
// hand-off and the snapshot it publishes after every event (runners and ledgers, not jobs).
// BM_PlaceOneJob: the pure placement decision for one job against those 50 runners.
// BM_SimulatedThroughput: 2,000 and 10,000 jobs over 5 models on 3 cards (24, 24, 12 GiB);
// counters give jobs/s of virtual time and mean device memory utilisation over the run.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sched/scheduler.h"
#include "sched/scheduler_state.h"
#include "sim/sim_cluster.h"
#include "sim/simulated_backend.h"

namespace {
using namespace steno;
using namespace steno::sched;
using namespace steno::sched::sim;

// 10 models of 1 GiB a runner (468 MiB weights + the 300 MiB CUDA context + one 256 MiB stream),
// busy for the whole benchmark.
std::vector<SimModel> TenModels() {
  std::vector<SimModel> out;
  for (int m = 0; m < 10; ++m) {
    out.push_back({"m" + std::to_string(m), 468 * kMiB, 256 * kMiB, 1'000'000'000});
  }
  return out;
}

SchedulerConfig FullConfig(int queued) {
  SchedulerConfig config;
  config.sample_interval_ms = 0;
  config.queue.max_length = static_cast<size_t>(queued) + 100;
  config.placement.max_streams_per_runner = 1;
  config.cuda_context_bytes = 300 * kMiB;
  return config;
}

// 2 cards of 29 GiB: allocatable (29 − 0.5) × 0.9 = 25.65 GiB each, room for exactly 25 runners
// of 1 GiB per card: 50 runners, then every job waits.
std::unique_ptr<SimCluster> FullHarness(int queued) {
  SimClusterOptions o;
  o.cards = {{"cuda:0", 29 * kGiB}, {"cuda:1", 29 * kGiB}};
  o.models = TenModels();
  o.config = FullConfig(queued);
  auto h = std::make_unique<SimCluster>(o);
  for (int i = 0; i < 50 + queued; ++i) {
    const std::string model = "m" + std::to_string(i % 10);
    const Priority p = static_cast<Priority>(i % 3);
    if (!h->Submit(model + "/" + std::to_string(i), model, p).ok()) return nullptr;
  }
  h->AdvanceTo(5'000);  // every runner loaded and busy
  return h;
}

void BM_SchedulingDecision(benchmark::State& state) {
  const int queued = static_cast<int>(state.range(0));
  auto h = FullHarness(queued);
  if (!h) {
    state.SkipWithError("setup failed");
    return;
  }
  const SchedulerSnapshot snap = h->scheduler->Snapshot();
  if (snap.runners.size() != 50 || snap.queued != static_cast<size_t>(queued)) {
    state.SkipWithError("expected 50 runners and a full queue");
    return;
  }
  for (auto _ : state) {
    h->scheduler->Post(event::RetryDue{});
    h->scheduler->WaitIdle();
  }
  state.counters["queued"] = static_cast<double>(queued);
  state.counters["runners"] = 50;
}
// The work happens on the scheduler's thread: wall time is the cost (CPU time is the caller's).
BENCHMARK(BM_SchedulingDecision)
    ->Arg(1'000)
    ->Arg(10'000)
    ->UseRealTime()
    ->Iterations(2000)
    ->Unit(benchmark::kMicrosecond);

void BM_PassOnly(benchmark::State& state) {
  const int queued = static_cast<int>(state.range(0));
  const SchedulerConfig config = FullConfig(queued);
  std::map<std::string, ModelSpec> specs;
  for (const auto& m : TenModels()) {
    specs[m.name] = ModelSpec{"/m/" + m.name, MemoryEstimate{m.weights, m.stream, false}, "sim"};
  }
  VirtualClock clock;
  SimulatedBackend backend(clock, {{"cuda:0", 29 * kGiB}, {"cuda:1", 29 * kGiB}});
  backend.SetJobPlan([](const JobRunSpec&, int) { return SimJobPlan{1'000'000'000, {}, false}; });
  std::vector<Event> inbox;  // single-threaded: events are handled by the loop below
  SchedulerState st(
      config, clock, backend, backend.Devices(),
      [&specs](const std::string& name) -> Result<ModelSpec> { return specs.at(name); },
      [&inbox](Event e) { inbox.push_back(std::move(e)); });
  backend.SetSink([&inbox](BackendEvent e) { inbox.push_back(event::Runner{std::move(e)}); });
  auto drain = [&] {
    while (!inbox.empty()) {
      std::vector<Event> batch;
      batch.swap(inbox);
      for (auto& e : batch) st.Handle(std::move(e));
    }
  };
  for (int i = 0; i < 50 + queued; ++i) {
    const std::string model = "m" + std::to_string(i % 10);
    SubmitRequest r;
    r.job.id = model + "/" + std::to_string(i);
    r.job.model = model;
    r.job.priority = static_cast<Priority>(i % 3);
    st.Handle(event::Submit{std::move(r), [](Status) {}});
  }
  while (clock.FireNext(5'000)) drain();
  drain();
  const SchedulerSnapshot snap = st.Snapshot();
  if (snap.runners.size() != 50 || snap.queued != static_cast<size_t>(queued)) {
    state.SkipWithError("expected 50 runners and a full queue");
    return;
  }
  for (auto _ : state) st.Handle(event::RetryDue{});
  state.counters["queued"] = static_cast<double>(queued);
}
BENCHMARK(BM_PassOnly)->Arg(1'000)->Arg(10'000)->Unit(benchmark::kMicrosecond);

void BM_PlaceOneJob(benchmark::State& state) {
  auto h = FullHarness(0);
  if (!h) {
    state.SkipWithError("setup failed");
    return;
  }
  const SchedulerSnapshot snap = h->scheduler->Snapshot();
  std::vector<DeviceView> devices;
  for (const auto& d : snap.devices) {
    DeviceView v;
    v.name = d.name;
    v.cpu = d.cpu;
    v.memory = d.memory;
    v.cores = d.cores;
    devices.push_back(v);
  }
  std::vector<RunnerView> runners;
  for (const auto& r : snap.runners) runners.push_back(r.view);
  PlacementRequest req;
  req.model = "m3";
  req.weights_bytes = 468 * kMiB;
  req.stream_bytes = 256 * kMiB;
  req.gpu_overhead_bytes = 300 * kMiB;
  PlacementPolicy policy;
  policy.max_streams_per_runner = 1;
  for (auto _ : state) {
    PlacementDecision d = Place(req, devices, runners, policy, snap.now_ms);
    benchmark::DoNotOptimize(d);
  }
  state.counters["runners"] = static_cast<double>(runners.size());
}
BENCHMARK(BM_PlaceOneJob)->Unit(benchmark::kMicrosecond);

void BM_SimulatedThroughput(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const std::vector<SimCard> cards = ReferenceCards();
  double jobs_per_s = 0, util = 0, peak_util = 0, makespan_s = 0;
  for (auto _ : state) {
    SimClusterOptions o;
    o.config.sample_interval_ms = 0;
    o.config.queue.max_length = static_cast<size_t>(n);
    o.config.finished_jobs_kept = static_cast<size_t>(n);
    SimCluster h(o);
    // Arrivals 150 ms apart on average (~6× what the cards serve); utilisation sampled every
    // virtual second.
    const std::vector<Arrival> arrivals = MakeArrivals(ReferenceModels(), n, 150, 42);
    int64_t next_sample = 0;
    std::vector<std::vector<double>> samples(cards.size());
    auto sample_until = [&](int64_t until) {
      for (; next_sample <= until; next_sample += 1000) {
        h.AdvanceTo(next_sample);
        for (size_t c = 0; c < cards.size(); ++c) {
          samples[c].push_back(static_cast<double>(h.backend.used(cards[c].name)) /
                               static_cast<double>(cards[c].total_bytes));
        }
      }
      h.AdvanceTo(until);
    };
    for (const Arrival& a : arrivals) {
      sample_until(a.at_ms);
      (void)h.Submit(a);
    }
    sample_until(arrivals.back().at_ms + 4 * 3600 * 1000LL);
    int64_t first = INT64_MAX, last = 0;
    int completed = 0;
    for (const auto& j : h.scheduler->Jobs()) {
      if (j.job.state != JobState::kCompleted) continue;
      ++completed;
      first = std::min(first, j.job.started_ms);
      last = std::max(last, j.job.finished_ms);
    }
    if (completed != n) {
      state.SkipWithError("not every job completed");
      return;
    }
    makespan_s = static_cast<double>(last - first) / 1000.0;
    jobs_per_s = completed / makespan_s;
    // Utilisation over the busy period only (the drain horizon above is padding).
    double sum = 0, count = 0;
    peak_util = 0;
    for (const auto& per_card : samples) {
      for (size_t s = static_cast<size_t>(first / 1000);
           s < per_card.size() && static_cast<int64_t>(s) * 1000 <= last; ++s) {
        sum += per_card[s];
        count += 1;
        peak_util = std::max(peak_util, per_card[s]);
      }
    }
    util = count > 0 ? sum / count : 0;
  }
  state.counters["jobs_per_virtual_s"] = jobs_per_s;
  state.counters["virtual_makespan_s"] = makespan_s;
  state.counters["mean_mem_util_pct"] = 100 * util;
  state.counters["peak_mem_util_pct"] = 100 * peak_util;
}
BENCHMARK(BM_SimulatedThroughput)
    ->Arg(2'000)
    ->Arg(10'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
