// Runner kinds by name: how the Runtime builds a backend for each kind of runner (the whisper
// kind's `steno runner` processes; later managed model servers), and what every kind is given.
//
// A kind is one folder under src/runners/ that implements sched::RunnerBackend, plus one
// registration (a name and a KindFactory) in server/runtime.cc's built-in kinds. The model
// catalog (models/model_catalog.h) names each model's kind; the Dispatcher (dispatcher.h) hands
// each runner to its kind's backend. Nothing in the scheduler, the API or the store names a kind.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "gpu/device.h"
#include "runner/release_check.h"
#include "sched/runner_backend.h"

namespace steno::runners {

// What the Runtime gives every kind's backend.
struct KindContext {
  sched::BackendSink sink;  // where its runners' events go (any thread)
  gpu::DevicesFn devices;   // the devices in use, for verified release; empty: CPU only
  // Environment that pins a process to device "cuda:N" (gpu::RunnerCudaEnvironment of its card);
  // empty on simulated GPUs and the CPU.
  std::function<std::vector<std::pair<std::string, std::string>>(const std::string& device)>
      env_for_device;
  std::string sim_data_dir;  // simulated GPUs: runners compute on the CPU and charge the card
  std::string models_dir;    // where the server's models live ({models_dir} in server commands)
  std::string results_dir;   // where a kind writes results that are files (speech audio)
  std::chrono::milliseconds grace{5000};  // how long an unloading runner may take to exit
  // An unload whose release could not be verified, with the runner's model and device. Called
  // on the unloading thread.
  std::function<void(const std::string& model, const std::string& device,
                     const runner::ReleaseReport& report)>
      on_unreleased;
};

// Builds a kind's backend. Called once, when the Runtime starts; an error fails the start.
using KindFactory =
    std::function<Result<std::unique_ptr<sched::RunnerBackend>>(const KindContext& context)>;

class KindRegistry {
 public:
  // kBadInput "bad_runner_kind" for an empty name or factory, "duplicate_runner_kind" for a name
  // registered already.
  Status Add(const std::string& name, KindFactory factory);
  // nullptr when no kind has that name.
  const KindFactory* Find(const std::string& name) const;
  std::vector<std::string> Names() const;  // sorted

 private:
  std::map<std::string, KindFactory> kinds_;
};

}  // namespace steno::runners
