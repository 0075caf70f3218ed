#include "support/server_events.h"

#include <signal.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <httplib.h>

#include "runners/server/command_template.h"
#include "support/child_process.h"

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

std::string WhisperServerBin() {
  return std::filesystem::path(WhisperCliBin()).parent_path().string() + "/whisper-server";
}

std::vector<std::string> WhisperServerCommand(const std::string& port, const std::string& host) {
  return {WhisperServerBin(), "-m", TinyModel(), "-t", "1", "-bs", "5", "-bo", "5", "-nf",
          "--port",           port, "--host",    host};
}

nlohmann::json AskWhisperServerDirectly(const std::string& input) {
  using namespace std::chrono_literals;
  auto port = runners::PickFreePort("127.0.0.1");
  EXPECT_TRUE(port.ok());
  if (!port.ok()) return nullptr;
  ScopedTempDir logs;
  ChildProcess server(WhisperServerCommand(std::to_string(*port), "127.0.0.1"), logs.path + "/out",
                      logs.path + "/err");
  httplib::Client client("127.0.0.1", *port);
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto r = client.Get("/health");
        return r && r->status == 200;
      },
      60s));
  client.set_read_timeout(120s);
  const auto data = ReadFileBytes(input);
  httplib::MultipartFormDataItems form = {
      {"file", std::string(data.begin(), data.end()), "speech.wav", "application/octet-stream"},
      {"response_format", "verbose_json", "", ""},
      {"language", "auto", "", ""},
      {"temperature", "0", "", ""},
      {"translate", "false", "", ""},
      {"no_language_probabilities", "true", "", ""}};
  auto r = client.Post("/inference", form);
  EXPECT_TRUE(r && r->status == 200);
  server.Signal(SIGTERM);
  server.Wait(30s);
  return r ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json();
}

}  // namespace steno::test
