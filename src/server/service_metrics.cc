#include "server/service_metrics.h"
#include "core/strings.h"
#include "core/wall_clock.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "gpu/owner_process.h"
#include "models/model_variant.h"

namespace steno::server {
namespace {

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 9e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

// Writes one metric family at a time: HELP and TYPE once, then its samples.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void Family(const std::string& name, const char* type, const char* help) {
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void Sample(const std::string& name, const std::string& labels, double value) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += " " + Number(value) + "\n";
  }

 private:
  std::string& out_;
};

std::string Label(const char* key, const std::string& value) {
  return std::string(key) + "=\"" + PrometheusLabelValue(value) + "\"";
}
std::string Labels(std::initializer_list<std::pair<const char*, std::string>> kv) {
  std::string out;
  for (const auto& [k, v] : kv) {
    if (!out.empty()) out += ",";
    out += Label(k, v);
  }
  return out;
}

constexpr JobState kStates[] = {JobState::kPending,   JobState::kLoading, JobState::kProcessing,
                                JobState::kCompleted, JobState::kFailed,  JobState::kCancelled};
constexpr Priority kPriorities[] = {Priority::kHigh, Priority::kNormal, Priority::kLow};

}  // namespace

// ---- Histogram --------------------------------------------------------------------------------

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++counts_[i];  // i == bounds_.size(): only the +Inf bucket
  ++count_;
  sum_ += value;
}

void Histogram::Render(const std::string& name, const std::string& labels, std::string& out) const {
  Writer w(out);
  const std::string prefix = labels.empty() ? "" : labels + ",";
  int64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    w.Sample(name + "_bucket", prefix + "le=\"" + Number(bounds_[i]) + "\"",
             static_cast<double>(cumulative));
  }
  w.Sample(name + "_bucket", prefix + "le=\"+Inf\"", static_cast<double>(count_));
  w.Sample(name + "_sum", labels, sum_);
  w.Sample(name + "_count", labels, static_cast<double>(count_));
}

// ---- ServiceMetrics ---------------------------------------------------------------------------

ServiceMetrics::ServiceMetrics(std::function<bool(int pid)> is_ours)
    : is_ours_(std::move(is_ours)),
      queue_wait_s_({0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}),
      processing_s_({0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}),
      real_time_factor_({0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5}),
      load_s_({0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120}),
      release_s_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30}) {
  if (!is_ours_) {
    is_ours_ = gpu::IsStenoProcess;
  }
}

void ServiceMetrics::OnJob(const sched::JobUpdate& u) {
  const int64_t now = UnixMillis();
  std::lock_guard lock(mu_);
  if (u.kind == sched::JobUpdate::Kind::kSegment) {
    ++segments_;
    return;
  }
  if (u.kind != sched::JobUpdate::Kind::kState) return;
  const std::string& id = u.job.id;
  switch (u.job.state) {
    case JobState::kPending: {  // a retry: the lost run's error says why
      clocks_[id].pending_since_ms = now;
      clocks_[id].processing_since_ms = 0;
      retries_[u.job.error ? ErrorKindName(u.job.error->kind) : "unknown"]++;
      break;
    }
    case JobState::kLoading: {
      auto it = clocks_.find(id);
      // The first claim: the job waited since it was created (the store's wall clock).
      int64_t since = it != clocks_.end() && it->second.pending_since_ms > 0
                          ? it->second.pending_since_ms
                          : u.job.created_ms;
      if (since > 0) queue_wait_s_.Observe(std::max<int64_t>(0, now - since) / 1000.0);
      clocks_[id].pending_since_ms = 0;
      break;
    }
    case JobState::kProcessing: clocks_[id].processing_since_ms = now; break;
    case JobState::kCompleted:
    case JobState::kFailed:
    case JobState::kCancelled: {
      const std::string state = JobStateName(u.job.state);
      const std::string kind =
          u.job.state == JobState::kFailed && u.job.error ? ErrorKindName(u.job.error->kind) : "";
      finished_[{state, kind}]++;
      auto it = clocks_.find(id);
      if (u.job.state == JobState::kCompleted && it != clocks_.end() &&
          it->second.processing_since_ms > 0) {
        const double seconds = std::max<int64_t>(0, now - it->second.processing_since_ms) / 1000.0;
        processing_s_.Observe(seconds);
        double duration = 0;
        if (u.payload.is_object() && u.payload.contains("duration") &&
            u.payload["duration"].is_number()) {
          duration = u.payload["duration"].get<double>();
        }
        if (duration > 0) {
          audio_seconds_ += duration;
          real_time_factor_.Observe(seconds / duration);
        }
      }
      if (it != clocks_.end()) clocks_.erase(it);
      break;
    }
  }
}

