// Scheduler costs and simulated throughput, on a VirtualClock with simulated GPUs.
//
//   sched_bench                                     (everything)
//   sched_bench --benchmark_filter=Decision         (one scheduling decision, 10,000 queued)
//
// BM_SchedulingDecision: one event through the scheduler thread (a backoff ending, which makes
// it run a full pass) while 10,000 jobs are queued and 50 runners are busy: every queued job is
// tried against placement and must wait, the worst case of a pass. Includes the snapshot the
// worker publishes after every event. Target: < 50 µs.
// BM_PassOnly: the same pass driven on SchedulerState directly, without the snapshot the worker
// thread copies after every event (the snapshot holds every job: O(jobs) per event).
// BM_PlaceOneJob: the pure placement decision for one job against those 50 runners.
// BM_SimulatedThroughput: 2,000 jobs over 5 models on 3 cards (24, 24, 12 GiB); counters give
// jobs/s of virtual time and mean device memory utilisation over the run.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sched/scheduler.h"
#include "sched/scheduler_state.h"
#include "sched/simulated_backend.h"

namespace {
using namespace steno;
using namespace steno::sched;

constexpr int64_t kGiB = 1LL << 30;
constexpr int64_t kMiB = 1LL << 20;

struct Harness {
  Harness(std::vector<SimCard> cards, SchedulerConfig config, std::map<std::string, ModelSpec> m,
          std::map<std::string, int64_t> durations)
      : backend(clock, cards), specs(std::move(m)), job_ms(std::move(durations)) {
    scheduler =
        std::make_unique<Scheduler>(config, clock, backend, backend.Devices(),
                                    [this](const std::string& name) -> Result<ModelSpec> {
                                      auto it = specs.find(name);
                                      if (it == specs.end())
                                        return Error(ErrorKind::kNotFound, "model_not_found", name);
                                      return it->second;
                                    });
    backend.SetSink(scheduler->Sink());
    backend.SetJobPlan([this](const JobRunSpec& job, int) {
      SimJobPlan p;
      p.duration_ms = job_ms.at(job.job_id.substr(0, job.job_id.find('/')));
      return p;
    });
  }
  ~Harness() { scheduler.reset(); }

  bool Submit(const std::string& id, const std::string& model, Priority priority) {
    SubmitRequest r;
    r.job.id = id;
    r.job.model = model;
    r.job.priority = priority;
    r.audio_path = "/audio/" + id + ".wav";
    return scheduler->Submit(std::move(r)).ok();
  }

