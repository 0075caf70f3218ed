#include "server/runtime_config.h"

namespace steno::server {

sched::SchedulerConfig SchedulerConfigFor(const RuntimeOptions& options) {
  sched::SchedulerConfig config = options.scheduler;
  config.reserve = options.gpu.reserve;
  config.safety_factor = options.gpu.safety_factor;
  config.sample_interval_ms = options.gpu.sample_interval.count();
  config.max_threads_per_job = options.decode_defaults.n_threads;
  return config;
}

}  // namespace steno::server
