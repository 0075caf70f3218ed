#include "runners/server/server_runner.h"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <utility>
#include <vector>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "runner/release_check.h"
#include "runners/server/command_template.h"
#include "runners/server/server_tasks.h"

namespace steno::runners {

using Clock = std::chrono::steady_clock;
using sched::BackendEvent;
using namespace std::chrono_literals;

constexpr auto kWatchPeriod = 200ms;
constexpr auto kHealthPeriod = 50ms;
constexpr auto kGonePoll = 20ms;
constexpr auto kKillGiveUp = 30s;  // after SIGKILL: a process stuck in the kernel is left

ServerRunner::ServerRunner(ServerRunnerSetup setup) : setup_(std::move(setup)) {
  streams_ = std::max(1, std::min(setup_.spec.streams, std::max(1, setup_.model.streams)));
}

ServerRunner::~ServerRunner() {
  Stop();
  if (lifecycle_.joinable()) lifecycle_.join();
}

void ServerRunner::Launch() {
  lifecycle_ = std::thread([this] { Lifecycle(); });
}

void ServerRunner::Emit(BackendEvent event) const {
  event.runner_id = setup_.spec.runner_id;
  if (setup_.context.sink) setup_.context.sink(std::move(event));
}

void ServerRunner::EmitExited(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    phase_ = Phase::kExited;
  }
  BackendEvent e;
  e.kind = BackendEvent::Kind::kExited;
  e.message = why;
  Emit(std::move(e));
}

bool ServerRunner::exited() const {
  std::lock_guard<std::mutex> lock(mu_);
  return phase_ == Phase::kExited;
}

void ServerRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_requested_ = true;
  }
  cv_.notify_all();
}

Status ServerRunner::SetStreams(int streams) {
  if (streams < 1 || streams > std::max(1, setup_.model.streams)) {
    return Error(ErrorKind::kBadInput, "too_many_streams",
                 "server model " + setup_.model.name + " takes at most " +
                     std::to_string(setup_.model.streams) + " requests at once");
  }
  std::lock_guard<std::mutex> lock(mu_);
  streams_ = streams;
  return {};
}

// --- lifecycle -------------------------------------------------------------------------------

void ServerRunner::Lifecycle() {
  auto spawned = Spawn();
  if (!spawned.ok()) {
    const std::string why =
        "server model " + setup_.model.name + " could not start: " + spawned.error().message;
    EmitLoadError(spawned.error().kind == ErrorKind::kBadInput ? runner::RunnerErrorKind::kBadInput
                                                               : runner::RunnerErrorKind::kInternal,
                  why);
    EmitExited(why);
    return;
  }
  std::string last_answer;
  const Health health = WaitHealthy(&last_answer);
  if (health != Health::kHealthy) {
    FailLoad(health, last_answer);
    return;
  }
  tree_->Refresh();
  int64_t used = -1;
  const int64_t held = TreeBytesOnDevice(&used);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (phase_ == Phase::kLoading) phase_ = Phase::kReady;
  }
  BackendEvent ready;
  ready.kind = BackendEvent::Kind::kReady;
  ready.pids = PidsOf(tree_->live());
  ready.weights_bytes = std::max<int64_t>(0, held);
  spdlog::info("server model {} ready on {} at {} (pids {}; {} bytes on the device)",
               setup_.model.name, setup_.spec.device, endpoint_, ready.pids.size(),
               ready.weights_bytes);
  Emit(std::move(ready));
  Watch();
  {
    std::lock_guard<std::mutex> lock(mu_);
    phase_ = Phase::kStopping;
  }
  if (leader_status_) {
    EndCrashed();
  } else {
    Unload();
  }
}

void ServerRunner::EmitLoadError(runner::RunnerErrorKind kind, const std::string& why) {
  BackendEvent e;
  e.kind = BackendEvent::Kind::kError;
  e.error_kind = kind;
  e.message = why;
  Emit(std::move(e));
}

void ServerRunner::FailLoad(Health health, const std::string& last_answer) {
  const std::string& name = setup_.model.name;
  std::string why;
  if (health == Health::kLeaderExited) {
    KillNow();
    output_->Finish(500ms);
    const std::string tail = output_->Tail();
    why = "server model " + name + " " + DescribeExit(*leader_status_) +
          " before its health check answered" + (tail.empty() ? "" : ": " + tail);
  } else {
    if (health == Health::kTimedOut) {
      why = "server model " + name + " did not turn healthy within " +
            std::to_string(setup_.model.ready_timeout.count()) + " s: GET " +
            setup_.model.health.path + " (expecting " + std::to_string(setup_.model.health.status) +
            ") " + last_answer;
    }
    Terminate();
    output_->Finish(0ms);
  }
  if (!why.empty()) {  // empty: stopped on request while it loaded
    spdlog::warn("{}", why);
    EmitLoadError(runner::RunnerErrorKind::kInternal, why);
  }
  EmitExited(why.empty() ? "stopped while loading" : why);
}

