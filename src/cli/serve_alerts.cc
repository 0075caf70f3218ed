#include "cli/serve_alerts.h"

#include <fstream>
#include <iterator>

#include "alerts/alert_metrics.h"
#include "alerts/ledger_observation.h"
#include "core/wall_clock.h"
#include "gpu/device.h"
#include "gpu/gpu_config.h"
#include "store/disk_space.h"

namespace steno::cli {

Result<std::vector<alerts::AlertRule>> LoadAlertRules(const std::string& path) {
  if (path.empty()) return alerts::DefaultRules();
  std::ifstream in(path);
  if (!in) return Error(ErrorKind::kBadInput, "bad_alert_rules", "cannot read " + path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto rules = alerts::ParseRulesJsonText(text);
  if (!rules.ok()) {
    return Error(ErrorKind::kBadInput, "bad_alert_rules", path + ": " + rules.error().message);
  }
  return rules;
}

Result<std::unique_ptr<ServeAlerts>> ServeAlerts::Start(const AlertFlags& flags,
                                                        server::JobService& service) {
  auto rules = LoadAlertRules(flags.rules_file);
  if (!rules.ok()) return rules.error();
  auto interval = gpu::ParseInterval(flags.interval);
  if (!interval.ok()) {
    return Error(ErrorKind::kBadInput, "bad_flag", "--alert-interval: " + interval.error().message);
  }
  std::unique_ptr<ServeAlerts> a(new ServeAlerts());
  a->clock_ = std::make_unique<sched::RealClock>(UnixMillis());
  if (!flags.webhook_url.empty()) {
    alerts::WebhookOptions w;
    w.url = flags.webhook_url;
    auto hook = alerts::WebhookNotifier::Create(w);
    if (!hook.ok()) return hook.error();
    a->webhook_ = std::move(hook).value();
  }
  alerts::AlertMonitorOptions options;
  options.interval_ms = interval->count();
  options.rules = std::move(rules).value();
  const int64_t margin = flags.min_free_disk_bytes;
  auto observe = [&service, margin] {
    alerts::Observation o;
    if (auto devices = service.runners().Devices(); devices.ok()) {
      for (const auto& s : *devices) {
        const double percent =
            s.total_bytes > 0 ? 100.0 * static_cast<double>(s.used_bytes) / s.total_bytes : 0.0;
        o.devices.push_back({gpu::DeviceName(s), percent, true});
      }
    }
    const sched::SchedulerSnapshot snapshot = service.runners().Snapshot();
    o.queue_length = static_cast<int64_t>(snapshot.queued);
    o.ledgers = alerts::ObserveLedgers(snapshot);
    if (auto counts = service.jobs().Counts(); counts.ok()) {
      o.jobs_failed_total = (*counts)[JobState::kFailed];
      o.jobs_finished_total = (*counts)[JobState::kCompleted] + o.jobs_failed_total;
    }
    if (auto space = store::DiskSpaceOf(service.blobs().dir()); space.ok()) {
      o.disk = alerts::DiskObservation{space->free_bytes, margin};
    }
    return o;
  };
  auto monitor =
      alerts::AlertMonitor::Create(*a->clock_, std::move(options), observe, a->webhook_.get());
  if (!monitor.ok()) return monitor.error();
  a->monitor_ = std::move(monitor).value();
  // Runner crashes and unverified releases become events of the next evaluation.
  alerts::AlertMonitor* m = a->monitor_.get();
  service.runners().SetIncidentListener([m](const server::JobService::RunnerIncident& i) {
    if (i.kind == server::JobService::RunnerIncident::Kind::kCrash) {
      m->ReportRunnerCrash({i.model, i.device});
    } else {
      m->ReportUnreleased({i.device, i.leftover_bytes, i.model});
    }
  });
  a->service_ = &service;
  a->monitor_->Start();
  return a;
}

ServeAlerts::~ServeAlerts() {
  if (service_) service_->runners().SetIncidentListener({});
  if (monitor_) monitor_->Stop();
  if (webhook_) webhook_->Stop(std::chrono::seconds(2));
}

std::string ServeAlerts::ActiveJson() const {
  return alerts::ToJson(monitor_->Active()).dump();
}

std::string ServeAlerts::Metrics() const {
  return alerts::RenderAlertMetrics(monitor_->Active());
}

}  // namespace steno::cli
