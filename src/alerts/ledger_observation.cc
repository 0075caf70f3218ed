#include "alerts/ledger_observation.h"

#include <set>

namespace steno::alerts {

std::vector<LedgerObservation> ObserveLedgers(const sched::SchedulerSnapshot& snapshot) {
  std::vector<LedgerObservation> out;
  for (const sched::DeviceLedger& d : snapshot.devices) {
    if (d.cpu) continue;
    LedgerObservation l;
    l.device = d.name;
    l.charged_bytes = d.memory.allocated + d.memory.external;
    l.capacity_bytes = d.memory.total - d.memory.reserved;
    std::set<std::string> grown;
    for (const sched::RunnerInfo& r : snapshot.runners) {
      if (r.view.device == d.name && r.grown_bytes > 0) grown.insert(r.view.model);
    }
    l.grown_models.assign(grown.begin(), grown.end());
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace steno::alerts
