// RunnerControl: model lifecycle and monitoring — load and unload models on demand (POST
// /v1/models/{name}/load|unload), the scheduler's snapshot (runners, ledgers, queue), device
// samples, the service's metrics, and the runner trouble the alerts watch.
//
// Every call reaches the runtime through the RuntimeSlot, with no lock held. While a shutdown
// stops the runners, reads answer at once with what was last seen (the snapshot taken when the
// stop began, the last device samples); once stopped, with nothing.
//
// Locks: incident_mu_ (held while the listener runs) and seen_mu_ are never held together.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/mutex.h"
#include "core/result.h"
#include "gpu/device.h"
#include "models/model_catalog.h"
#include "runner/release_check.h"
#include "sched/scheduler_types.h"
#include "server/runtime_slot.h"
#include "server/service_metrics.h"

namespace steno::server {

// Runner trouble the alerts watch: a runner that crashed, an unload whose release was not
// verified on the device.
struct RunnerIncident {
  enum class Kind { kCrash, kUnreleased };
  Kind kind = Kind::kCrash;
  std::string model, device;
  int64_t leftover_bytes = 0;  // kUnreleased
  std::string detail;
};

class RunnerControl {
 public:
  // `runtime` and `metrics` must outlive this object; `admitting` says whether loads are still
  // accepted (not after the service stopped admitting); `count_jobs` corrects each snapshot's
  // job counts (ChunkedJobs::CountOnce: a chunked job counts once; empty: none).
  using SnapshotFix = std::function<void(sched::SchedulerSnapshot&)>;
  RunnerControl(RuntimeSlot& runtime, ServiceMetrics& metrics, std::function<bool()> admitting,
                SnapshotFix count_jobs = {});

  Status Load(const std::string& model, const std::string& device, std::optional<int> keep_alive_s);
  // Unloads the model's runners, its DTW variant's included (models/model_variant.h).
  Status Unload(const std::string& model);

  // The runtime's model catalog (ggml files, declared and managed server models); nullopt while
  // no runtime runs (before the start, during a shutdown).
  std::optional<models::ModelCatalog> Catalog() const;
  // The scheduler's snapshot, its job counts as the service shows them (count_jobs); while no
  // runtime runs, the one taken at Park.
  sched::SchedulerSnapshot Snapshot() const EXCLUDES(seen_mu_);
  Result<std::vector<gpu::DeviceSample>> Devices() const EXCLUDES(seen_mu_);
  ServiceMetrics& metrics() { return metrics_; }

  // Replaces the listener (empty: none). It is called on the scheduler's or an unloading thread
  // and must be quick.
  void SetIncidentListener(std::function<void(const RunnerIncident&)> listener)
      EXCLUDES(incident_mu_);

  // The scheduler's runner hook: metrics, and a crash is an incident.
  void OnRunner(const sched::RunnerUpdate& r) EXCLUDES(incident_mu_);
  // The runtime's hook for an unload whose release was not verified.
  void OnUnreleased(const std::string& model, const std::string& device,
                    const runner::ReleaseReport& report) EXCLUDES(incident_mu_);

  // Shutdown: keeps the current snapshot for the reads made while the runners stop (Park), then
  // forgets it once they stopped (Unpark).
  void Park() EXCLUDES(seen_mu_);
  void Unpark() EXCLUDES(seen_mu_);

 private:
  void Incident(const RunnerIncident& incident) EXCLUDES(incident_mu_);

  RuntimeSlot& runtime_;
  ServiceMetrics& metrics_;
  const std::function<bool()> admitting_;
  const SnapshotFix count_jobs_;

  Mutex incident_mu_;
  std::function<void(const RunnerIncident&)> listener_ GUARDED_BY(incident_mu_);

  mutable Mutex seen_mu_;
  std::optional<sched::SchedulerSnapshot> parked_ GUARDED_BY(seen_mu_);
  mutable std::vector<gpu::DeviceSample> last_samples_ GUARDED_BY(seen_mu_);
};

}  // namespace steno::server