  VirtualClock clock;
  SimulatedBackend backend;
  std::map<std::string, ModelSpec> specs;
  std::map<std::string, int64_t> job_ms;
  std::unique_ptr<Scheduler> scheduler;
};

// 2 cards of 29 GiB: allocatable (29 − 0.5) × 0.9 = 25.65 GiB each, room for exactly 25 runners
// of 1 GiB (0.75 weights + 0.25 stream) per card: 50 runners, then every job waits.
std::unique_ptr<Harness> FullHarness(int queued) {
  SchedulerConfig config;
  config.sample_interval_ms = 0;
  config.queue.max_length = static_cast<size_t>(queued) + 100;
  config.placement.max_streams_per_runner = 1;
  std::map<std::string, ModelSpec> specs;
  std::map<std::string, int64_t> durations;
  for (int m = 0; m < 10; ++m) {
    const std::string name = "m" + std::to_string(m);
    specs[name] = ModelSpec{"/m/" + name, MemoryEstimate{768 * kMiB, 256 * kMiB, false}};
    durations[name] = 1'000'000'000;  // busy for the whole benchmark
  }
  auto h = std::make_unique<Harness>(
      std::vector<SimCard>{{"cuda:0", 29 * kGiB}, {"cuda:1", 29 * kGiB}}, config, specs, durations);
  for (int i = 0; i < 50 + queued; ++i) {
    const std::string model = "m" + std::to_string(i % 10);
    const Priority p = static_cast<Priority>(i % 3);
    if (!h->Submit(model + "/" + std::to_string(i), model, p)) return nullptr;
  }
  AdvanceTo(*h->scheduler, h->clock, 5'000);  // every runner loaded and busy
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
    ->Iterations(200)
    ->Unit(benchmark::kMicrosecond);

void BM_PassOnly(benchmark::State& state) {
  const int queued = static_cast<int>(state.range(0));
  SchedulerConfig config;
  config.sample_interval_ms = 0;
  config.queue.max_length = static_cast<size_t>(queued) + 100;
  config.placement.max_streams_per_runner = 1;
  std::map<std::string, ModelSpec> specs;
  for (int m = 0; m < 10; ++m) {
    const std::string name = "m" + std::to_string(m);
    specs[name] = ModelSpec{"/m/" + name, MemoryEstimate{768 * kMiB, 256 * kMiB, false}};
  }
  VirtualClock clock;
  SimulatedBackend backend(clock, {{"cuda:0", 29 * kGiB}, {"cuda:1", 29 * kGiB}});
  backend.SetJobPlan([](const JobRunSpec&, int) { return SimJobPlan{1'000'000'000, "", false}; });
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
  req.weights_bytes = 768 * kMiB;
  req.stream_bytes = 256 * kMiB;
  PlacementPolicy policy;
  policy.max_streams_per_runner = 1;
  for (auto _ : state) {
    PlacementDecision d = Place(req, devices, runners, policy, snap.now_ms);
    benchmark::DoNotOptimize(d);
  }
  state.counters["runners"] = static_cast<double>(runners.size());
}
BENCHMARK(BM_PlaceOneJob)->Unit(benchmark::kMicrosecond);

// Deterministic on every standard library.
uint64_t SplitMix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void BM_SimulatedThroughput(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  struct M {
    const char* name;
    int64_t weights, stream, ms;
  };
  const std::vector<M> models = {{"tiny", 256 * kMiB, 256 * kMiB, 2'000},
                                 {"base", 512 * kMiB, 512 * kMiB, 4'000},
                                 {"small", 1536 * kMiB, 768 * kMiB, 8'000},
                                 {"medium", 4 * kGiB, 1536 * kMiB, 15'000},
                                 {"large", 8 * kGiB, 3 * kGiB, 25'000}};
  const std::vector<SimCard> cards = {
      {"cuda:0", 24 * kGiB}, {"cuda:1", 24 * kGiB}, {"cuda:2", 12 * kGiB}};
  double jobs_per_s = 0, util = 0, peak_util = 0, makespan_s = 0;
  for (auto _ : state) {
    SchedulerConfig config;
    config.sample_interval_ms = 0;
    config.queue.max_length = static_cast<size_t>(n);
    config.finished_jobs_kept = static_cast<size_t>(n);
    std::map<std::string, ModelSpec> specs;
    std::map<std::string, int64_t> durations;
    for (const auto& m : models) {
      specs[m.name] =
          ModelSpec{std::string("/m/") + m.name, MemoryEstimate{m.weights, m.stream, false}};
      durations[m.name] = m.ms;
    }
    Harness h(cards, config, specs, durations);
    // Arrivals 150 ms apart on average (~6× what the cards serve); utilisation sampled every
    // virtual second.
    uint64_t seed = 42;
    int64_t t = 0, next_sample = 0;
    std::vector<std::vector<double>> samples(cards.size());
    auto sample_until = [&](int64_t until) {
      for (; next_sample <= until; next_sample += 1000) {
        AdvanceTo(*h.scheduler, h.clock, next_sample);
        for (size_t c = 0; c < cards.size(); ++c) {
          samples[c].push_back(static_cast<double>(h.backend.used(cards[c].name)) /
                               static_cast<double>(cards[c].total_bytes));
        }
      }
      AdvanceTo(*h.scheduler, h.clock, until);
    };
    for (int i = 0; i < n; ++i) {
      const M& m = models[SplitMix(seed) % models.size()];
      const auto p = static_cast<Priority>(SplitMix(seed) % 3);
      sample_until(t);
      h.Submit(std::string(m.name) + "/" + std::to_string(i), m.name, p);
      t += static_cast<int64_t>(SplitMix(seed) % 301);
    }
    sample_until(t + 2 * 3600 * 1000LL);
    const SchedulerSnapshot snap = h.scheduler->Snapshot();
    int64_t first = INT64_MAX, last = 0;
    int completed = 0;
    for (const auto& j : snap.jobs) {
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
BENCHMARK(BM_SimulatedThroughput)->Arg(2'000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
