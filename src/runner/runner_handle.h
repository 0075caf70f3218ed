// The supervisor's side of one runner process: start it, talk to it, learn how it ended.
//
// Start() forks and execs `steno-runner runner --fd 3` (or `steno runner --fd 3`: the same
// subcommand in the full program) with a socketpair, in its own process group, with
// PR_SET_PDEATHSIG(SIGKILL) (so it dies with the thread that started it: call Start from a
// long-lived thread, such as the scheduler's), with the given environment additions (e.g.
// CUDA_VISIBLE_DEVICES narrowed to its one card), then sends the `load` frame.
//
// A reader thread delivers every frame the runner sends, then exactly one kExited event once the
// process is gone and reaped (no zombie is left). Jobs sent with Send() that had no `done` or
// `error` when the runner died get an `error` frame of kind "crash" first, so every job ends. A
// runner silent for longer than heartbeat_timeout_ms, or one that breaks the protocol, is killed;
// its exit event says why. Events arrive on the reader thread: the callback must be quick and
// thread-safe (the scheduler posts them to its own queue).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "runner/protocol.h"

namespace steno::runner {

struct RunnerOptions {
  std::string exe;  // steno-runner or steno; empty: core/paths.h RunnerProgram()
  std::string model_path;
  std::string device = "cpu";  // as the runner sees it: "cpu" or "cuda:0" once narrowed
  int streams = 1;
  int threads = 1;  // threads for the warm-up pass
  bool flash_attn = true;
  bool dtw_words = false;  // words timed by DTW (engine::ModelOptions::dtw_words)
  bool warmup = true;      // a silent pass per stream before `ready` (see runner_main.h)
  // Inputs the runner decodes while its model loads (path, name), for jobs known in advance (a
  // one-shot CLI run): their decode overlaps the load instead of following it.
  std::vector<std::pair<std::string, std::string>> prefetch;
  int heartbeat_ms = 1000;
  // A simulated device (gpu/simulated_devices.h) that the runner charges what it holds: the
  // weights (tensor bytes from the file header) before loading, each stream's reported size as
  // it is created. The device refuses what does not fit, and the runner reports `oom`.
  std::string sim_data_dir;          // empty: not simulated
  int sim_device = -1;               // physical index of the simulated card
  int heartbeat_timeout_ms = 10000;  // after the first frame; silence longer than this kills
  int load_timeout_ms = 600000;      // before the first frame (ready or error)
  std::vector<std::pair<std::string, std::string>> env;  // added to the runner's environment
  // The runner is scheduled below the supervisor (at nice 5), so that on a busy CPU the API's and
  // scheduler's short requests do not queue behind decoding threads. False: at the supervisor's
  // own priority, for a one-shot CLI run, whose supervisor serves no requests.
  bool lower_priority = true;
};

struct RunnerEvent {
  enum class Kind { kMessage, kExited };
  Kind kind = Kind::kMessage;
  nlohmann::json message;  // kMessage: the frame
  int exit_code = -1;      // kExited: exit status, or -1 when killed by a signal
  int signal = 0;          // kExited: the signal that ended it, 0 if none
  std::string reason;      // kExited: why the supervisor ended it, if it did
};

class RunnerHandle {
 public:
  using EventFn = std::function<void(const RunnerEvent&)>;

  static Result<std::unique_ptr<RunnerHandle>> Start(const RunnerOptions& options,
                                                     EventFn on_event);
  // Kills the runner if it still runs and waits for the reader thread (and so the reap).
  ~RunnerHandle();
  RunnerHandle(const RunnerHandle&) = delete;
  RunnerHandle& operator=(const RunnerHandle&) = delete;

  pid_t pid() const { return pid_; }
  bool exited() const { return exited_.load(); }

  // kUnavailable "peer_closed" once the runner is gone. `fd` >= 0: the frame carries a copy of
  // that descriptor (protocol.h).
  Status Send(const nlohmann::json& message, int fd = -1);

  // Unload: sends `exit`, waits up to `grace` for the process to end, then SIGKILLs its process
  // group. Returns when it has been reaped (the kExited event has been delivered).
  void Stop(std::chrono::milliseconds grace);

  // SIGKILL to the runner's process group, now. The kExited event follows.
  void Kill(const std::string& reason);

  // Waits until the kExited event has been delivered. Never call from the event callback.
  void WaitExited();

 private:
  RunnerHandle() = default;
  void ReaderLoop(RunnerOptions options);
  void Reap();

  pid_t pid_ = -1;
  int fd_ = -1;
  std::unique_ptr<FrameWriter> writer_;
  EventFn on_event_;
  std::thread reader_;
  std::mutex mu_;  // guards the fields below and orders Kill() against the reap
  std::condition_variable cv_;
  std::atomic<bool> exited_{false};
  bool reaped_ = false;
  std::string kill_reason_;
  std::set<std::string> in_flight_;  // job ids sent and not yet done or failed
};

}  // namespace steno::runner
