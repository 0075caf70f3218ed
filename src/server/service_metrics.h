// ServiceMetrics: what `GET /metrics` exposes, in the Prometheus text exposition format (0.0.4).
//
// Two kinds of numbers. Gauges of the present (device memory, runners, queue length, jobs by
// state) are read at scrape time from what the caller passes in: the scheduler's snapshot, a
// device sample and the store's counts, so they can never drift from the truth. Counters and
// histograms of the past (jobs finished by state and error kind, retries, queue wait, processing
// time, real-time factor, load and release timings, HTTP requests) are accumulated here from the
// scheduler's hooks (OnJob / OnRunner, called on the scheduler's worker thread) and the HTTP
// layer (OnHttpRequest).
//
// Every method is thread-safe; the hooks only take a short lock and never block on I/O.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "gpu/device.h"
#include "gpu/gpu_config.h"
#include "sched/scheduler_types.h"
#include "store/job_store.h"

namespace steno::server {

// A cumulative histogram with fixed upper bounds (the +Inf bucket is implicit).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // Appends `name`_bucket{le=...}, `name`_sum and `name`_count lines; `labels` is either empty
  // or `key="value",...` without braces.
  void Render(const std::string& name, const std::string& labels, std::string& out) const;
  int64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // per bucket, not cumulative (Render accumulates)
  int64_t count_ = 0;
  double sum_ = 0;
};

class ServiceMetrics {
 public:
  // `is_ours` says whether a GPU process is one of steno's (the supervisor or a runner); it
  // splits device memory into ours and external. Empty: compares executables (owner_process.h).
  explicit ServiceMetrics(std::function<bool(int pid)> is_ours = {});

  // Scheduler hooks (sched::SchedulerHooks::on_job / on_runner).
  void OnJob(const sched::JobUpdate& update);
  void OnRunner(const sched::RunnerUpdate& update);
  // One answered HTTP request: the route pattern (not the raw path, to bound the label set),
  // method, status and how long it took.
  void OnHttpRequest(const std::string& route, const std::string& method, int status,
                     double seconds);

  // The whole exposition. `reserve` and `safety_factor` turn a sample's total into allocatable
  // bytes for devices the scheduler has no ledger for (e.g. not selected).
  std::string RenderPrometheus(const sched::SchedulerSnapshot& snapshot,
                               const std::vector<gpu::DeviceSample>& devices,
                               const store::JobCounts& counts,
                               const gpu::ReserveConfig& reserve = {},
                               double safety_factor = gpu::kDefaultSafetyFactor) const;

 private:
  struct JobClock {
    int64_t pending_since_ms = 0;
    int64_t processing_since_ms = 0;
  };

  std::function<bool(int pid)> is_ours_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, JobClock> clocks_;  // live jobs only
  // (state, error kind) → count of jobs that reached that final state.
  std::map<std::pair<std::string, std::string>, int64_t> finished_;
  std::map<std::string, int64_t> retries_;                        // by error kind of the lost run
  std::map<std::string, int64_t> unloads_;                        // by reason
  std::map<std::pair<std::string, std::string>, int64_t> loads_;  // (model, device)
  std::map<std::tuple<std::string, std::string, int>, int64_t> http_;  // (route, method, status)
  int64_t segments_ = 0;
  double audio_seconds_ = 0;
  Histogram queue_wait_s_;
  Histogram processing_s_;
  Histogram real_time_factor_;
  Histogram load_s_;
  Histogram release_s_;
  std::map<std::string, Histogram> http_s_;  // by route
};

}  // namespace steno::server
