// A real `steno serve` process for the API's integration tests: CPU only, the tiny random model
// installed as "tiny" in a temp models dir, a temp data dir, port 0 (the port is read from the
// `steno: listening on http://127.0.0.1:PORT` line). Stopped with SIGTERM when the test ends;
// its stderr is kept in a file and printed when a test fails, for diagnosis.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "support/test_env.h"

extern char** environ;

namespace steno::test {

class ApiTestServer {
 public:
  // `extra` flags are appended to the defaults (a later value of a flag wins).
  explicit ApiTestServer(std::vector<std::string> extra = {},
                         const std::string& log_level = "info") {
    // A client writing to a connection the server closed must get EPIPE, not die.
    signal(SIGPIPE, SIG_IGN);
    namespace fs = std::filesystem;
    fs::create_directories(models);
    fs::copy_file(TinyModel(), models + "/ggml-tiny.bin");
    std::vector<std::string> argv = {
        StenoBin(),    "--log-level", log_level,           "serve", "--host",       "127.0.0.1",
        "--port",      "0",           "--data-dir",        data,    "--models-dir", models,
        "--device",    "cpu",         "--threads",         "1",     "--cpu-cores",  "2",
        "--beam-size", "1",           "--temperature-inc", "0",     "--no-warmup"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Start(argv);
  }

  ~ApiTestServer() {
    const bool running = pid_ > 0;
    const int rc = Stop();
    if (running) {
      EXPECT_EQ(rc, 0) << "steno serve did not stop cleanly on SIGTERM";
    }
    if (::testing::Test::HasFailure()) {
      std::fprintf(stderr, "---- steno serve stderr ----\n%s\n----\n", ReadFileText(log).c_str());
    }
  }

  // SIGTERM and wait; returns the exit status (128 + signal if killed).
  int Stop(int timeout_s = 30) {
    if (pid_ <= 0) return exit_code_;
    kill(pid_, SIGTERM);
    for (int i = 0; i < timeout_s * 100; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    exit_code_ = 128 + SIGKILL;
    return exit_code_;
  }

  pid_t pid() const { return pid_; }
  // Sends `sig` without waiting (Stop() sends SIGTERM and waits).
  void Signal(int sig) const {
    if (pid_ > 0) kill(pid_, sig);
  }

  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(5, 0);
    c.set_read_timeout(180, 0);
    c.set_write_timeout(60, 0);
    return c;
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port); }
  // Everything the server printed to stdout after the listening line.
  std::string Stdout() {
    DrainStdout(0);
    return out_;
  }

  ScopedTempDir root{"steno-api"};
  std::string data = root.path + "/data";
  std::string models = root.path + "/models";
  std::string log = root.path + "/serve.log";
  int port = 0;

 private:
  void Start(const std::vector<std::string>& args) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    out_fd_ = fds[0];
    ASSERT_EQ(rc, 0) << "cannot start " << args[0];
    const std::string marker = "steno: listening on http://127.0.0.1:";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
      DrainStdout(100);
      auto pos = out_.find(marker);
      if (pos != std::string::npos && out_.find('\n', pos) != std::string::npos) {
        port = std::stoi(out_.substr(pos + marker.size()));
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        FAIL() << "steno serve exited with " << exit_code_ << ": " << ReadFileText(log);
      }
    }
    FAIL() << "steno serve did not print its URL within 120 s: " << ReadFileText(log);
  }

  void DrainStdout(int timeout_ms) {
    if (out_fd_ < 0) return;
    pollfd p{out_fd_, POLLIN, 0};
    while (poll(&p, 1, timeout_ms) > 0) {
      char buf[4096];
      ssize_t n = read(out_fd_, buf, sizeof buf);
      if (n <= 0) {
        close(out_fd_);
        out_fd_ = -1;
        return;
      }
      out_.append(buf, static_cast<size_t>(n));
      timeout_ms = 0;
    }
  }

  pid_t pid_ = -1;
  int exit_code_ = -1;
  int out_fd_ = -1;
  std::string out_;
};

// The parsed JSON body of a response (a failed parse fails the test and gives null).
struct SseEvent {
  std::string event;
  nlohmann::json data;
};

