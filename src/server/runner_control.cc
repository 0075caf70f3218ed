#include "server/runner_control.h"

#include "models/model_variant.h"
#include "server/job_requests.h"

namespace steno::server {

RunnerControl::RunnerControl(RuntimeSlot& runtime, ServiceMetrics& metrics,
                             std::function<bool()> admitting, SnapshotFix count_jobs)
    : runtime_(runtime),
      metrics_(metrics),
      admitting_(std::move(admitting)),
      count_jobs_(std::move(count_jobs)) {}

Status RunnerControl::Load(const std::string& model, const std::string& device,
                           std::optional<int> keep_alive_s) {
  if (!admitting_()) return JobRequests::ShuttingDown();
  return runtime_.With(
      [&](Runtime& rt) -> Status {
        if (auto spec = rt.ResolveModel(model); !spec.ok()) return spec.error();
        sched::LoadRequest r;
        r.model = model;
        r.device = device == "auto" ? "" : device;
        r.keep_alive_s = keep_alive_s;
        return rt.scheduler().Load(r);
      },
      Status(JobRequests::ShuttingDown()));
}

Status RunnerControl::Unload(const std::string& model) {
  return runtime_.With(
      [&](Runtime& rt) -> Status {
        // Its DTW variant's runners too (Runtime::SchedulerModel): they are the model's.
        auto plain = rt.scheduler().Unload(model);
        auto variant = rt.scheduler().Unload(models::VariantKey({model, /*dtw_words=*/true}));
        return plain.ok() || !variant.ok() ? plain : variant;
      },
      Status(JobRequests::ShuttingDown()));
}

std::optional<models::ModelCatalog> RunnerControl::Catalog() const {
  return runtime_.With([](Runtime& rt) { return std::optional(rt.catalog()); },
                       std::optional<models::ModelCatalog>());
}

sched::SchedulerSnapshot RunnerControl::Snapshot() const {
  auto snap = runtime_.With([](Runtime& rt) { return std::optional(rt.scheduler().Snapshot()); },
                            std::optional<sched::SchedulerSnapshot>());
  if (snap) {
    if (count_jobs_) count_jobs_(*snap);
    return *snap;
  }
  MutexLock lock(seen_mu_);
  return parked_.value_or(sched::SchedulerSnapshot{});
}

Result<std::vector<gpu::DeviceSample>> RunnerControl::Devices() const {
  using Samples = Result<std::vector<gpu::DeviceSample>>;
  auto samples = runtime_.With(
      [](Runtime& rt) -> std::optional<Samples> {
        gpu::Devices* d = rt.devices();
        if (!d) return Samples(std::vector<gpu::DeviceSample>{});
        return d->Sample();  // the driver: no lock held
      },
      std::optional<Samples>());
  MutexLock lock(seen_mu_);
  if (!samples) {
    if (parked_) return last_samples_;
    return std::vector<gpu::DeviceSample>{};
  }
  if (samples->ok()) last_samples_ = **samples;
  return *samples;
}

void RunnerControl::SetIncidentListener(std::function<void(const RunnerIncident&)> listener) {
  MutexLock lock(incident_mu_);
  listener_ = std::move(listener);
}

void RunnerControl::Incident(const RunnerIncident& incident) {
  MutexLock lock(incident_mu_);
  if (listener_) listener_(incident);
}

void RunnerControl::OnRunner(const sched::RunnerUpdate& r) {
  metrics_.OnRunner(r);
  if (r.kind == sched::RunnerUpdate::Kind::kUnloaded && r.crashed) {
    // Alerts name the model the user knows, a DTW variant's runner included.
    Incident(
        {RunnerIncident::Kind::kCrash, models::ModelOfKey(r.model), r.device, 0, "runner crashed"});
  }
}

void RunnerControl::OnUnreleased(const std::string& model, const std::string& device,
                                 const runner::ReleaseReport& report) {
  Incident({RunnerIncident::Kind::kUnreleased, models::ModelOfKey(model), device,
            report.leftover_bytes, report.detail});
}

void RunnerControl::Park() {
  auto snap = runtime_.With([](Runtime& rt) { return rt.scheduler().Snapshot(); },
                            sched::SchedulerSnapshot{});
  MutexLock lock(seen_mu_);
  parked_ = std::move(snap);
}

void RunnerControl::Unpark() {
  MutexLock lock(seen_mu_);
  parked_.reset();
  last_samples_.clear();
}

}  // namespace steno::server
