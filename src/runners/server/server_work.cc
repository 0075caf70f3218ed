// ServerRunner's work items: one request per work item on a thread of its own, and the proxy
// task, which holds a stream until it is cancelled.
#include <httplib.h>
#include <spdlog/spdlog.h>

#include "gpu/owner_process.h"
#include "runners/server/server_runner.h"
#include "runners/server/server_tasks.h"

namespace steno::runners {

using Clock = std::chrono::steady_clock;
using runner::RunnerErrorKind;
using sched::BackendEvent;
using namespace std::chrono_literals;

namespace {

BackendEvent Failure(const std::string& job_id, RunnerErrorKind kind, std::string message) {
  BackendEvent e;
  e.kind = BackendEvent::Kind::kError;
  e.job_id = job_id;
  e.error_kind = kind;
  e.message = std::move(message);
  return e;
}

}  // namespace

bool ServerRunner::LeaderDying() const {
  // A dying process closes its sockets before it becomes a zombie: give it a moment.
  const auto until = Clock::now() + 500ms;
  for (;;) {
    if (!gpu::IdentifyProcess(leader_)) return true;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
}

Status ServerRunner::Send(const sched::JobRunSpec& job) {
  const ServerModel& model = setup_.model;
  const std::string task =
      job.params.is_object() ? job.params.value("task", std::string("transcribe")) : "transcribe";
  std::unique_lock<std::mutex> lock(mu_);
  if (phase_ != Phase::kReady || stop_requested_) {
    return Error(ErrorKind::kUnavailable, "runner_not_ready",
                 "server model " + model.name + " is not ready for work");
  }
  int busy = 0;
  for (const auto& [id, w] : work_) busy += !w->ended;
  if (busy >= streams_) {
    return Error(ErrorKind::kUnavailable, "no_free_stream",
                 "server model " + model.name + " has " + std::to_string(busy) +
                     " requests in flight, its limit");
  }
  if (work_.count(job.job_id)) {
    return Error(ErrorKind::kBadInput, "duplicate_job", "job " + job.job_id + " runs already");
  }
  auto owned = std::make_unique<Work>();
  Work* w = owned.get();
  w->job = job;
  w->proxy = task == "proxy";
  w->fn = w->proxy ? nullptr : FindTask(model.protocol, task);
  if (job.timeout_s > 0) w->deadline = Clock::now() + std::chrono::seconds(job.timeout_s);
  work_[job.job_id] = std::move(owned);
  if (w->proxy) {
    lock.unlock();
    BackendEvent e;
    e.kind = BackendEvent::Kind::kSegment;
    e.job_id = job.job_id;
    e.payload = {{"endpoint", endpoint_}};
    Emit(std::move(e));
    return {};
  }
  if (!w->fn) {
    ClaimEnd(w);  // ended here: the watcher may free it once the lock is released
    w->thread_done = true;
    lock.unlock();
    Emit(Failure(job.job_id, RunnerErrorKind::kBadInput,
                 "server model " + model.name + " (protocol " + ServerProtocolName(model.protocol) +
                     ") does not serve '" + task + "' requests"));
    return {};
  }
  w->client = std::make_shared<httplib::Client>(setup_.host, port_);
  w->client->set_connection_timeout(5s);
  w->client->set_write_timeout(120s);
  // The job's own timeout is enforced by the watcher (AbortOverdue); this bounds one read.
  w->client->set_read_timeout(job.timeout_s > 0 ? std::chrono::seconds(job.timeout_s + 60)
                                                : std::chrono::seconds(24 * 3600));
  w->thread = std::thread([this, w] { RunWork(w); });
  return {};
}

void ServerRunner::RunWork(Work* w) {
  const std::string& id = w->job.job_id;
  WorkItem item{setup_.model, w->job, *w->client, setup_.context.results_dir,
                [this, w](BackendEvent e) {
                  {
                    std::lock_guard<std::mutex> lock(mu_);
                    if (w->ended) return;
                  }
                  e.job_id = w->job.job_id;
                  Emit(std::move(e));
                }};
  WorkOutcome outcome = (*w->fn)(item);
  Work::Abort abort;
  {
    std::lock_guard<std::mutex> lock(mu_);
    abort = w->abort;
  }
  BackendEvent end;
  if (outcome.ok) {
    end.kind = BackendEvent::Kind::kDone;
    end.job_id = id;
    end.payload = std::move(outcome.payload);
  } else if (abort == Work::Abort::kCancel) {
    end = Failure(id, RunnerErrorKind::kCancelled, "cancelled");
  } else if (abort == Work::Abort::kTimeout) {
    end = Failure(id, RunnerErrorKind::kTimeout,
                  "server model " + setup_.model.name + " gave no answer within the timeout of " +
                      std::to_string(w->job.timeout_s) + " s");
  } else {
    end = Failure(id, outcome.error_kind, std::move(outcome.message));
  }
  if (end.kind == BackendEvent::Kind::kError && end.error_kind == RunnerErrorKind::kCrash &&
      LeaderDying()) {
    // The server died under it: the lifecycle fails this work item and then reports kExited
    // (back to back, so its retry finds the runner gone rather than sending it here again).
    std::lock_guard<std::mutex> lock(mu_);
    check_now_ = true;
    w->thread_done = true;
    cv_.notify_all();
    return;
  }
  EndWork(w, std::move(end));
  std::lock_guard<std::mutex> lock(mu_);
  w->thread_done = true;
}

bool ServerRunner::ClaimEnd(Work* w) {
  if (w->ended) return false;
  w->ended = true;
  return true;
}

void ServerRunner::EndWork(Work* w, BackendEvent event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ClaimEnd(w)) return;
  }
  Emit(std::move(event));
}

