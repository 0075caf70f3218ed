// A model server for the server kind's tests (runners/server): an HTTP server that answers a
// health check and OpenAI's /v1/audio/transcriptions with a known transcript, and can hold
// memory on a simulated GPU, fork a worker, answer slowly, crash, or never turn healthy.
//   fake_model_server --port N [--host H] [--health-status N] [--never-healthy]
//                     [--fork-worker SIZE] [--answer TEXT] [--slow-ms N]
//                     [--crash-after-requests N] [--json-only] [--ignore-term] [--record FILE]
//                     [--hold-file PATH]
// --fork-worker SIZE: forks a worker that charges SIZE on the simulated card named by
//   STENO_SIM_DATA_DIR / STENO_SIM_DEVICE (as steno starts a server on a simulated GPU), and
//   the server charges SIZE too; both before the health check answers.
// Transcriptions answer verbose_json: segment 1 is TEXT (default "hello from the fake server"),
// segment 2 " FILENAME BYTES bytes"; language "english", duration 4. --json-only refuses
// verbose_json with 400 (and answers {"text": ...} to json). --crash-after-requests N: the
// N+1th transcription request kills the server (SIGKILL) before it answers.
// --record FILE appends "PID" of the server and its worker, one a line.
// --hold-file PATH: each transcription waits until PATH exists (at most 120 s) before it answers,
// so a test keeps a request in flight as long as it needs.
// The worker dies with the server (PR_SET_PDEATHSIG); the server dies with whoever started it
// only if that one asked for it (steno does). Exits 2 on bad arguments.
#include <httplib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "gpu/simulated_devices.h"
#include "gpu/size.h"

namespace {

struct Flags {
  std::string host = "127.0.0.1";
  int port = 0;
  int health_status = 200;
  bool never_healthy = false;
  int64_t fork_worker = 0;
  std::string answer = "hello from the fake server";
  int slow_ms = 0;
  int crash_after = -1;
  bool json_only = false;
  bool ignore_term = false;
  std::string record;
  std::string hold_file;
};

int Usage(const std::string& why) {
  std::fprintf(stderr, "fake_model_server: %s\n", why.c_str());
  return 2;
}

void Record(const std::string& path) {
  if (!path.empty()) std::ofstream(path, std::ios::app) << getpid() << "\n";
}

// Charges `bytes` on the simulated card the environment names; false (with a message) if it
// cannot.
bool Charge(int64_t bytes) {
  const char* dir = std::getenv("STENO_SIM_DATA_DIR");
  const char* device = std::getenv("STENO_SIM_DEVICE");
  if (!dir || !device) {
    std::fprintf(stderr, "fake_model_server: no simulated GPU in the environment\n");
    return false;
  }
  auto sim = steno::gpu::SimulatedDevices::Open(dir, "");
  if (!sim.ok()) return false;
  auto st = (*sim)->Charge(std::stoi(device), bytes);
  if (!st) std::fprintf(stderr, "fake_model_server: %s\n", st.error().message.c_str());
  return st.ok();
}

// The worker: charges its share, tells the server through `ready_fd`, and waits to be killed.
void RunWorker(const Flags& f, int ready_fd, pid_t server) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != server) _exit(1);
  Record(f.record);
  const char ok = Charge(f.fork_worker) ? '1' : '0';
  (void)!write(ready_fd, &ok, 1);
  for (;;) pause();
}

bool StartWorker(const Flags& f) {
  int p[2];
  if (pipe(p) != 0) return false;
  const pid_t server = getpid();
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    close(p[0]);
    RunWorker(f, p[1], server);
  }
  close(p[1]);
  char ok = '0';
  const bool read_ok = read(p[0], &ok, 1) == 1;
  close(p[0]);
  return read_ok && ok == '1' && Charge(f.fork_worker);
}

