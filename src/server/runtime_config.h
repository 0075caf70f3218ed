// The scheduler's settings, derived in one place from a runtime's options. Runtime::Start builds
// its scheduler with it and a config reload (JobService::Reconfigure) hands the scheduler the
// same derivation of the reloaded options, so the two can never disagree.
#pragma once

#include "sched/scheduler_types.h"
#include "server/runtime.h"

namespace steno::server {

// options.scheduler with the fields that follow from other settings filled in: the memory
// reserve, safety factor and sampling interval from options.gpu, and the most CPU threads a job
// uses from options.decode_defaults.n_threads.
sched::SchedulerConfig SchedulerConfigFor(const RuntimeOptions& options);

}  // namespace steno::server
