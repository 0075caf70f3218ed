// Runner lifecycle costs on this machine's CPU: cold load (model file evicted from the page
// cache), warm reload (file cached), the footprint the runner reports, and release time (exit
// request to reaped). Models are generated with random weights at real sizes.
//   build/bench/runner_load_bench [--benchmark_filter=base]
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include <benchmark/benchmark.h>

#include "engine/model_writer.h"
#include "runner/runner_handle.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

fs::path BenchDir() {
  return fs::read_symlink("/proc/self/exe").parent_path() / "bench-data";
}
std::string StenoBin() {
  return (fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "steno").string();
}

std::string ModelFor(const std::string& preset) {
  fs::create_directories(BenchDir());
  const auto path = BenchDir() / ("ggml-" + preset + "-random.bin");
  if (!fs::exists(path)) {
    auto h = steno::engine::ModelPreset(preset);
    if (!h || !steno::engine::WriteRandomModel(path.string(), *h, 1).ok()) std::abort();
  }
  return path.string();
}

void EvictFromPageCache(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  fdatasync(fd);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
}

struct Ready {
  std::mutex mu;
  std::condition_variable cv;
  nlohmann::json message;
  bool exited = false;
};

// One runner start -> ready -> stop, timed.
void LoadCycle(benchmark::State& state, const std::string& preset, bool cold, bool warmup) {
  const std::string model = ModelFor(preset);
  double weights = 0, stream = 0, load_ms = 0, release_ms = 0;
  for (auto _ : state) {
    if (cold) EvictFromPageCache(model);
    Ready r;
    steno::runner::RunnerOptions o;
    o.exe = StenoBin();
    o.model_path = model;
    o.warmup = warmup;
    o.threads = 2;
    const auto start = Clock::now();
    auto h = steno::runner::RunnerHandle::Start(o, [&r](const steno::runner::RunnerEvent& ev) {
      std::lock_guard<std::mutex> lock(r.mu);
      if (ev.kind == steno::runner::RunnerEvent::Kind::kExited)
        r.exited = true;
      else if (ev.message["type"] == "ready" || ev.message["type"] == "error")
        r.message = ev.message;
      r.cv.notify_all();
    });
    if (!h) {
      state.SkipWithError(h.error().message.c_str());
      return;
    }
    {
      std::unique_lock<std::mutex> lock(r.mu);
      r.cv.wait(lock, [&] { return !r.message.is_null() || r.exited; });
    }
    const auto ready_at = Clock::now();
    if (r.message.value("type", "") != "ready") {
      state.SkipWithError("runner did not become ready");
      return;
    }
    state.SetIterationTime(std::chrono::duration<double>(ready_at - start).count());
    weights = r.message["weights_bytes"].get<double>();
    stream = r.message["stream_bytes"].get<double>();
    load_ms = r.message["load_ms"].get<double>();
    const auto stop = Clock::now();
    (*h)->Stop(std::chrono::seconds(10));
    release_ms = std::chrono::duration<double, std::milli>(Clock::now() - stop).count();
  }
  state.counters["weights_MB"] = weights / 1e6;
  state.counters["stream_MB"] = stream / 1e6;
  state.counters["model_load_ms"] = load_ms;
  state.counters["release_ms"] = release_ms;
}

}  // namespace

BENCHMARK_CAPTURE(LoadCycle, base_cold, std::string("base"), true, true)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(LoadCycle, base_warm, std::string("base"), false, true)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);
// On 2 CPU cores a large-v3 warm-up pass takes tens of seconds, so these measure the load alone.
BENCHMARK_CAPTURE(LoadCycle, large_v3_cold_nowarmup, std::string("large-v3"), true, false)
    ->UseManualTime()
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(LoadCycle, large_v3_warm_nowarmup, std::string("large-v3"), false, false)
    ->UseManualTime()
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond);
