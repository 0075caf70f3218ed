// Starting a model server's process: fork and exec its command in a process group of its own,
// with its environment and working directory, its output captured.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/result.h"

namespace steno::runners {

struct ServerSpawn {
  std::vector<std::string> argv;  // argv[0]: a path, or a name looked up in PATH
  std::vector<std::pair<std::string, std::string>> env;  // added to ours, replacing same names
  std::string workdir;                                   // "": ours
};

// The server's stdout and stderr, read on a thread of its own: each line is logged (debug, with
// the model's name), and the last few KiB are kept for error messages.
class ServerOutput {
 public:
  ServerOutput(int fd, std::string name);
  ~ServerOutput();  // Finish(0)
  ServerOutput(const ServerOutput&) = delete;
  ServerOutput& operator=(const ServerOutput&) = delete;

  std::string Tail() const;  // the last lines read, trimmed to about 1 KiB
  // Waits up to `timeout` for the end of the output (every writer gone), then stops reading.
  void Finish(std::chrono::milliseconds timeout);

 private:
  void Read();

  const int fd_;
  const std::string name_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> eof_{false};
  mutable std::mutex mu_;
  std::string tail_;     // guarded by mu_
  std::string partial_;  // the line being read (reader thread only)
  std::thread reader_;
  bool closed_ = false;  // Finish's caller only
};

// Forks and execs the command: the child is the leader of a new process group (setpgid), gets
// SIGKILL when the calling thread ends (PR_SET_PDEATHSIG: call it from a thread that outlives
// the server), and writes its output to the pipe returned with it. A program that cannot be
// executed, or a workdir that cannot be entered, makes the child print why and exit with 127.
// kBadInput "server_program_not_found" when argv[0] names nothing executable.
struct SpawnedServer {
  pid_t pid = -1;
  int output_fd = -1;  // read end, close-on-exec; the caller owns it (ServerOutput)
};
Result<SpawnedServer> SpawnServer(const ServerSpawn& spawn);

// "exited with code N" or "killed by signal N (SIGKILL)", from a waitpid status.
std::string DescribeExit(int wait_status);

}  // namespace steno::runners