void ServiceMetrics::OnRunner(const sched::RunnerUpdate& u) {
  std::lock_guard lock(mu_);
  if (u.kind == sched::RunnerUpdate::Kind::kLoaded) {
    loads_[{models::ModelOfKey(u.model), u.device}]++;  // a DTW variant's loads are its model's
    load_s_.Observe(u.duration_ms / 1000.0);
  } else {
    unloads_[u.reason.empty() ? "unknown" : u.reason]++;
    release_s_.Observe(u.duration_ms / 1000.0);
  }
}

void ServiceMetrics::OnHttpRequest(const std::string& route, const std::string& method, int status,
                                   double seconds) {
  std::lock_guard lock(mu_);
  http_[{route, method, status}]++;
  auto it = http_s_.find(route);
  if (it == http_s_.end()) {
    it = http_s_
             .emplace(route, Histogram({0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                        0.5, 1, 2.5, 5, 10, 30, 60, 300}))
             .first;
  }
  it->second.Observe(seconds);
}

std::string ServiceMetrics::RenderPrometheus(const sched::SchedulerSnapshot& snapshot,
                                             const std::vector<gpu::DeviceSample>& devices,
                                             const store::JobCounts& counts,
                                             const gpu::ReserveConfig& reserve,
                                             double safety_factor) const {
  std::string out;
  out.reserve(8192);
  Writer w(out);

  // --- Devices: the driver's view (sample) next to the scheduler's books (ledger).
  struct DeviceRow {
    std::string device;
    gpu::MemorySplit split;
    const gpu::DeviceSample* sample = nullptr;
    const sched::VramLedger* ledger = nullptr;
  };
  std::vector<DeviceRow> rows;
  for (const auto& s : devices) {
    DeviceRow row{gpu::DeviceName(s), gpu::SplitMemory(s, is_ours_), &s, nullptr};
    for (const auto& l : snapshot.devices) {
      if (!l.cpu && l.name == row.device) row.ledger = &l.memory;
    }
    rows.push_back(row);
  }
  auto device_family = [&](const char* name, const char* help, auto value) {
    w.Family(name, "gauge", help);
    for (const auto& r : rows) w.Sample(name, Label("device", r.device), value(r));
  };
  device_family("steno_gpu_memory_total_bytes", "Device memory in total (driver).",
                [](const DeviceRow& r) { return double(r.sample->total_bytes); });
  device_family("steno_gpu_memory_used_bytes", "Device memory used by anyone (driver).",
                [](const DeviceRow& r) { return double(r.sample->used_bytes); });
  device_family("steno_gpu_memory_ours_bytes",
                "Device memory held by steno's processes (driver's per-process list).",
                [](const DeviceRow& r) { return double(r.split.ours); });
  device_family("steno_gpu_memory_external_bytes",
                "Device memory used by everyone else: used minus ours.",
                [](const DeviceRow& r) { return double(r.split.external); });
  device_family("steno_gpu_memory_allocatable_bytes",
                "Device memory steno plans with: (total - reserved) x safety factor.",
                [&](const DeviceRow& r) {
                  if (r.ledger) return double(r.ledger->allocatable);
                  return double(gpu::AllocatableBytes(r.sample->total_bytes,
                                                      reserve.For(r.sample->index), safety_factor));
                });
  device_family("steno_gpu_memory_allocated_bytes",
                "Device memory the scheduler's ledger charges to steno's runners.",
                [](const DeviceRow& r) { return r.ledger ? double(r.ledger->allocated) : 0.0; });
  device_family("steno_gpu_memory_available_bytes",
                "Device memory left for new work: allocatable - allocated - external.",
                [](const DeviceRow& r) { return r.ledger ? double(r.ledger->available) : 0.0; });
  w.Family("steno_gpu_utilization_percent", "gauge", "Share of time a kernel ran (driver).");
  for (const auto& r : rows) {
    if (r.sample->gpu_utilization_percent >= 0) {
      w.Sample("steno_gpu_utilization_percent", Label("device", r.device),
               r.sample->gpu_utilization_percent);
    }
  }
  w.Family("steno_gpu_temperature_celsius", "gauge", "Device temperature (driver).");
  for (const auto& r : rows) {
    if (r.sample->temperature_c >= 0) {
      w.Sample("steno_gpu_temperature_celsius", Label("device", r.device), r.sample->temperature_c);
    }
  }
  // --- Compute, per device (GPUs and the CPU): the soft limit beside memory.
  w.Family("steno_device_concurrency_limit", "gauge",
           "Jobs the device may compute at once (--max-concurrency-per-device: learned, fixed; "
           "absent: no limit).");
  for (const auto& l : snapshot.devices) {
    if (l.compute.limit > 0) {
      w.Sample("steno_device_concurrency_limit",
               Labels({{"device", l.name}, {"mode", l.compute.mode}}), l.compute.limit);
    }
  }
  w.Family("steno_device_jobs_running", "gauge", "Jobs holding a stream on the device.");
  for (const auto& l : snapshot.devices) {
    w.Sample("steno_device_jobs_running", Label("device", l.name), l.compute.running);
  }
  w.Family("steno_device_throughput_audio_seconds_per_second", "gauge",
           "Audio seconds the device decoded per second over its latest measured window.");
  for (const auto& l : snapshot.devices) {
    w.Sample("steno_device_throughput_audio_seconds_per_second", Label("device", l.name),
             l.compute.throughput);
  }
  for (const auto& l : snapshot.devices) {
    if (!l.cpu) continue;
    w.Family("steno_cpu_threads", "gauge", "CPU threads given to steno's runners.");
    w.Sample("steno_cpu_threads", "", l.cores.cores);
    w.Family("steno_cpu_threads_used", "gauge",
             "CPU threads held by runners: a core per stream, or their jobs' threads where more.");
    w.Sample("steno_cpu_threads_used", "", l.cores.used_threads);
    w.Family("steno_cpu_threads_computing", "gauge",
             "CPU threads the jobs running were given (each job's count is set at its start).");
    w.Sample("steno_cpu_threads_computing", "", l.cores.busy_threads);
  }

  // --- Runners, per (model, device, word timing), labelled with the model's runner kind too.
  // The model is the user's name: a model's DTW variant (models/model_variant.h) is the same
  // model with word_timing="dtw" (whisper runners say "dtw" or "tokens"; other kinds "").
  struct RunnerRow {
    std::string kind;
    int runners = 0;
    int64_t bytes = 0;
    int streams = 0, busy = 0;
  };
  std::map<std::tuple<std::string, std::string, std::string>, RunnerRow> runners;
  for (const auto& r : snapshot.runners) {
    const std::string timing(models::WordTimingOf(r.kind, r.load.dtw_words));
    auto& row = runners[{models::ModelOfKey(r.view.model), r.view.device, timing}];
    row.kind = r.kind;
    row.runners++;
    row.bytes += r.view.weights_bytes + r.view.streams * r.view.stream_bytes;
    row.streams += r.view.streams;
    row.busy += r.view.busy_streams;
  }
  auto runner_family = [&](const char* name, const char* help, auto value) {
    w.Family(name, "gauge", help);
    for (const auto& [key, row] : runners) {
      const auto& [model, device, timing] = key;
      const std::string base = Labels({{"model", model}, {"kind", row.kind}, {"device", device}});
      w.Sample(name, timing.empty() ? base : base + "," + Label("word_timing", timing), value(row));
    }
  };
  runner_family("steno_runners", "Loaded (or loading) runners.",
                [](const RunnerRow& r) { return double(r.runners); });
  runner_family("steno_runner_bytes", "Memory the runners hold: weights + streams.",
                [](const RunnerRow& r) { return double(r.bytes); });
  runner_family("steno_runner_streams", "Streams (concurrent job slots) of the runners.",
                [](const RunnerRow& r) { return double(r.streams); });
  runner_family("steno_runner_streams_busy", "Streams running a job now.",
                [](const RunnerRow& r) { return double(r.busy); });

  // --- Queue and jobs.
  w.Family("steno_queue_length", "gauge", "Jobs waiting in the scheduler's queue.");
  for (Priority p : kPriorities) {
    w.Sample("steno_queue_length", Label("priority", PriorityName(p)),
             double(snapshot.queued_by_priority[static_cast<size_t>(p)]));
  }
  w.Family("steno_jobs_running", "gauge", "Jobs loading or processing.");
  w.Sample("steno_jobs_running", "", double(snapshot.running));
  w.Family("steno_admitting", "gauge", "1 while new jobs are accepted, 0 while shutting down.");
  w.Sample("steno_admitting", "", snapshot.admitting ? 1 : 0);
  w.Family("steno_jobs", "gauge", "Jobs in the store by state.");
  for (JobState s : kStates) {
    w.Sample("steno_jobs", Label("state", JobStateName(s)), double(counts[s]));
  }

  std::lock_guard lock(mu_);
  w.Family("steno_jobs_finished_total", "counter",
           "Jobs that reached a final state since start, by state and error kind.");
  for (const auto& [key, n] : finished_) {
    w.Sample("steno_jobs_finished_total",
             Labels({{"state", key.first}, {"error_kind", key.second}}), double(n));
  }
  w.Family("steno_job_retries_total", "counter",
           "Runs lost and retried, by the kind of error that lost them.");
  for (const auto& [kind, n] : retries_) {
    w.Sample("steno_job_retries_total", Label("error_kind", kind), double(n));
  }
  w.Family("steno_job_segments_total", "counter", "Segments decoded.");
  w.Sample("steno_job_segments_total", "", double(segments_));
  w.Family("steno_audio_seconds_total", "counter", "Seconds of audio transcribed.");
  w.Sample("steno_audio_seconds_total", "", audio_seconds_);

  w.Family("steno_job_queue_wait_seconds", "histogram",
           "Time from submission (or a retry) until a runner claimed the job.");
  queue_wait_s_.Render("steno_job_queue_wait_seconds", "", out);
  w.Family("steno_job_processing_seconds", "histogram",
           "Time a completed job spent processing on its runner.");
  processing_s_.Render("steno_job_processing_seconds", "", out);
  w.Family("steno_job_real_time_factor", "histogram",
           "Processing time divided by audio duration (below 1: faster than real time).");
  real_time_factor_.Render("steno_job_real_time_factor", "", out);

  w.Family("steno_runner_loads_total", "counter", "Runners loaded, by model and device.");
  for (const auto& [key, n] : loads_) {
    w.Sample("steno_runner_loads_total", Labels({{"model", key.first}, {"device", key.second}}),
             double(n));
  }
  w.Family("steno_runner_unloads_total", "counter", "Runners unloaded, by reason.");
  for (const auto& [reason, n] : unloads_) {
    w.Sample("steno_runner_unloads_total", Label("reason", reason), double(n));
  }
  w.Family("steno_runner_load_seconds", "histogram", "Runner start until ready.");
  load_s_.Render("steno_runner_load_seconds", "", out);
  w.Family("steno_runner_release_seconds", "histogram",
           "Runner stop until it exited and its memory was released.");
  release_s_.Render("steno_runner_release_seconds", "", out);

  w.Family("steno_http_requests_total", "counter", "HTTP requests answered.");
  for (const auto& [key, n] : http_) {
    const auto& [route, method, status] = key;
    w.Sample("steno_http_requests_total",
             Labels({{"route", route}, {"method", method}, {"status", std::to_string(status)}}),
             double(n));
  }
  w.Family("steno_http_request_duration_seconds", "histogram",
           "Time to answer an HTTP request, by route (a synchronous transcription's wait "
           "included; an SSE stream counts until its headers).");
  for (const auto& [route, h] : http_s_) {
    h.Render("steno_http_request_duration_seconds", Label("route", route), out);
  }
  return out;
}

}  // namespace steno::server
