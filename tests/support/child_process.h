// A real child process a test starts, signals and waits for, without blocking on it (RunProcess
// in process.h runs one to completion). Its stdout and stderr go to files the test can read while
// it runs. The destructor SIGKILLs it if it is still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace steno::test {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with the environment plus `env`; output goes to `out_path` and
  // `err_path` (created or truncated).
  ChildProcess(const std::vector<std::string>& argv, const std::string& out_path,
               const std::string& err_path,
               const std::vector<std::pair<std::string, std::string>>& env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool Signal(int sig) const;
  // The exit status (128 + signal when killed by one), or nullopt if it is still running after
  // `timeout`. Once it returned a value, later calls return the same value.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

  // Live processes whose parent is this child (e.g. steno's runners), found through /proc.
  std::vector<pid_t> Children() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Live processes whose parent is `parent`, found through /proc.
std::vector<pid_t> ChildrenOf(pid_t parent);

// Whether a process with this pid exists and is not a zombie.
bool ProcessAlive(pid_t pid);

// Whether every one of `pids` has exited within `within`.
bool AllExited(const std::vector<pid_t>& pids, std::chrono::milliseconds within);

// Polls `done` every 10 ms until it holds or `timeout` passes; returns its last value.
template <class F>
bool WaitUntil(F done, std::chrono::milliseconds timeout);

}  // namespace steno::test

#include <thread>

template <class F>
bool steno::test::WaitUntil(F done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}