void ServerRunner::EndCrashed() {
  KillNow();
  output_->Finish(500ms);
  const std::string tail = output_->Tail();
  const std::string why = "server model " + setup_.model.name + " " +
                          DescribeExit(*leader_status_) + (tail.empty() ? "" : ": " + tail);
  spdlog::warn("{}", why);
  FailAllWork(why);
  JoinWork(true);
  EmitExited(why);
}

void ServerRunner::Unload() {
  int64_t used_before = -1;
  const int64_t held_before = TreeBytesOnDevice(&used_before);
  const auto unload_started = Clock::now();
  Terminate();
  FailAllWork("server model " + setup_.model.name + " was stopped");
  JoinWork(true);
  output_->Finish(0ms);
  VerifyRelease(used_before, held_before, unload_started);
  EmitExited("stopped");
}

Result<SpawnedServer> ServerRunner::Spawn() {
  const sched::RunnerStartSpec& spec = setup_.spec;
  const KindContext& ctx = setup_.context;
  CommandValues values;
  values.host = setup_.host;
  values.device = spec.device;
  values.models_dir = ctx.models_dir;
  values.name = setup_.model.name;
  std::vector<std::pair<std::string, std::string>> env;  // the model's, then the device's
  if (spec.device.rfind("cuda:", 0) == 0) {
    device_index_ = std::stoi(spec.device.substr(5));
    physical_index_ = device_index_;
    if (ctx.devices) {
      if (auto samples = ctx.devices(); samples.ok()) {
        for (const auto& s : *samples) {
          if (s.index != device_index_) continue;
          physical_index_ = s.physical_index;
          gpu_uuid_ = s.uuid;
          baseline_used_ = s.used_bytes;
        }
      }
    }
    auto device_env = ctx.env_for_device ? ctx.env_for_device(spec.device)
                                         : std::vector<std::pair<std::string, std::string>>{};
    // Narrowed to its one card, the server sees it as device 0.
    values.cuda_index = device_env.empty() ? std::to_string(device_index_) : "0";
    values.gpu_uuid = gpu_uuid_;
    env.insert(env.end(), device_env.begin(), device_env.end());
    if (!ctx.sim_data_dir.empty()) {
      env.emplace_back("STENO_SIM_DATA_DIR", ctx.sim_data_dir);
      env.emplace_back("STENO_SIM_DEVICE", std::to_string(physical_index_));
    }
  } else {
    env.emplace_back("CUDA_VISIBLE_DEVICES", "");  // placed on the CPU: no card for it
  }
  auto port = PickFreePort(setup_.host);
  if (!port.ok()) return port.error();
  values.port = port_ = *port;
  auto argv = ExpandCommand(setup_.model.command, values);
  if (!argv.ok()) return argv.error();
  for (auto it = setup_.model.env.rbegin(); it != setup_.model.env.rend(); ++it) {
    auto expanded = ExpandText(it->second, values, "env " + it->first);
    if (!expanded.ok()) return expanded.error();
    env.insert(env.begin(), {it->first, std::move(expanded).value()});
  }
  auto workdir = ExpandText(setup_.model.workdir, values, "workdir");
  if (!workdir.ok()) return workdir.error();
  auto spawned = SpawnServer({*argv, env, *workdir});
  if (!spawned.ok()) return spawned.error();
  leader_ = spawned->pid;
  tree_ = std::make_unique<TrackedTree>(leader_);
  output_ = std::make_unique<ServerOutput>(spawned->output_fd, setup_.model.name);
  endpoint_ = "http://" + setup_.host + ":" + std::to_string(port_);
  spdlog::info("server model {}: started pid {} on {} listening at {}", setup_.model.name, leader_,
               spec.device, endpoint_);
  return spawned;
}

ServerRunner::Health ServerRunner::WaitHealthy(std::string* last_answer) {
  const HealthCheck& check = setup_.model.health;
  httplib::Client client(setup_.host, port_);
  client.set_connection_timeout(1s);
  client.set_read_timeout(5s);
  const auto deadline = Clock::now() + setup_.model.ready_timeout;
  *last_answer = "got no answer";
  for (;;) {
    if (ReapLeader()) return Health::kLeaderExited;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_requested_) return Health::kStopRequested;
    }
    if (httplib::Result r = client.Get(check.path)) {
      if (r->status == check.status) return Health::kHealthy;
      *last_answer =
          "last answered " + std::to_string(r->status) + ": " + ServerErrorMessage(r->body);
    } else {
      *last_answer = "got no answer (" + httplib::to_string(r.error()) + ")";
    }
    if (Clock::now() >= deadline) return Health::kTimedOut;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, kHealthPeriod, [this] { return stop_requested_; });
  }
}

