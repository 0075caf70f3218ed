#include "support/sched_sim.h"

#include <algorithm>

namespace steno::sched::sim {

Status WatchingBackend::Start(const RunnerStartSpec& spec) {
  Status st = sim_.Start(spec);
  device_of_[spec.runner_id] = spec.device;
  ++starts_;
  ++starts_by_model_[spec.model];
  ++(watching_ ? starts_after_ : starts_before_)[spec.device];
  Observe(spec.device);
  return st;
}

Status WatchingBackend::SendJob(int64_t runner_id, const JobRunSpec& job) {
  threads_sent_[job.job_id] = job.threads;
  return sim_.SendJob(runner_id, job);
}

void WatchingBackend::Cancel(int64_t runner_id, const std::string& job_id) {
  sim_.Cancel(runner_id, job_id);
}

Status WatchingBackend::SetStreams(int64_t runner_id, int streams) {
  Status st = sim_.SetStreams(runner_id, streams);
  Observe(device_of_[runner_id]);
  return st;
}

void WatchingBackend::Stop(int64_t runner_id) {
  ++stops_;
  sim_.Stop(runner_id);
}

int64_t WatchingBackend::max_used_after(const std::string& device) const {
  auto it = max_used_after_.find(device);
  return it == max_used_after_.end() ? 0 : it->second;
}

int WatchingBackend::Count(const std::map<std::string, int>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

void WatchingBackend::Observe(const std::string& device) {
  if (watching_) max_used_after_[device] = std::max(max_used_after_[device], sim_.used(device));
}

SimClusterOptions Watched(SimClusterOptions options) {
  options.wrap_backend = [](SimulatedBackend& sim) -> std::unique_ptr<RunnerBackend> {
    return std::make_unique<WatchingBackend>(sim);
  };
  return options;
}

WatchingBackend& WatcherOf(SimCluster& cluster) {
  return static_cast<WatchingBackend&>(*cluster.wrapper);
}

int64_t P99(std::vector<int64_t> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, values.size() * 99 / 100)];
}

}  // namespace steno::sched::sim
