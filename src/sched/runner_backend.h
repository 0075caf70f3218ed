// The runner factory seam (Ollama's newServerFn): how the scheduler starts, feeds and stops
// runners. The real backend (process_backend.h) drives `steno runner` processes; the simulated
// one (simulated_backend.h) completes jobs after a virtual duration on a fake memory ledger.
//
// Every call is made from the scheduler's thread and must not block for long. Everything a
// runner reports comes back as a BackendEvent through the sink given at construction, from any
// thread; the scheduler posts it to its queue. Contract, per runner:
//   Start → kReady (or kError without job_id, then kExited) ... → Stop → kExited, exactly once.
//   Each SendJob ends in exactly one kDone or kError carrying its job_id (a dying runner fails
//   its jobs with kind "crash" before its kExited).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace steno::sched {

struct BackendEvent {
  enum class Kind { kReady, kProgress, kSegment, kDone, kError, kExited };
  Kind kind = Kind::kReady;
  int64_t runner_id = 0;
  std::string job_id;         // kProgress, kSegment, kDone, kError (empty: the runner itself)
  std::string error_kind;     // kError: runner/messages.h kinds ("oom", "bad_input", "crash", ...)
  std::string message;        // kError, kExited: why
  int64_t weights_bytes = 0;  // kReady: measured (0 = not measured)
  int64_t stream_bytes = 0;   // kReady: measured per stream
  int pid = 0;                // kReady: the runner's process (0: none), so the device's
                              // per-process list attributes its memory to us, not to a tenant
  int percent = 0;            // kProgress
  nlohmann::json payload;     // kSegment: the segment; kDone: the result
};

using BackendSink = std::function<void(BackendEvent)>;

struct RunnerStartSpec {
  int64_t runner_id = 0;
  std::string model;       // as the job named it
  std::string model_path;  // resolved file
  std::string device;      // "cpu" or "cuda:N"
  int streams = 1;
  int64_t weights_bytes = 0;  // the scheduler's estimate (the simulation charges it)
  int64_t stream_bytes = 0;
};

struct JobRunSpec {
  std::string job_id;
  std::string audio_path;
  // The name the user gave the audio (an upload's file name; empty: audio_path's own): shown in
  // messages about it, and its extension tells FFmpeg a headerless format (audio/probe.h).
  std::string audio_name;
  nlohmann::json params;  // decode parameters, as the runner protocol carries them
  int timeout_s = 0;      // 0: none
};

class RunnerBackend {
 public:
  virtual ~RunnerBackend() = default;
  virtual Status Start(const RunnerStartSpec& spec) = 0;
  virtual Status SendJob(int64_t runner_id, const JobRunSpec& job) = 0;
  // Asks the runner to abort a job; its kError (kind "cancelled") or kDone follows.
  virtual void Cancel(int64_t runner_id, const std::string& job_id) = 0;
  virtual Status SetStreams(int64_t runner_id, int streams) = 0;
  // Unloads the runner; its kExited follows.
  virtual void Stop(int64_t runner_id) = 0;
};

}  // namespace steno::sched
