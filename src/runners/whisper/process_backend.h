// The whisper kind's RunnerBackend: each runner is a `steno runner` child process (whisper.cpp;
// runner/runner_handle.h) that loads a ggml file and reads each job's input from a local file.
// A runner loads its model as its RunnerStartSpec::load says (DTW word timing or not).
//
// Frames from the runner become BackendEvents for the scheduler (its child's pid is the process
// that holds its memory); a job's JobParams (the user's request) become the runner's decode
// parameters on top of `decode_defaults`. Stop() unloads
// off the scheduler's thread (exit request, SIGKILL after the grace period, reap, and, when
// `devices` is given, the release verified on the device). Start() must be called from a
// long-lived thread (the scheduler's): a runner dies with the thread that started it.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "engine/decode_params.h"
#include "gpu/device.h"
#include "runner/release_check.h"
#include "sched/runner_backend.h"

namespace steno::runner {
class RunnerHandle;
}

namespace steno::runners {

using sched::BackendEvent;
using sched::BackendSink;
using sched::JobRunSpec;
using sched::RunnerStartSpec;

struct ProcessBackendOptions {
  std::string exe;                       // the runner program; empty: RunnerProgram()
  engine::DecodeParams decode_defaults;  // beam size, threads, thresholds, ...
  std::chrono::milliseconds grace{5000};
  int heartbeat_ms = 1000;
  gpu::DevicesFn devices;  // for verified release; empty: skip the check
  // Environment that pins a runner to device "cuda:N" (gpu::RunnerCudaEnvironment of its sample).
  std::function<std::vector<std::pair<std::string, std::string>>(const std::string& device)>
      env_for_device;
  std::string sim_data_dir;  // simulated GPUs: runners compute on the CPU and charge the card
  // Runners run one silent encoder pass per stream before `ready` (steady first-job latency and
  // a measured footprint that includes the compute buffers). A one-shot CLI run skips it: its
  // first job is the warm-up.
  bool warmup = true;
  // Inputs every runner decodes while its model loads (runner::RunnerOptions::prefetch): a
  // one-shot CLI run's files.
  std::vector<std::pair<std::string, std::string>> prefetch;
  // Runners scheduled below this process (runner::RunnerOptions::lower_priority); a one-shot
  // CLI run's are not.
  bool runners_lower_priority = true;
  // An unload whose release could not be verified (runner::UnloadRunner's alert), with the
  // runner's model and device. Called on the unloading thread.
  std::function<void(const std::string& model, const std::string& device,
                     const runner::ReleaseReport& report)>
      on_unreleased;
};

// The runner's decode parameters for one job: the defaults, then the request's own choices
// (language, task, prompt, temperature, word timestamps, and VAD: JobParams::vad). A live
// session's job (params "live") runs the same decode on each utterance, which the runner cuts
// itself: without the job's VAD, and with the session's language and prompt (SendJob sends its
// settings and the VAD model for that).
engine::DecodeParams DecodeParamsForJob(const engine::DecodeParams& defaults,
                                        const nlohmann::json& job_params);

class ProcessBackend : public sched::RunnerBackend {
 public:
  ProcessBackend(ProcessBackendOptions options, BackendSink sink);
  ~ProcessBackend() override;  // stops every runner and waits for them

  Status Start(const RunnerStartSpec& spec) override;
  Status SendJob(int64_t runner_id, const JobRunSpec& job) override;
  void Cancel(int64_t runner_id, const std::string& job_id) override;
  // A live session's input, as a `feed` frame (runner/protocol.h). kBadInput "input_too_large"
  // for input whose frame would pass the protocol's limit; kNotFound "runner_not_found".
  Status Feed(int64_t runner_id, const std::string& job_id, const nlohmann::json& input) override;
  Status SetStreams(int64_t runner_id, int streams) override;
  void Stop(int64_t runner_id) override;

 private:
  runner::RunnerHandle* Find(int64_t runner_id);
  void ReapFinished();  // frees handles of runners that have exited (never on their own thread)

  ProcessBackendOptions options_;
  BackendSink sink_;
  std::mutex mu_;
  std::map<int64_t, std::unique_ptr<runner::RunnerHandle>> runners_;
  std::map<int64_t, std::thread> stoppers_;   // unloads under way or finished, by runner id
  std::set<int64_t> stopping_;                // unloads still using their handle
  std::map<int64_t, std::string> device_of_;  // "cpu" or "cuda:N", as the scheduler placed it
  std::map<int64_t, std::string> model_of_;
};

}  // namespace steno::runners
