#include "runners/server/server_backend.h"

#include <vector>

#include "runners/server/command_template.h"
#include "runners/server/server_runner.h"

namespace steno::runners {

ServerBackend::ServerBackend(ServerBackendOptions options, KindContext context)
    : options_(std::move(options)), context_(std::move(context)) {}

ServerBackend::~ServerBackend() {
  std::map<int64_t, std::shared_ptr<ServerRunner>> runners;
  {
    std::lock_guard<std::mutex> lock(mu_);
    runners.swap(runners_);
  }
  for (auto& [id, r] : runners) r->Stop();  // all at once: their stop timeouts overlap
  runners.clear();                          // each destructor waits for its server
}

std::shared_ptr<ServerRunner> ServerBackend::Find(int64_t runner_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = runners_.find(runner_id);
  return it == runners_.end() ? nullptr : it->second;
}

void ServerBackend::ReapExited() {
  std::vector<std::shared_ptr<ServerRunner>> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = runners_.begin(); it != runners_.end();) {
      if (it->second->exited()) {
        gone.push_back(std::move(it->second));
        it = runners_.erase(it);
      } else {
        ++it;
      }
    }
  }
  gone.clear();  // joins threads that have finished: returns at once
}

Status ServerBackend::Start(const sched::RunnerStartSpec& spec) {
  ReapExited();
  std::optional<ServerModel> model =
      options_.find_model ? options_.find_model(spec.model) : std::nullopt;
  if (!model) {
    return Error(ErrorKind::kNotFound, "server_model_not_found",
                 "no server model named " + spec.model + " is declared");
  }
  if (auto st = CheckCommandTemplate(model->command); !st) {
    return Error(ErrorKind::kBadInput, st.error().code,
                 "server model " + model->name + ": " + st.error().message);
  }
  auto runner = std::make_shared<ServerRunner>(
      ServerRunnerSetup{std::move(*model), spec, options_.host, context_});
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (runners_.count(spec.runner_id)) {
      return Error(ErrorKind::kBadInput, "duplicate_runner",
                   "runner " + std::to_string(spec.runner_id) + " exists already");
    }
    runners_[spec.runner_id] = runner;
  }
  runner->Launch();
  return {};
}

Status ServerBackend::SendJob(int64_t runner_id, const sched::JobRunSpec& job) {
  auto r = Find(runner_id);
  if (!r) return Error(ErrorKind::kNotFound, "runner_not_found", "no such runner");
  return r->Send(job);
}

void ServerBackend::Cancel(int64_t runner_id, const std::string& job_id) {
  if (auto r = Find(runner_id)) r->Cancel(job_id);
}

Status ServerBackend::SetStreams(int64_t runner_id, int streams) {
  auto r = Find(runner_id);
  if (!r) return Error(ErrorKind::kNotFound, "runner_not_found", "no such runner");
  return r->SetStreams(streams);
}

void ServerBackend::Stop(int64_t runner_id) {
  if (auto r = Find(runner_id)) r->Stop();
}

}  // namespace steno::runners