void ServerRunner::Watch() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, kWatchPeriod, [this] { return stop_requested_ || check_now_; });
      if (stop_requested_) return;
      check_now_ = false;
    }
    if (ReapLeader()) return;
    if (tree_->Refresh()) {
      BackendEvent e;
      e.kind = BackendEvent::Kind::kProcesses;
      e.pids = PidsOf(tree_->live());
      Emit(std::move(e));
    }
    AbortOverdue();
    JoinWork(false);
  }
}

bool ServerRunner::ReapLeader() {
  if (leader_status_) return true;
  int status = 0;
  const pid_t r = waitpid(leader_, &status, WNOHANG);
  if (r == leader_) {
    leader_status_ = status;
  } else if (r < 0 && errno == ECHILD) {
    leader_status_ = 0;  // reaped elsewhere: gone all the same
  }
  return leader_status_.has_value();
}

void ServerRunner::Terminate() {
  tree_->Refresh();
  tree_->Signal(SIGTERM);
  const auto kill_at = Clock::now() + setup_.model.stop_timeout;
  bool killed = false;
  for (;;) {
    ReapLeader();
    tree_->Refresh();
    if (leader_status_ && tree_->empty()) return;
    const auto now = Clock::now();
    if (now >= kill_at) {
      if (!killed) {
        spdlog::warn("server model {} still running {} s after SIGTERM: SIGKILL", setup_.model.name,
                     setup_.model.stop_timeout.count());
      }
      killed = true;
      tree_->Signal(SIGKILL);  // again each time: a process forked meanwhile goes too
      if (now >= kill_at + kKillGiveUp) break;
    }
    std::this_thread::sleep_for(kGonePoll);
  }
  spdlog::error("server model {}: {} processes survive SIGKILL", setup_.model.name,
                tree_->live().size());
}

void ServerRunner::KillNow() {
  const auto give_up = Clock::now() + kKillGiveUp;
  for (;;) {
    tree_->Refresh();
    tree_->Signal(SIGKILL);
    ReapLeader();
    tree_->Refresh();
    if (leader_status_ && tree_->empty()) return;
    if (Clock::now() >= give_up) break;
    std::this_thread::sleep_for(kGonePoll);
  }
  spdlog::error("server model {}: {} processes survive SIGKILL", setup_.model.name,
                tree_->live().size());
}

int64_t ServerRunner::TreeBytesOnDevice(int64_t* device_used) const {
  *device_used = -1;
  if (device_index_ < 0 || !setup_.context.devices) return -1;
  auto samples = setup_.context.devices();
  if (!samples.ok()) return -1;
  for (const auto& s : *samples) {
    if (s.index != device_index_) continue;
    *device_used = s.used_bytes;
    if (!s.processes_known) return -1;
    int64_t held = 0;
    for (const auto& p : s.processes) {
      const bool ours = std::any_of(tree_->live().begin(), tree_->live().end(),
                                    [&](const gpu::ProcessIdentity& q) { return q.pid == p.pid; });
      if (!ours) continue;
      if (p.bytes < 0) return -1;  // the driver does not say how much
      held += p.bytes;
    }
    return held;
  }
  return -1;
}

void ServerRunner::VerifyRelease(int64_t used_before, int64_t held_before,
                                 Clock::time_point unload_started) {
  if (device_index_ < 0 || !setup_.context.devices) return;
  runner::ReleaseCheck check;
  check.device_index = device_index_;
  check.pid = leader_;
  check.used_before = used_before;
  // Other runners may have loaded or unloaded on this card since this one started, so the
  // baseline is "the card without this tree" when the tree's memory is attributable; the
  // pre-load reading otherwise.
  check.baseline_used =
      used_before >= 0 && held_before >= 0 ? used_before - held_before : baseline_used_;
  if (check.baseline_used < 0) return;  // nothing to compare with
  check.unload_started = unload_started;
  runner::ReleaseReport report = runner::VerifyRelease(setup_.context.devices, check);
  if (used_before < 0) report.released_bytes = 0;
  if (report.released) {
    spdlog::info("server model {} unloaded: {} bytes released on {} in {} ms", setup_.model.name,
                 report.released_bytes, setup_.spec.device, report.release_ms);
    return;
  }
  spdlog::warn("alert: memory of server model {} not released on {} after {} ms: {}",
               setup_.model.name, setup_.spec.device, report.release_ms, report.detail);
  if (setup_.context.on_unreleased) {
    setup_.context.on_unreleased(setup_.model.name, setup_.spec.device, report);
  }
}

}  // namespace steno::runners
