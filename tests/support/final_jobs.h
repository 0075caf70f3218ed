// Waits on a scheduler's hook until jobs reach a final state: give Hooks() to the scheduler (or
// Runtime), then Wait(id) for each job (nullopt, with nothing to show, after `timeout`: a hang).
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "core/job.h"
#include "sched/scheduler_types.h"

namespace steno::test {

struct FinalJobs {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, sched::JobUpdate> final;

  sched::SchedulerHooks Hooks() {
    sched::SchedulerHooks h;
    h.on_job = [this](const sched::JobUpdate& u) {
      if (u.kind != sched::JobUpdate::Kind::kState || !IsFinal(u.job.state)) return;
      std::lock_guard<std::mutex> lock(mu);
      final[u.job.id] = u;
      cv.notify_all();
    };
    return h;
  }
  std::optional<sched::JobUpdate> Wait(const std::string& id,
                                       std::chrono::seconds timeout = std::chrono::seconds(120)) {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, timeout, [&] { return final.count(id) > 0; })) return std::nullopt;
    return final.at(id);
  }
};

}  // namespace steno::test