// The events of a text/event-stream body, in order (blocks without an event name skipped).
inline std::vector<SseEvent> ParseSse(const std::string& text) {
  std::vector<SseEvent> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::string block = text.substr(pos, end - pos);
    pos = end + 2;
    SseEvent e;
    std::istringstream in(block);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("event: ", 0) == 0) e.event = line.substr(7);
      if (line.rfind("data: ", 0) == 0) e.data = nlohmann::json::parse(line.substr(6));
    }
    if (!e.event.empty()) out.push_back(std::move(e));
  }
  return out;
}

// The flags of a node sharing the job store at `url` under the name `node`, then `extra`.
inline std::vector<std::string> NodeFlags(const std::string& url, const std::string& node,
                                          const std::vector<std::string>& extra = {}) {
  std::vector<std::string> flags = {"--store", url, "--node", node};
  flags.insert(flags.end(), extra.begin(), extra.end());
  return flags;
}

inline nlohmann::json JsonOf(const httplib::Result& r) {
  if (!r) {
    ADD_FAILURE() << "no response: " << httplib::to_string(r.error());
    return nullptr;
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded()) {
    ADD_FAILURE() << "not JSON (" << r->status << "): " << r->body.substr(0, 300);
    return nullptr;
  }
  return j;
}

// The status of a response; when no response came (a dropped connection) the test fails and
// this gives 0, so a broken server fails a test instead of crashing the test binary.
inline int StatusOf(const httplib::Result& r) {
  if (!r) {
    ADD_FAILURE() << "no response: " << httplib::to_string(r.error());
    return 0;
  }
  return r->status;
}

// A multipart part holding a media file from the test data.
inline httplib::MultipartFormData FilePart(const std::string& media,
                                           const std::string& field = "file") {
  auto bytes = ReadFileBytes(MediaPath(media));
  return {field, std::string(bytes.begin(), bytes.end()), media, "application/octet-stream"};
}

inline httplib::MultipartFormData Field(const std::string& name, const std::string& value) {
  return {name, value, "", ""};
}

// Submits `media` as an async job of the "tiny" model (English); expects 202 with a Location that
// names the job. Returns its id ("" on failure).
inline std::string PostJob(httplib::Client& c, const std::string& media = "speech.wav") {
  auto r =
      c.Post("/v1/jobs", httplib::MultipartFormDataItems{FilePart(media), Field("model", "tiny"),
                                                         Field("language", "en")});
  EXPECT_TRUE(r);
  if (!r) return "";
  EXPECT_EQ(r->status, 202) << r->body;
  auto j = JsonOf(r);
  EXPECT_EQ(r->get_header_value("Location"), "/v1/jobs/" + j.value("id", ""));
  return j.value("id", "");
}

// Polls GET /v1/jobs/{id} until the job is final (or 300 s pass).
inline nlohmann::json WaitForJob(httplib::Client& c, const std::string& id) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  nlohmann::json job;
  while (std::chrono::steady_clock::now() < deadline) {
    job = JsonOf(c.Get("/v1/jobs/" + id));
    if (job.is_null()) return job;
    const std::string state = job.value("state", "");
    if (state == "completed" || state == "failed" || state == "cancelled") return job;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "job " << id << " did not finish: " << job.dump();
  return job;
}

// Waits for each of `ids` (WaitForJob), expecting it completed in one attempt; returns the most
// of their runs that overlapped, from their attempt records (at the same ms an end comes before
// a start). `finished` (if given) receives each final job, in the order of `ids`.
inline int MostRunsAtOnce(httplib::Client& c, const std::vector<std::string>& ids,
                          std::vector<nlohmann::json>* finished = nullptr) {
  std::vector<std::pair<int64_t, int>> edges;  // (time, +1 start / -1 end)
  for (const std::string& id : ids) {
    const nlohmann::json job = WaitForJob(c, id);
    if (finished) finished->push_back(job);
    EXPECT_EQ(job.value("state", ""), "completed") << job.dump();
    if (!job.contains("attempts") || job["attempts"].size() != 1) {
      ADD_FAILURE() << job.dump();
      continue;
    }
    edges.emplace_back(job["attempts"][0]["started_ms"].get<int64_t>(), +1);
    edges.emplace_back(job["attempts"][0]["ended_ms"].get<int64_t>(), -1);
  }
  std::sort(edges.begin(), edges.end());
  int now = 0;
  int most = 0;
  for (const auto& [t, d] : edges) most = std::max(most, now += d);
  return most;
}

}  // namespace steno::test
