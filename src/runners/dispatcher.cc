#include "runners/dispatcher.h"

namespace steno::runners {

Result<std::unique_ptr<Dispatcher>> Dispatcher::Create(const KindRegistry& kinds,
                                                       KindContext context) {
  std::unique_ptr<Dispatcher> d(new Dispatcher(std::move(context.sink)));
  Dispatcher* raw = d.get();
  context.sink = [raw](sched::BackendEvent e) { raw->Forward(std::move(e)); };
  for (const std::string& name : kinds.Names()) {
    auto backend = (*kinds.Find(name))(context);
    if (!backend.ok()) return backend.error();
    d->backends_.emplace(name, std::move(backend).value());
  }
  return d;
}

Dispatcher::~Dispatcher() {
  // Backends may report while they stop: Forward must still find the dispatcher whole.
  for (auto& [name, backend] : backends_) backend.reset();
}

sched::RunnerBackend* Dispatcher::OwnerOf(int64_t runner_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(runner_id);
  return it == live_.end() ? nullptr : it->second;
}

Status Dispatcher::Start(const sched::RunnerStartSpec& spec) {
  auto it = backends_.find(spec.kind);
  if (it == backends_.end() || !it->second) {
    return Error(ErrorKind::kBadInput, "unknown_runner_kind",
                 "model " + spec.model + " names runner kind '" + spec.kind +
                     "', which this server does not have");
  }
  {
    // Live before Start: its first events may come before Start returns.
    std::lock_guard<std::mutex> lock(mu_);
    live_[spec.runner_id] = it->second.get();
  }
  Status st = it->second->Start(spec);
  if (!st) {
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(spec.runner_id);
  }
  return st;
}

Status Dispatcher::SendJob(int64_t runner_id, const sched::JobRunSpec& job) {
  auto* owner = OwnerOf(runner_id);
  if (!owner) return Error(ErrorKind::kNotFound, "runner_not_found", "no such runner");
  return owner->SendJob(runner_id, job);
}

void Dispatcher::Cancel(int64_t runner_id, const std::string& job_id) {
  if (auto* owner = OwnerOf(runner_id)) owner->Cancel(runner_id, job_id);
}

Status Dispatcher::Feed(int64_t runner_id, const std::string& job_id, const nlohmann::json& input) {
  auto* owner = OwnerOf(runner_id);
  if (!owner) return Error(ErrorKind::kNotFound, "runner_not_found", "no such runner");
  return owner->Feed(runner_id, job_id, input);
}

Status Dispatcher::SetStreams(int64_t runner_id, int streams) {
  auto* owner = OwnerOf(runner_id);
  if (!owner) return Error(ErrorKind::kNotFound, "runner_not_found", "no such runner");
  return owner->SetStreams(runner_id, streams);
}

void Dispatcher::Stop(int64_t runner_id) {
  if (auto* owner = OwnerOf(runner_id)) owner->Stop(runner_id);
}

size_t Dispatcher::live_runners() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_.size();
}

void Dispatcher::Forward(sched::BackendEvent event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(event.runner_id);
    if (it == live_.end()) return;  // not started here, or exited already
    if (event.kind == sched::BackendEvent::Kind::kExited) live_.erase(it);
  }
  if (sink_) sink_(std::move(event));
}

}  // namespace steno::runners
