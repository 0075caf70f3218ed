// The runner backend the scheduler is given: it hands each runner to its kind's backend
// (RunnerStartSpec::kind) and routes every later call for that runner there, so the scheduler
// drives every kind through one sched::RunnerBackend.
//
// It also holds each kind to the seam's contract towards the scheduler: events of a runner that
// is not live (never started here, or already exited) are dropped, so each started runner
// reports kExited exactly once and nothing after it, whichever kind it is.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "core/result.h"
#include "runners/kind_registry.h"
#include "sched/runner_backend.h"

namespace steno::runners {

class Dispatcher final : public sched::RunnerBackend {
 public:
  // Builds one backend per registered kind; they report through the dispatcher to
  // `context.sink`. The factory's error, if one fails.
  static Result<std::unique_ptr<Dispatcher>> Create(const KindRegistry& kinds, KindContext context);
  // Destroys every kind's backend (each stops its runners and waits for them) before anything
  // they report through is gone.
  ~Dispatcher() override;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // kBadInput "unknown_runner_kind" when no backend serves spec.kind; else the kind's answer.
  Status Start(const sched::RunnerStartSpec& spec) override;
  // kNotFound "runner_not_found" for a runner that is not live; else the kind's answer.
  Status SendJob(int64_t runner_id, const sched::JobRunSpec& job) override;
  void Cancel(int64_t runner_id, const std::string& job_id) override;
  // kNotFound "runner_not_found" for a runner that is not live; else the kind's answer.
  Status Feed(int64_t runner_id, const std::string& job_id, const nlohmann::json& input) override;
  Status SetStreams(int64_t runner_id, int streams) override;
  void Stop(int64_t runner_id) override;

  // Runners started and not exited yet (for tests and the stop report).
  size_t live_runners() const;

 private:
  explicit Dispatcher(sched::BackendSink sink) : sink_(std::move(sink)) {}
  sched::RunnerBackend* OwnerOf(int64_t runner_id) const;
  void Forward(sched::BackendEvent event);  // from any kind's threads

  sched::BackendSink sink_;
  // Written only while Create builds it, then read-only: no lock.
  std::map<std::string, std::unique_ptr<sched::RunnerBackend>> backends_;
  mutable std::mutex mu_;
  std::map<int64_t, sched::RunnerBackend*> live_;  // runner id → its kind's backend
};

}  // namespace steno::runners
