// The server kind's RunnerBackend: each runner is one model server process tree
// (server_runner.h), its model's declaration read when it starts (so a reloaded config applies
// to the next start). Every call returns at once; starting, health checks, unloading and
// verifying the release run on each runner's own thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "runners/kind_registry.h"
#include "runners/server/server_model.h"
#include "sched/runner_backend.h"

namespace steno::runners {

class ServerRunner;

struct ServerBackendOptions {
  // The current declaration of a server model by name (nullopt: none).
  std::function<std::optional<ServerModel>(const std::string& name)> find_model;
  std::string host = "127.0.0.1";
};

class ServerBackend final : public sched::RunnerBackend {
 public:
  ServerBackend(ServerBackendOptions options, KindContext context);
  ~ServerBackend() override;  // stops every runner and waits until each server is gone

  // kNotFound "server_model_not_found" for a model not declared (any more); kBadInput
  // "bad_placeholder" / "bad_command" for a command that cannot be expanded. Otherwise the
  // server starts on the runner's thread and reports kReady, or kError then kExited.
  Status Start(const sched::RunnerStartSpec& spec) override;
  Status SendJob(int64_t runner_id, const sched::JobRunSpec& job) override;
  void Cancel(int64_t runner_id, const std::string& job_id) override;
  Status SetStreams(int64_t runner_id, int streams) override;
  void Stop(int64_t runner_id) override;

 private:
  std::shared_ptr<ServerRunner> Find(int64_t runner_id);
  void ReapExited();  // frees runners that have reported kExited

  const ServerBackendOptions options_;
  const KindContext context_;
  std::mutex mu_;
  std::map<int64_t, std::shared_ptr<ServerRunner>> runners_;  // guarded by mu_
};

}  // namespace steno::runners
