#include "alerts/alert_metrics.h"

#include <fmt/format.h>

#include "core/strings.h"

namespace steno::alerts {
std::string RenderAlertMetrics(const std::vector<ActiveAlert>& active) {
  std::string out =
      "# HELP steno_alerts_firing Alerts firing now: one sample per alert and label set.\n"
      "# TYPE steno_alerts_firing gauge\n";
  for (const ActiveAlert& a : active) {
    out += fmt::format("steno_alerts_firing{{alert=\"{}\"", PrometheusLabelValue(a.rule));
    for (const auto& [k, v] : a.labels) {
      // A rule's own label cannot be called "alert" or "severity" (engine labels are device and
      // model), so the names never clash.
      out += fmt::format(",{}=\"{}\"", k, PrometheusLabelValue(v));
    }
    out += fmt::format(",severity=\"{}\"}} 1\n", SeverityName(a.severity));
  }
  return out;
}

}  // namespace steno::alerts
