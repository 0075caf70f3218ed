// The pieces every front end of steno assembles the same way: devices (NVML, simulated or none),
// the runner kinds (the built-in whisper kind, plus any in RuntimeOptions::extra_kinds) behind one
// dispatcher, the model catalog with its memory figures, and the scheduler on the real clock.
// `steno serve` (through JobService) and `steno transcribe` both run jobs through a Runtime: one
// code path.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/job.h"
#include "core/result.h"
#include "engine/decode_params.h"
#include "gpu/device.h"
#include "gpu/gpu_config.h"
#include "models/model_catalog.h"
#include "runner/release_check.h"
#include "runners/kind_registry.h"
#include "runners/server/server_model.h"
#include "sched/clock.h"
#include "sched/scheduler.h"

namespace steno::server {

struct RuntimeOptions {
  gpu::GpuConfig gpu;      // --device, --simulate-gpus, --reserve, --safety-factor, ...
  std::string models_dir;  // empty: steno::ModelsDir()
  std::string data_dir;    // simulated GPUs keep their state here; empty: steno::DataDir()
  sched::SchedulerConfig scheduler;      // the fields derived from `gpu` and decode_defaults
                                         // are filled in by SchedulerConfigFor (runtime_config.h)
  engine::DecodeParams decode_defaults;  // CPU threads a job uses at most, beam size, ...
  bool warmup = true;                    // runners run one encoder pass before `ready`
  // Every whisper runner loads its model to time words by DTW (engine::ModelOptions::dtw_words:
  // flash attention off, for every job of the runner) where the model's dimensions match an
  // alignment-heads preset. Without it, only the jobs that ask for words run on such runners:
  // their model's DTW variant (SchedulerModel).
  bool dtw_words = false;
  // Inputs (path, name) whisper runners decode while their model loads: a one-shot run's files,
  // known before any runner starts (runners::WhisperKindOptions::prefetch).
  std::vector<std::pair<std::string, std::string>> prefetch_inputs;
  // Whisper runners scheduled below this process, so that its API stays responsive on a busy
  // CPU (runner::RunnerOptions::lower_priority). A one-shot CLI run, which serves no requests,
  // runs them at its own priority, as whisper-cli runs.
  bool runners_lower_priority = true;
  // How long an unloading runner may take to exit before it is killed (SIGKILL).
  std::chrono::milliseconds runner_grace{5000};
  std::string runner_exe;            // empty: core/paths.h RunnerProgram()
  std::vector<std::string> preload;  // models loaded at start and kept loaded
  // Whether a model may be named by a path (the CLI: yes; a server's clients: only names of
  // models in models_dir, so a request cannot make a runner open an arbitrary file).
  bool allow_model_paths = false;
  // An unload whose memory release was not verified (runners::KindContext::on_unreleased).
  std::function<void(const std::string& model, const std::string& device,
                     const runner::ReleaseReport& report)>
      on_unreleased;
  // Runner kinds beside the built-in ones (each a name and its factory), and the models they
  // serve. A declared model's kind must be registered.
  std::vector<std::pair<std::string, runners::KindFactory>> extra_kinds;
  std::vector<models::DeclaredModel> declared_models;
  // Managed model servers ([[models]] tables of kind "server"; runners/server/server_model.h),
  // served by the built-in server kind and listed in the catalog beside declared_models. The
  // running set is Runtime::ReplaceServerModels's after a reload; this field keeps the start's.
  std::vector<runners::ServerModel> server_models;
};

// What Runtime::ReplaceServerModels changed, by name (each list sorted).
struct ServerModelChanges {
  std::vector<std::string> added, removed, changed;
  bool empty() const { return added.empty() && removed.empty() && changed.empty(); }
  // "added a, b; removed c; changed d" ("no change" when empty).
  std::string Summary() const;
};

// What stopping every runner returned, per device ("cpu", "cuda:0", ...).
struct DeviceRelease {
  std::string device;
  int runners = 0;
  int64_t ledger_bytes = 0;    // what the ledger held for those runners
  int64_t released_bytes = 0;  // device used memory before − after (GPUs); ledger bytes (CPU)
  int64_t leftover_bytes = 0;  // memory still charged to steno's runners after they exited
};
struct StopReport {
  std::vector<DeviceRelease> devices;
  int64_t duration_ms = 0;
  bool clean = true;  // every runner exited and no device shows memory left to steno
  // "released 9.8 GiB on cuda:0, 0 B on cpu in 420 ms" (or "no runners were loaded").
  std::string Summary() const;
};

class Runtime {
 public:
  // Opens the devices, builds every runner kind's backend and starts the scheduler. kBadInput
  // for a bad device selection (e.g. cuda:3 on a 2-GPU machine, or cuda with no GPU), a kind
  // registered twice ("duplicate_runner_kind") or a declared model of a kind that is not
  // ("unknown_runner_kind"); an unknown --preload model is kNotFound.
  static Result<std::unique_ptr<Runtime>> Start(RuntimeOptions options,
                                                sched::SchedulerHooks hooks);
  // Stops the scheduler and every runner (Stop(), if it was not called).
  ~Runtime();

  // Stops the scheduler and every runner; returns once every runner process has exited, with
  // what each device got back. The runtime is unusable afterwards (except devices()).
  StopReport Stop();

  sched::Scheduler& scheduler();
  gpu::Devices* devices();  // null: no GPU backend (CPU only)
  // Resolves a model name the way jobs do (models::ModelCatalog::Find): its kind, file and
  // memory figure (estimated from a whisper file, or declared), and how its runners load it.
  // A variant's key (models/model_variant.h) resolves to its model's entry loaded the variant's
  // way (kBadInput "no_dtw_variant" for a model of another kind than whisper).
  Result<sched::ModelSpec> ResolveModel(const std::string& name) const;
  // The model the scheduler runs `job` under (the one home of that choice): the DTW variant's
  // key when the job asks for words (JobParams::word_timestamps) of a whisper model whose
  // dimensions match an alignment-heads preset and RuntimeOptions::dtw_words is off; else the
  // job's model. The variant's runners are separate runners (own memory, keep-alive, eviction);
  // runners of the model itself keep flash attention.
  std::string SchedulerModel(const Job& job) const;
  const models::ModelCatalog& catalog() const;
  const RuntimeOptions& options() const;

  // The managed model server declared under `name` now (nullopt: none). The server kind reads
  // each model's declaration here at every start, so a start runs what is declared then.
  std::optional<runners::ServerModel> FindServerModel(const std::string& name) const;
  // Replaces the declared server models all at once (a config reload, SIGHUP). By name:
  //   added    in the catalog (GET /v1/models) from now on; loaded now if `preload`;
  //   removed  gone from the catalog; its runners finish the jobs they run, then stop (idle ones
  //            at once); its queued jobs fail with kNotFound "model_removed" (as they would at
  //            the next start, whose resubmission finds no such model);
  //   changed  (any field but `source`) the catalog shows the new declaration; its runners take
  //            no new work and stop once their jobs end, so the next work (queued jobs included)
  //            starts the new declaration; loaded again now if `preload`.
  // Unchanged models' runners are untouched (sched::Scheduler::Redeclare does the rest).
  // kBadInput "bad_models_config" (and nothing changes) for a name given twice or one that a
  // RuntimeOptions::declared_models entry has.
  Result<ServerModelChanges> ReplaceServerModels(std::vector<runners::ServerModel> models);

 private:
  struct Impl;
  explicit Runtime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace steno::server
