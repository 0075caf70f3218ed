// A runner kind that exists only in the tests: it shows that a kind is one backend plus one
// registration, driven by the real scheduler and Runtime like the whisper kind. An "echo" runner
// transcribes by echoing its input blob: the result's text is EchoText(input). It runs no
// process: every call answers at once through the sink (no threads), its runners report a
// declared footprint as measured and a process tree of fake pids, jobs can be held until the
// test finishes them (to watch admission with streams in use), and a runner can fork a worker
// that holds more memory (Fork: a server growing under load).
//
// Live sessions (a job whose params carry "live", core/live_items.h) are held until their kClose
// and answer Feed: the first audio of an utterance gives speech_started; a commit gives
// committed, one delta and completed, whose text is EchoLiveText(samples of the utterance, the
// first sample); an empty commit gives failed (item 0, "commit_empty"); clear forgets the
// utterance; close ends the job (kDone, {"text": "echo live: N samples"} with the session's
// total). With live_max_samples, audio beyond that many uncommitted samples is dropped with a
// failed event (item 0, "buffer_full"), as a runner that falls behind answers.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "runners/kind_registry.h"
#include "sched/runner_backend.h"

namespace steno::test {

inline constexpr const char* kEchoKind = "echo";

struct EchoKindOptions {
  int64_t weights_bytes = 0;     // reported as measured when a runner is ready
  int64_t stream_bytes = 0;      // per stream
  int pids_per_runner = 2;       // its process tree: EchoPid(runner id, 0..n−1)
  bool hold_jobs = false;        // jobs end only with FinishHeld()
  bool exit_twice = false;       // a careless kind: reports kExited twice for each Stop
  int64_t live_max_samples = 0;  // > 0: a live utterance holds at most this many samples
};

// A live utterance's transcript: "N samples, first F".
std::string EchoLiveText(int64_t samples, int first_sample);

// The fake pid of process `i` of runner `runner_id`'s tree.
int EchoPid(int64_t runner_id, int i);

// "echo NAME: CONTENT" (the file's first line; "blob DIGEST" without a local file). Error
// (bad_input) when the input names neither a file nor a blob, or its file cannot be read.
Result<std::string> EchoText(const sched::BlobRef& input);

class EchoBackend final : public sched::RunnerBackend {
 public:
  EchoBackend(EchoKindOptions options, sched::BackendSink sink);

  Status Start(const sched::RunnerStartSpec& spec) override;
  Status SendJob(int64_t runner_id, const sched::JobRunSpec& job) override;
  void Cancel(int64_t runner_id, const std::string& job_id) override;
  Status Feed(int64_t runner_id, const std::string& job_id, const nlohmann::json& input) override;
  Status SetStreams(int64_t runner_id, int streams) override;
  void Stop(int64_t runner_id) override;

  // Ends every held job with its result.
  void FinishHeld();
  // Runner `runner_id` forks a worker (the next EchoPid of its tree) that holds `bytes`, and
  // reports its whole new process set (kProcesses). Returns the worker's pid; 0 for no such
  // runner.
  int Fork(int64_t runner_id, int64_t bytes);

  struct Runner {
    int64_t id = 0;
    sched::RunnerStartSpec spec;
    int streams = 1;
    std::vector<int> pids;
    int64_t bytes() const;  // what its processes hold: measured weights + streams × stream +
                            // what its workers hold
    int64_t weights_bytes = 0, stream_bytes = 0;
    std::vector<std::pair<int, int64_t>> workers;  // forked: (pid, bytes it holds)
  };
  std::vector<Runner> live() const;  // started and not stopped, by id
  int starts() const;
  int exits_reported() const;  // kExited events this backend emitted

 private:
  void Emit(std::vector<sched::BackendEvent> events);

  const EchoKindOptions options_;
  const sched::BackendSink sink_;
  mutable std::mutex mu_;
  std::map<int64_t, Runner> runners_;
  std::map<std::string, std::pair<int64_t, sched::JobRunSpec>> held_;  // job id → (runner, job)
  struct LiveJob {
    int64_t runner_id = 0;
    int64_t total = 0;      // samples received
    int64_t utterance = 0;  // samples since the last commit or clear
    int first = 0;          // the utterance's first sample
    int64_t start = 0;      // the utterance's first sample's index
    int64_t item = 0;       // the last item committed
  };
  std::map<std::string, LiveJob> live_;  // live sessions' jobs
  int starts_ = 0;
  int exits_ = 0;
};

// The echo kind's registration: its factory. `made`, if given, is set to the backend it builds
// (owned by the dispatcher), for the test to drive.
runners::KindFactory EchoKind(EchoKindOptions options, EchoBackend** made = nullptr);

}  // namespace steno::test
