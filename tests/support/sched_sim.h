// Test-side helpers for the scheduler's simulations (the cluster itself is sched/sim_cluster.h,
// shared with the benchmark): a backend wrapper that watches every charge the scheduler makes,
// and wait statistics.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sim/sim_cluster.h"

namespace steno::sched::sim {

// Forwards to the simulated backend and records what the scheduler asks of it.
class WatchingBackend final : public RunnerBackend {
 public:
  explicit WatchingBackend(SimulatedBackend& sim) : sim_(sim) {}
  Status Start(const RunnerStartSpec& spec) override;
  Status SendJob(int64_t runner_id, const JobRunSpec& job) override;
  void Cancel(int64_t runner_id, const std::string& job_id) override;
  Status SetStreams(int64_t runner_id, int streams) override;
  void Stop(int64_t runner_id) override;

  // From now on, count starts separately and track each card's highest use after our charges.
  void Watch() { watching_ = true; }
  int starts_after(const std::string& device) const { return Count(starts_after_, device); }
  int starts_before(const std::string& device) const { return Count(starts_before_, device); }
  int64_t max_used_after(const std::string& device) const;
  // Runner starts per model, over the whole run.
  int starts_of(const std::string& model) const { return Count(starts_by_model_, model); }
  int starts() const { return starts_; }
  int stops() const { return stops_; }
  // The CPU threads each job was sent with (JobRunSpec::threads), by job id: its last run's.
  const std::map<std::string, int>& threads_sent() const { return threads_sent_; }

 private:
  static int Count(const std::map<std::string, int>& m, const std::string& key);
  // The card a charge went to, right after it: what the tenant and we hold together.
  void Observe(const std::string& device);
  SimulatedBackend& sim_;
  bool watching_ = false;
  int starts_ = 0;
  int stops_ = 0;
  std::map<int64_t, std::string> device_of_;
  std::map<std::string, int> starts_before_;
  std::map<std::string, int> starts_after_;
  std::map<std::string, int> starts_by_model_;
  std::map<std::string, int64_t> max_used_after_;
  std::map<std::string, int> threads_sent_;
};

// A SimCluster whose backend is watched: options.wrap_backend set to a WatchingBackend.
SimClusterOptions Watched(SimClusterOptions options);
WatchingBackend& WatcherOf(SimCluster& cluster);

// The 99th percentile (nearest rank below); 0 for none.
int64_t P99(std::vector<int64_t> values);

}  // namespace steno::sched::sim