nlohmann::json Transcript(const Flags& f, const httplib::MultipartFormData& file) {
  const std::string second =
      " " + file.filename + " " + std::to_string(file.content.size()) + " bytes";
  return {{"task", "transcribe"},
          {"language", "english"},
          {"duration", 4.0},
          {"text", f.answer + second},
          {"segments",
           {{{"id", 0},
             {"start", 0.0},
             {"end", 2.0},
             {"text", " " + f.answer},
             {"tokens", {1, 2, 3}},
             {"temperature", 0.0},
             {"avg_logprob", -0.25},
             {"compression_ratio", 1.5},
             {"no_speech_prob", 0.01},
             {"speaker", "A"}},
            {{"id", 1}, {"start", 2.0}, {"end", 4.0}, {"text", second}}}}};
}

void Transcribe(const Flags& f, std::atomic<int>& served, const httplib::Request& req,
                httplib::Response& res) {
  if (f.crash_after >= 0 && served.fetch_add(1) >= f.crash_after) kill(getpid(), SIGKILL);
  if (f.slow_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(f.slow_ms));
  const auto held_until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!f.hold_file.empty() && access(f.hold_file.c_str(), F_OK) != 0 &&
         std::chrono::steady_clock::now() < held_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!req.has_file("file")) {
    res.status = 400;
    res.set_content(R"({"error":{"message":"no 'file' field in the request"}})",
                    "application/json");
    return;
  }
  const auto file = req.get_file_value("file");
  if (file.content.empty()) {
    res.status = 400;
    res.set_content(R"({"error":{"message":"the audio file is empty"}})", "application/json");
    return;
  }
  const std::string format =
      req.has_file("response_format") ? req.get_file_value("response_format").content : "json";
  nlohmann::json t = Transcript(f, file);
  if (format == "verbose_json" && !f.json_only) {
    res.set_content(t.dump(), "application/json");
  } else if (format == "json" || format == "verbose_json") {
    if (format == "verbose_json") {
      res.status = 400;
      res.set_content(R"({"error":{"message":"response_format verbose_json is not supported"}})",
                      "application/json");
      return;
    }
    res.set_content(nlohmann::json{{"text", t["text"]}}.dump(), "application/json");
  } else {
    res.status = 400;
    res.set_content(R"({"error":{"message":"unknown response_format"}})", "application/json");
  }
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    try {
      if (a == "--port")
        f.port = std::stoi(value());
      else if (a == "--host")
        f.host = value();
      else if (a == "--health-status")
        f.health_status = std::stoi(value());
      else if (a == "--never-healthy")
        f.never_healthy = true;
      else if (a == "--fork-worker") {
        auto bytes = steno::gpu::ParseSize(value());
        if (!bytes.ok()) return Usage(bytes.error().message);
        f.fork_worker = *bytes;
      } else if (a == "--answer")
        f.answer = value();
      else if (a == "--slow-ms")
        f.slow_ms = std::stoi(value());
      else if (a == "--crash-after-requests")
        f.crash_after = std::stoi(value());
      else if (a == "--json-only")
        f.json_only = true;
      else if (a == "--ignore-term")
        f.ignore_term = true;
      else if (a == "--record")
        f.record = value();
      else if (a == "--hold-file")
        f.hold_file = value();
      else
        return Usage("unknown flag " + a);
    } catch (const std::exception&) {
      return Usage("bad value for " + a);
    }
  }
  if (f.port <= 0) return Usage("--port is required");
  if (f.ignore_term) signal(SIGTERM, SIG_IGN);
  Record(f.record);
  if (f.fork_worker > 0 && !StartWorker(f)) return 1;

  httplib::Server server;
  std::atomic<int> served{0};
  server.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
    res.status = f.never_healthy ? 503 : f.health_status;
    res.set_content(f.never_healthy ? R"({"status":"loading model"})" : R"({"status":"ok"})",
                    "application/json");
  });
  server.Post("/v1/audio/transcriptions", [&](const httplib::Request& req, httplib::Response& res) {
    Transcribe(f, served, req, res);
  });
  server.Post("/v1/audio/translations", [&](const httplib::Request& req, httplib::Response& res) {
    Transcribe(f, served, req, res);
  });
  std::printf("fake_model_server %d listening on %s:%d\n", getpid(), f.host.c_str(), f.port);
  std::fflush(stdout);
  return server.listen(f.host.c_str(), f.port) ? 0 : 1;
}
