#include "runner/recycle_policy.h"

#include <cstdio>

namespace steno::runner {

std::string RecycleReason(const RunnerUsage& usage, const RecyclePolicy& policy) {
  if (policy.max_jobs > 0 && usage.jobs_done >= policy.max_jobs) {
    return "ran " + std::to_string(usage.jobs_done) + " jobs (limit " +
           std::to_string(policy.max_jobs) + ")";
  }
  if (policy.max_growth_ratio > 0 && usage.bytes_at_ready > 0 &&
      static_cast<double>(usage.bytes_now) >
          policy.max_growth_ratio * static_cast<double>(usage.bytes_at_ready)) {
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, "%.2f",
                  static_cast<double>(usage.bytes_now) / static_cast<double>(usage.bytes_at_ready));
    return "memory grew to " + std::string(ratio) + "x its size at ready";
  }
  return "";
}

}  // namespace steno::runner