void ServerRunner::Cancel(const std::string& job_id) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = work_.find(job_id);
  if (it == work_.end() || it->second->ended) return;
  Work* w = it->second.get();
  if (w->proxy) {
    ClaimEnd(w);
    w->thread_done = true;
    lock.unlock();
    BackendEvent done;
    done.kind = BackendEvent::Kind::kDone;
    done.job_id = job_id;
    done.payload = nlohmann::json::object();
    Emit(std::move(done));
    return;
  }
  w->abort = Work::Abort::kCancel;
  std::shared_ptr<httplib::Client> client = w->client;
  lock.unlock();
  if (client) client->stop();  // the request fails at once; RunWork reports kCancelled
}

void ServerRunner::FailAllWork(const std::string& why) {
  std::vector<BackendEvent> ends;
  std::vector<std::shared_ptr<httplib::Client>> clients;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, w] : work_) {
      if (w->client) clients.push_back(w->client);
      if (ClaimEnd(w.get())) ends.push_back(Failure(id, RunnerErrorKind::kCrash, why));
      if (w->proxy) w->thread_done = true;
    }
  }
  for (auto& e : ends) Emit(std::move(e));
  for (auto& c : clients) c->stop();
}

void ServerRunner::JoinWork(bool all) {
  std::vector<std::unique_ptr<Work>> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = work_.begin(); it != work_.end();) {
      // A work item whose server died under it (not ended yet) waits for FailAllWork.
      if (all || (it->second->thread_done && it->second->ended)) {
        done.push_back(std::move(it->second));
        it = work_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& w : done) {
    if (w->thread.joinable()) w->thread.join();
  }
}

void ServerRunner::AbortOverdue() {
  std::vector<std::shared_ptr<httplib::Client>> abort;
  const auto now = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, w] : work_) {
      if (!w->client || w->thread_done) continue;
      if (w->abort == Work::Abort::kNone && !w->ended && now >= w->deadline) {
        spdlog::warn("job {} on server model {}: past its timeout of {} s, aborted", id,
                     setup_.model.name, w->job.timeout_s);
        w->abort = Work::Abort::kTimeout;
      }
      // Again each period: a request aborted before its connection opened would not see it.
      if (w->abort != Work::Abort::kNone) abort.push_back(w->client);
    }
  }
  for (auto& c : abort) c->stop();
}

}  // namespace steno::runners
