// The alert monitor `steno serve` runs (alerts/alert_monitor.h): rules from --alert-rules (a JSON
// array, see alerts/alert_rules.h; the defaults when absent), observations taken from the job
// service (device memory use, queue length, finished and failed jobs, the free space on the
// blob store's filesystem; runner crashes and unloads whose release was not verified, as
// events), transitions logged, sent
// to --alert-webhook when set, and shown by GET /v1/alerts and /metrics.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "alerts/alert_monitor.h"
#include "alerts/webhook.h"
#include "core/result.h"
#include "sched/clock.h"
#include "server/job_service.h"

namespace steno::cli {

struct AlertFlags {
  std::string rules_file;  // empty: DefaultRules()
  std::string webhook_url;
  std::string interval = "15s";
  // The upload margin (--min-free-disk), which disk_space_low rules with threshold 0 watch.
  int64_t min_free_disk_bytes = 0;
};

// The rules in `path`, or the defaults for an empty path. kBadInput names the file and the fault.
Result<std::vector<alerts::AlertRule>> LoadAlertRules(const std::string& path);

class ServeAlerts {
 public:
  // Validates the flags and rules and starts evaluating. `service` must outlive it.
  static Result<std::unique_ptr<ServeAlerts>> Start(const AlertFlags& flags,
                                                    server::JobService& service);
  ~ServeAlerts();

  alerts::AlertMonitor& monitor() { return *monitor_; }
  std::string ActiveJson() const;
  std::string Metrics() const;

 private:
  ServeAlerts() = default;
  server::JobService* service_ = nullptr;  // its incident listener is ours while we live
  // Its own clock: a slow observation never delays the scheduler's timers.
  std::unique_ptr<sched::RealClock> clock_;
  std::unique_ptr<alerts::WebhookNotifier> webhook_;
  std::unique_ptr<alerts::AlertMonitor> monitor_;
};

}  // namespace steno::cli
