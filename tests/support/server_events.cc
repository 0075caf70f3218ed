#include "support/server_events.h"

#include <fstream>

#include "support/test_env.h"

namespace steno::test {

using sched::BackendEvent;

sched::BackendSink BackendEvents::Sink() {
  return [this](BackendEvent e) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
    cv_.notify_all();
  };
}

std::optional<BackendEvent> BackendEvents::WaitFor(std::function<bool(const BackendEvent&)> pred,
                                                   std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  std::optional<BackendEvent> found;
  cv_.wait_for(lock, timeout, [&] {
    for (const auto& e : events_) {
      if (pred(e)) {
        found = e;
        return true;
      }
    }
    return false;
  });
  return found;
}

std::optional<BackendEvent> BackendEvents::WaitJob(const std::string& job_id) {
  return WaitFor([&](const BackendEvent& e) {
    return e.job_id == job_id &&
           (e.kind == BackendEvent::Kind::kDone || e.kind == BackendEvent::Kind::kError);
  });
}

std::optional<BackendEvent> BackendEvents::WaitLoad(int64_t runner_id) {
  return WaitFor([&](const BackendEvent& e) {
    return e.runner_id == runner_id && e.job_id.empty() &&
           (e.kind == BackendEvent::Kind::kReady || e.kind == BackendEvent::Kind::kError);
  });
}

std::optional<BackendEvent> BackendEvents::WaitExited(int64_t runner_id) {
  return WaitFor([&](const BackendEvent& e) {
    return e.runner_id == runner_id && e.kind == BackendEvent::Kind::kExited;
  });
}

std::vector<BackendEvent> BackendEvents::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

runners::ServerModel FakeServerModel(const std::string& name, std::vector<std::string> flags) {
  runners::ServerModel m;
  m.name = name;
  m.command = {HelperBin("fake_model_server"), "--port", "{port}", "--host", "{host}"};
  m.command.insert(m.command.end(), flags.begin(), flags.end());
  m.protocol = runners::ServerProtocol::kOpenAiTranscription;
  m.ready_timeout = std::chrono::seconds(60);
  m.stop_timeout = std::chrono::seconds(10);
  m.streams = 2;
  return m;
}

std::vector<int> RecordedPids(const std::string& path) {
  std::vector<int> pids;
  std::ifstream in(path);
  for (int pid; in >> pid;) pids.push_back(pid);
  return pids;
}

}  // namespace steno::test
