// Shared by the server kind's tests (runners/server): collects a backend's events so a test can
// wait for the one it expects, and builds server models that run tests/helpers'
// fake_model_server.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runners/server/server_model.h"
#include "sched/runner_backend.h"

namespace steno::test {

class BackendEvents {
 public:
  sched::BackendSink Sink();
  // The first event matching `pred`, waiting up to `timeout`.
  std::optional<sched::BackendEvent> WaitFor(
      std::function<bool(const sched::BackendEvent&)> pred,
      std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // The end (kDone or kError) of job `job_id`.
  std::optional<sched::BackendEvent> WaitJob(const std::string& job_id);
  // Runner `runner_id`'s kReady, or its kError if the load failed first.
  std::optional<sched::BackendEvent> WaitLoad(int64_t runner_id);
  std::optional<sched::BackendEvent> WaitExited(int64_t runner_id);
  std::vector<sched::BackendEvent> All() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<sched::BackendEvent> events_;
};

// A server model running fake_model_server on {host}:{port} with `flags` added.
runners::ServerModel FakeServerModel(const std::string& name, std::vector<std::string> flags = {});

// The pids a file written by fake_model_server --record lists.
std::vector<int> RecordedPids(const std::string& path);

// whisper.cpp's whisper-server, next to whisper-cli in the whisper.cpp build this links.
std::string WhisperServerBin();
// whisper-server on the tiny test model listening at host:port (placeholders allowed), decoding
// like steno's built-in runner told beam 5, best of 5, no temperature fallback (deterministic).
std::vector<std::string> WhisperServerCommand(const std::string& port, const std::string& host);
// whisper-server's own answer (its verbose_json) for `input`, asked as the server kind asks it,
// from a whisper-server started for it; null if it did not answer.
nlohmann::json AskWhisperServerDirectly(const std::string& input);

}  // namespace steno::test
