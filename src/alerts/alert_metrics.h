// The alerts firing now as Prometheus text (exposition format 0.0.4), for GET /metrics:
//
//   # HELP steno_alerts_firing ...
//   # TYPE steno_alerts_firing gauge
//   steno_alerts_firing{alert="memory_usage",device="cuda:0",severity="warning"} 1
//
// One sample per firing alert: label "alert" (the rule name) first, then the alert's own labels
// and "severity", label values escaped. Resolved alerts simply disappear (a gauge of presence,
// as Prometheus' own ALERTS metric). With nothing firing only the HELP and TYPE lines remain.
#pragma once

#include <string>
#include <vector>

#include "alerts/alert_types.h"

namespace steno::alerts {

std::string RenderAlertMetrics(const std::vector<ActiveAlert>& active);

}  // namespace steno::alerts
