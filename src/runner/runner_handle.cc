#include "runner/runner_handle.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include <spdlog/spdlog.h>

#include "core/paths.h"
#include "runner/messages.h"

extern char** environ;

namespace steno::runner {
namespace {

// The nice value runners are scheduled at, below the supervisor, when they are
// (RunnerOptions::lower_priority).
constexpr int kRunnerNice = 5;

using Clock = std::chrono::steady_clock;

// The child's environment: ours, with the options' additions replacing same-named entries.
std::vector<std::string> ChildEnvironment(const RunnerOptions& options) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [k, v] : options.env) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

}  // namespace

Result<std::unique_ptr<RunnerHandle>> RunnerHandle::Start(const RunnerOptions& options,
                                                          EventFn on_event) {
  const std::string exe = options.exe.empty() ? RunnerProgram() : options.exe;
  if (exe.empty() || access(exe.c_str(), X_OK) != 0) {
    return Error(ErrorKind::kInternal, "runner_exe", "cannot execute the runner binary " + exe);
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return Error(ErrorKind::kInternal, "socketpair", std::strerror(errno));
  }
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<std::string> env_strings = ChildEnvironment(options);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string arg0 = "steno-runner", arg1 = "runner", arg2 = "--fd", arg3 = "3";
  char* argv[] = {arg0.data(), arg1.data(), arg2.data(), arg3.data(), nullptr};
  const pid_t parent = getpid();
  const bool lower_priority = options.lower_priority;

  const pid_t pid = fork();
  if (pid < 0) {
    close(sv[0]);
    close(sv[1]);
    return Error(ErrorKind::kInternal, "fork", std::strerror(errno));
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before the line above
    // Inference below the supervisor: on a busy CPU the API's and scheduler's short requests
    // must not queue behind decoding threads (their latency, not throughput, is what suffers).
    if (lower_priority) (void)setpriority(PRIO_PROCESS, 0, kRunnerNice);
    if (dup2(sv[1], 3) < 0) _exit(127);  // dup2 clears close-on-exec on descriptor 3
    execve(exe.c_str(), argv, envp.data());
    _exit(127);
  }
  close(sv[1]);
  setpgid(pid, pid);  // also here, so a Kill() right after Start() finds the group

  std::unique_ptr<RunnerHandle> h(new RunnerHandle());
  h->pid_ = pid;
  h->fd_ = sv[0];
  h->writer_ = std::make_unique<FrameWriter>(sv[0]);
  h->on_event_ = std::move(on_event);
  // A failed send means the child already died; the reader reports how.
  nlohmann::json load = {{"type", "load"},
                         {"model", options.model_path},
                         {"device", options.device},
                         {"streams", options.streams},
                         {"threads", options.threads},
                         {"flash_attn", options.flash_attn},
                         {"dtw_words", options.dtw_words},
                         {"warmup", options.warmup},
                         {"heartbeat_ms", options.heartbeat_ms}};
  for (const auto& [path, name] : options.prefetch) {
    load["prefetch"].push_back({{"path", path}, {"name", name}});
  }
  if (!options.sim_data_dir.empty()) {
    load["simulated"] = {{"data_dir", options.sim_data_dir}, {"device", options.sim_device}};
  }
  (void)h->writer_->Write(load);
  h->reader_ = std::thread(&RunnerHandle::ReaderLoop, h.get(), options);
  return h;
}

RunnerHandle::~RunnerHandle() {
  if (!exited_) Kill("runner handle destroyed");
  if (reader_.joinable()) reader_.join();
  if (fd_ >= 0) close(fd_);
}

Status RunnerHandle::Send(const nlohmann::json& message, int fd) {
  if (message.value("type", "") == "transcribe") {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.insert(message.value("job_id", ""));
  }
  return writer_->Write(message, fd);
}

void RunnerHandle::Kill(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (reaped_) return;  // the pid may belong to someone else by now
  if (kill_reason_.empty()) kill_reason_ = reason;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
}

void RunnerHandle::WaitExited() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return exited_.load(); });
}

void RunnerHandle::Stop(std::chrono::milliseconds grace) {
  (void)Send({{"type", "exit"}});
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, grace, [this] { return exited_.load(); })) return;
  }
  Kill("did not exit within " + std::to_string(grace.count()) + " ms of the exit request");
  WaitExited();
}

void RunnerHandle::ReaderLoop(RunnerOptions options) {
  FrameReader reader(fd_);
  bool got_first = false;
  auto last_heard = Clock::now();
  for (;;) {
    auto m = reader.Read(100);
    if (m) {
      got_first = true;
      last_heard = Clock::now();
      const std::string type = (*m).value("type", "");
      if (type == "done" || type == "error") {
        std::lock_guard<std::mutex> lock(mu_);
        in_flight_.erase((*m).value("job_id", ""));
      }
      on_event_(RunnerEvent{RunnerEvent::Kind::kMessage, std::move(m).value(), -1, 0, ""});
      continue;
    }
    const std::string& code = m.error().code;
    if (code == "timeout") {
      const int limit = got_first ? options.heartbeat_timeout_ms : options.load_timeout_ms;
      if (Clock::now() - last_heard > std::chrono::milliseconds(limit)) {
        Kill("no message from the runner for " + std::to_string(limit) + " ms");
        last_heard = Clock::now();  // the socket closes as the kill lands
      }
      continue;
    }
    if (code != "peer_closed") {
      spdlog::error("runner {}: {}; killing it", pid_, m.error().message);
      Kill("protocol violation: " + m.error().message);
    }
    break;
  }
  Reap();
}

// The runner closed its end: it has exited or is about to. Reap it, killing it if it lingers.
void RunnerHandle::Reap() {
  int status = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  pid_t r;
  while ((r = waitpid(pid_, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
    usleep(2000);
  }
  if (r == 0) {
    Kill("closed its connection but did not exit");
    r = waitpid(pid_, &status, 0);
  }
  RunnerEvent ev;
  ev.kind = RunnerEvent::Kind::kExited;
  if (r == pid_ && WIFEXITED(status)) ev.exit_code = WEXITSTATUS(status);
  if (r == pid_ && WIFSIGNALED(status)) ev.signal = WTERMSIG(status);
  std::set<std::string> lost;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reaped_ = true;
    ev.reason = kill_reason_;
    lost.swap(in_flight_);
  }
  const std::string how = ev.signal ? "was killed by signal " + std::to_string(ev.signal)
                                    : "exited with code " + std::to_string(ev.exit_code);
  for (const auto& job_id : lost) {
    on_event_(RunnerEvent{
        RunnerEvent::Kind::kMessage,
        ErrorMessage(job_id, RunnerErrorKind::kCrash,
                     "the runner " + how + (ev.reason.empty() ? "" : " (" + ev.reason + ")")),
        -1, 0, ""});
  }
  on_event_(ev);
  {
    std::lock_guard<std::mutex> lock(mu_);
    exited_ = true;
  }
  cv_.notify_all();
}

}  // namespace steno::runner
