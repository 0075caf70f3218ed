// The scheduler's ledgers as the alert engine reads them (device_oversubscribed): one
// LedgerObservation per GPU of a snapshot.
#pragma once

#include <vector>

#include "alerts/alert_types.h"
#include "sched/scheduler_types.h"

namespace steno::alerts {

// Per GPU: charged = our runners' charges (raised where they were measured holding more) plus
// other tenants' memory; capacity = total − reserve; grown_models = the models of runners there
// whose charge was raised (RunnerInfo::grown_bytes > 0), each once, by name. The CPU is left out.
std::vector<LedgerObservation> ObserveLedgers(const sched::SchedulerSnapshot& snapshot);

}  // namespace steno::alerts
