#include "runners/server/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include <spdlog/spdlog.h>

extern char** environ;

namespace steno::runners {
namespace {

constexpr size_t kTailBytes = 1024;

// argv[0] as a path execve takes: itself when it holds a '/', else the first executable of
// that name in PATH (looked up here: after fork only async-signal-safe calls are allowed).
std::string ResolveProgram(const std::string& name,
                           const std::vector<std::pair<std::string, std::string>>& env) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  std::string path;
  if (const char* p = getenv("PATH")) path = p;
  for (const auto& [k, v] : env) {
    if (k == "PATH") path = v;
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    const std::string dir = end > start ? path.substr(start, end - start) : ".";
    const std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

std::vector<std::string> Environment(const std::vector<std::pair<std::string, std::string>>& add) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [k, v] : add) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

void WriteAll(int fd, const char* text) {
  size_t left = std::strlen(text);
  while (left > 0) {
    const ssize_t n = write(fd, text, left);
    if (n <= 0) return;
    text += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

ServerOutput::ServerOutput(int fd, std::string name) : fd_(fd), name_(std::move(name)) {
  reader_ = std::thread([this] { Read(); });
}

ServerOutput::~ServerOutput() {
  Finish(std::chrono::milliseconds(0));
}

void ServerOutput::Read() {
  char buf[4096];
  while (!stop_.load()) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = read(fd_, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break;
    std::string chunk(buf, static_cast<size_t>(n));
    {
      std::lock_guard<std::mutex> lock(mu_);
      tail_ += chunk;
      if (tail_.size() > 2 * kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
    }
    partial_ += chunk;
    for (size_t nl; (nl = partial_.find('\n')) != std::string::npos;) {
      spdlog::debug("[{}] {}", name_, partial_.substr(0, nl));
      partial_.erase(0, nl + 1);
    }
  }
  eof_.store(true);
}

std::string ServerOutput::Tail() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string t = tail_.size() > kTailBytes ? tail_.substr(tail_.size() - kTailBytes) : tail_;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

void ServerOutput::Finish(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!eof_.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop_.store(true);
  if (reader_.joinable()) reader_.join();
  if (fd_ >= 0 && !closed_) {
    close(fd_);
    closed_ = true;
  }
}

Result<SpawnedServer> SpawnServer(const ServerSpawn& spawn) {
  if (spawn.argv.empty()) return Error(ErrorKind::kBadInput, "bad_command", "empty command");
  const std::string program = ResolveProgram(spawn.argv[0], spawn.env);
  if (program.empty()) {
    return Error(ErrorKind::kBadInput, "server_program_not_found",
                 "cannot execute " + spawn.argv[0] + ": not found or not executable");
  }
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<std::string> env_strings = Environment(spawn.env);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spawn.argv;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string exec_failed = "steno: cannot execute " + program + "\n";
  const std::string chdir_failed = "steno: cannot enter the workdir " + spawn.workdir + "\n";
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Error(ErrorKind::kInternal, "pipe", std::strerror(errno));
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(out[0]);
    close(out[1]);
    return Error(ErrorKind::kInternal, "fork", std::strerror(errno));
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before the line above
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out[1], 1);  // dup2 clears close-on-exec on the copies
    dup2(out[1], 2);
    if (!spawn.workdir.empty() && chdir(spawn.workdir.c_str()) != 0) {
      WriteAll(2, chdir_failed.c_str());
      _exit(127);
    }
    execve(program.c_str(), argv.data(), envp.data());
    WriteAll(2, exec_failed.c_str());
    _exit(127);
  }
  setpgid(pid, pid);  // also here, so signals sent right after the fork find the group
  close(out[1]);
  return SpawnedServer{pid, out[0]};
}

std::string DescribeExit(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    const char* name = sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) +
           (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "exited with code " + std::to_string(WEXITSTATUS(wait_status));
}

}  // namespace steno::runners
