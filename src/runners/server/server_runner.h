// One runner of the server kind: one model server's process tree on one device, from start to
// verified release. Its lifecycle runs on a thread of its own (which forks the server, so the
// server gets SIGKILL should that thread, i.e. steno, die):
//   spawn (own process group; the model's env + the device's; STENO_SIM_DATA_DIR and
//   STENO_SIM_DEVICE on simulated GPUs) → poll the health check until it answers as declared →
//   kReady (pids: the whole tree; weights_bytes: what the tree holds on the device, 0 if unknown)
//   → watch the tree every 200 ms (kProcesses when its pids change; work items past their
//   timeout aborted) → on Stop: SIGTERM to the group and every process of the tree, SIGKILL
//   after the model's stop_timeout, wait until no process of the tree is left, verify the
//   device's release (KindContext::on_unreleased when it fails) → kExited, exactly once.
// A server that never answers its health check within ready_timeout, or exits before, fails the
// load (kError without job id, naming the model and the last answer) and leaves nothing running.
// A server whose leader dies while loaded crashed: the rest of the tree is killed, every work
// item in flight fails with kCrash, then kExited.
//
// Work items run one request each on a thread of their own (server_tasks.h); Cancel aborts the
// request (kCancelled). Every work item ends with exactly one kDone or kError before kExited.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/result.h"
#include "runners/kind_registry.h"
#include "runners/server/process_tree.h"
#include "runners/server/server_model.h"
#include "runners/server/server_process.h"
#include "runners/server/server_tasks.h"
#include "sched/runner_backend.h"

namespace steno::runners {

struct ServerRunnerSetup {
  ServerModel model;
  sched::RunnerStartSpec spec;
  std::string host = "127.0.0.1";
  KindContext context;  // sink, devices, env_for_device, sim_data_dir, dirs, on_unreleased
};

class ServerRunner {
 public:
  explicit ServerRunner(ServerRunnerSetup setup);
  // Stops the server if it still runs and waits until it is gone (and kExited sent).
  ~ServerRunner();
  ServerRunner(const ServerRunner&) = delete;
  ServerRunner& operator=(const ServerRunner&) = delete;

  void Launch();  // starts the lifecycle thread; call once
  // kUnavailable "runner_not_ready" before kReady or once stopping; "no_free_stream" when every
  // stream is busy. A task the protocol cannot serve is accepted and ends with kBadInput.
  Status Send(const sched::JobRunSpec& job);
  void Cancel(const std::string& job_id);
  // kBadInput "too_many_streams" above the model's `streams`.
  Status SetStreams(int streams);
  void Stop();
  bool exited() const;  // kExited was sent

 private:
  // One work item in flight (or held, for "proxy").
  struct Work {
    enum class Abort { kNone, kCancel, kTimeout };
    sched::JobRunSpec job;
    const TaskFn* fn = nullptr;
    bool proxy = false;
    std::shared_ptr<httplib::Client> client;  // null for proxy
    std::thread thread;
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    // Guarded by the runner's mu_:
    bool ended = false;        // its kDone or kError was sent (or is being sent)
    bool thread_done = false;  // its thread has nothing left to do
    Abort abort = Abort::kNone;
  };
  enum class Phase { kLoading, kReady, kStopping, kExited };
  enum class Health { kHealthy, kStopRequested, kLeaderExited, kTimedOut };

  void Lifecycle();
  void EmitLoadError(runner::RunnerErrorKind kind, const std::string& why);
  // A start that never turned healthy: the tree ended, kError, kExited.
  void FailLoad(Health health, const std::string& last_answer);
  void EndCrashed();  // the leader died while loaded: tree killed, work failed, kExited
  void Unload();      // Stop while loaded: terminate, fail what is left, verify, kExited
  Result<SpawnedServer> Spawn();
  Health WaitHealthy(std::string* last_answer);
  void Watch();       // while loaded: until Stop or the leader's exit
  bool ReapLeader();  // true once the leader has exited (and was reaped)
  void Terminate();   // SIGTERM, SIGKILL after stop_timeout, until no process is left
  void KillNow();     // SIGKILL, until no process is left
  int64_t TreeBytesOnDevice(int64_t* device_used) const;
  void VerifyRelease(int64_t used_before, int64_t held_before,
                     std::chrono::steady_clock::time_point unload_started);
  // Work items (server_work.cc).
  void RunWork(Work* work);
  // Claims the right to send the work item's end (kDone or kError): true once. Needs mu_.
  static bool ClaimEnd(Work* work);
  void EndWork(Work* work, sched::BackendEvent event);  // claims, then sends if it could
  void FailAllWork(const std::string& why);             // kCrash for each one not ended
  void JoinWork(bool all);  // joins finished work threads (all: every one, waiting)
  // Whether the leader is gone or exiting (checked for up to 500 ms), after a request lost its
  // connection: then the lifecycle fails the work item right before kExited.
  bool LeaderDying() const;
  void AbortOverdue();  // aborts requests past their timeout; re-aborts aborted ones
  void Emit(sched::BackendEvent event) const;
  void EmitExited(const std::string& why);

  const ServerRunnerSetup setup_;
  std::string endpoint_;  // "http://HOST:PORT" once spawned
  int port_ = 0;
  pid_t leader_ = -1;
  std::optional<int> leader_status_;  // waitpid status once reaped
  std::unique_ptr<TrackedTree> tree_;
  std::unique_ptr<ServerOutput> output_;
  int64_t baseline_used_ = -1;  // the device's used bytes before the start (-1: unknown)
  int device_index_ = -1;       // the CUDA ordinal of a GPU device (-1: the CPU)
  int physical_index_ = -1;
  std::string gpu_uuid_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Phase phase_ = Phase::kLoading;  // guarded by mu_
  bool stop_requested_ = false;    // guarded by mu_
  bool check_now_ = false;         // guarded by mu_: a work item lost its connection to the server
  int streams_ = 1;                // guarded by mu_
  std::map<std::string, std::unique_ptr<Work>> work_;  // guarded by mu_; by job id
  std::thread lifecycle_;
};

}  // namespace steno::runners
