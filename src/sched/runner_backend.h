// The runner seam (Ollama's newServerFn): the one interface through which the scheduler starts,
// feeds and stops runners of every kind. A runner is "a process (or process tree) that holds one
// model on one device and answers work items". Each kind implements this interface in its own
// folder (src/runners/whisper: `steno runner` processes); runners::Dispatcher hands each runner
// to its kind's backend, so the scheduler never knows which kind it drives. The scheduler's
// simulations implement it on a virtual clock (tests/sim).
//
// Every call is made from the scheduler's thread and must not block for long. Everything a
// runner reports comes back as a BackendEvent through the sink given at construction, from any
// thread; the scheduler posts it to its queue. Contract, per runner:
//   Start (on a device, within the memory budget of RunnerStartSpec) → kReady with the measured
//   footprint and the processes that hold it (or kError without job_id, then kExited) → SendJob /
//   Cancel work items → Stop → the release verified on the device → kExited, exactly once.
//   A Start that returns an error reports nothing. Each SendJob that returns OK ends in exactly
//   one kDone or kError carrying its job_id (a dying runner fails its jobs with kind kCrash
//   before its kExited); nothing follows kExited.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/result.h"
#include "runner/messages.h"

namespace steno::audio {
class SharedPcm;  // audio/shared_pcm.h
}  // namespace steno::audio

namespace steno::sched {

using runner::RunnerErrorKind;

struct BackendEvent {
  // kProcesses: the runner's process set changed while loaded (a server forked or lost a
  // worker); `pids` is the whole new set. Kinds whose runner is one process never send it.
  enum class Kind { kReady, kProgress, kSegment, kDone, kError, kExited, kProcesses };
  Kind kind = Kind::kReady;
  int64_t runner_id = 0;
  std::string job_id;  // kProgress, kSegment, kDone, kError (empty: the runner itself)
  RunnerErrorKind error_kind = RunnerErrorKind::kInternal;  // kError
  std::string message;                                      // kError, kExited: why
  int64_t weights_bytes = 0;                                // kReady: measured (0 = not measured)
  int64_t stream_bytes = 0;                                 // kReady: measured per stream
  // kReady, kProcesses: the processes that hold the runner's memory, as the kind counts them (its
  // child; a server's whole process tree). The device's per-process list credits their memory to
  // this runner, not to another tenant. Empty: none known (the ledger then counts it cautiously).
  std::vector<int> pids;
  int percent = 0;         // kProgress
  nlohmann::json payload;  // kSegment: the segment; kDone: the result
};

using BackendSink = std::function<void(BackendEvent)>;

// How a runner loads its model beyond naming the file, as the model's resolver (ModelInfoFn)
// says. The same file loaded another way is another model to the scheduler (a variant under its
// own name: models/model_variant.h), so the runners of one model all load it the same way.
struct RunnerLoadOptions {
  bool dtw_words = false;  // the whisper kind: words timed by DTW (flash attention off)
  bool operator==(const RunnerLoadOptions&) const = default;
};

struct RunnerStartSpec {
  int64_t runner_id = 0;
  std::string model;       // as the job named it
  std::string model_path;  // the local file the kind loads ("" for kinds that need none)
  std::string device;      // "cpu" or "cuda:N"
  int streams = 1;
  // The memory budget: what the scheduler's ledger charges for this runner (a simulated card
  // charges it; a kind that can bound its process passes it on).
  int64_t weights_bytes = 0;
  int64_t stream_bytes = 0;
  std::string kind;  // the model's runner kind ("whisper", ...): the dispatcher routes on it
  RunnerLoadOptions load{};  // the model's (ModelSpec::load)
};

// A work item's input as a reference the kind reads: a local file, and/or the blob store's
// content address, with the name the user gave it. Not necessarily a local path: a kind that
// forwards requests elsewhere may need only the digest.
struct BlobRef {
  std::string path;    // a local file holding the input ("": none here)
  std::string digest;  // the blob store's content address ("": not a stored blob, e.g. a CLI file)
  // The name the user gave it (an upload's file name; empty: the path's own): shown in messages
  // about it, and its extension tells FFmpeg a headerless format (audio/probe.h).
  std::string name;
  // The input already decoded (a synchronous request's, decoded once by the server), for kinds
  // that take samples (the whisper runner): they need not open, probe and decode `path` again.
  // Others read `path`, which is still set. Null: decode `path`.
  std::shared_ptr<const audio::SharedPcm> pcm = nullptr;
};

struct JobRunSpec {
  std::string job_id;
  BlobRef input;
  nlohmann::json params;  // decode parameters, as the runner protocol carries them
  int timeout_s = 0;      // 0: none
  int threads = 0;        // on the CPU: the threads it may use (CpuThreadsFor); 0: the default
};

class RunnerBackend {
 public:
  virtual ~RunnerBackend() = default;
  virtual Status Start(const RunnerStartSpec& spec) = 0;
  virtual Status SendJob(int64_t runner_id, const JobRunSpec& job) = 0;
  // Asks the runner to abort a job; its kError (kind kCancelled) or kDone follows.
  virtual void Cancel(int64_t runner_id, const std::string& job_id) = 0;
  // Hands more input to a job the runner is running: a live session's audio and controls
  // (core/live_items.h: live::Input as JSON), in the order given. The job's events come back as
  // kSegment payloads and it ends, as any job, with one kDone or kError. A kind that runs no
  // live work keeps this default: kBadInput "live_unsupported".
  virtual Status Feed(int64_t runner_id, const std::string& job_id, const nlohmann::json& input);
  virtual Status SetStreams(int64_t runner_id, int streams) = 0;
  // Unloads the runner; its kExited follows once its release was checked.
  virtual void Stop(int64_t runner_id) = 0;
};

inline Status RunnerBackend::Feed(int64_t, const std::string&, const nlohmann::json&) {
  return Error(ErrorKind::kBadInput, "live_unsupported",
               "this kind of runner does not run live sessions");
}

}  // namespace steno::sched
