// A small OpenAI-compatible text-to-speech server for tests: espeak-ng reads the text, FFmpeg
// converts its WAV to the requested format. Declared to steno as an `openai-speech` model.
//   tts_server --port PORT [--host HOST] [--hold-file PATH] [--pieces N --gate-file PATH]
// Routes:
//   GET  /health            200 "ok"
//   POST /v1/audio/speech   OpenAI's request (JSON: input, voice, response_format, speed); the
//                           audio in mp3|opus|aac|flac|wav|pcm (pcm: s16le, 24 kHz, mono), with
//                           OpenAI's Content-Type. 400 {"error": {"message"}} for an empty input,
//                           an unknown format, or the voice "no-such-voice".
//                           With --pieces N the audio goes out chunked in N pieces of about
//                           the same size, and piece k (from 2) only once the --gate-file holds
//                           a number >= k (at most 120 s): a test lets the audio out piece by
//                           piece. The voice "cut-midway" then breaks the answer off (the
//                           connection closes with no last chunk) where piece 2 would go.
//   GET  /v1/voices         200 {"voices": ["alloy", ...]} (a route of its own, for the proxy)
//   POST /v1/echo           201 with the request's body and Content-Type (bodies both ways)
//   GET  /v1/hold           waits until --hold-file exists (at most 120 s), then 200 "released":
//                           a request a test keeps in flight as long as it needs
// Voices: any name is espeak-ng's default English voice. Speed s is espeak-ng's -s 175·s words
// per minute. SIGTERM ends it. Prints "tts_server listening on PORT" once it listens.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace {

// Runs argv (no shell); true when it exits 0.
bool Run(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return false;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// FFmpeg's output options and OpenAI's Content-Type per response_format.
const std::map<std::string, std::pair<std::vector<std::string>, std::string>>& Formats() {
  static const std::map<std::string, std::pair<std::vector<std::string>, std::string>> kFormats = {
      {"mp3", {{"-c:a", "libmp3lame", "-f", "mp3"}, "audio/mpeg"}},
      {"opus", {{"-c:a", "libopus", "-f", "ogg"}, "audio/opus"}},
      {"aac", {{"-c:a", "aac", "-f", "adts"}, "audio/aac"}},
      {"flac", {{"-c:a", "flac", "-f", "flac"}, "audio/flac"}},
      {"wav", {{"-c:a", "pcm_s16le", "-f", "wav"}, "audio/wav"}},
      {"pcm", {{"-c:a", "pcm_s16le", "-ar", "24000", "-ac", "1", "-f", "s16le"}, "audio/pcm"}},
  };
  return kFormats;
}

struct Pieces {
  int count = 0;  // 0: the audio in one body with its Content-Length
  std::string gate_file;
};

// The number in the gate file (0 while there is none).
int Gate(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  return in >> n ? n : 0;
}

// Sends `audio` in `p.count` pieces, each from the second one waiting for the gate.
void SendInPieces(httplib::Response& res, std::string audio, const std::string& type,
                  const Pieces& p, bool cut_midway) {
  auto data = std::make_shared<std::string>(std::move(audio));
  auto next = std::make_shared<int>(0);
  res.set_chunked_content_provider(
      type, [data, next, p, cut_midway](size_t, httplib::DataSink& sink) {
        const int k = (*next)++;  // 0-based
        if (k > 0) {
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
          while (Gate(p.gate_file) < k + 1 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          }
          if (cut_midway) return false;
        }
        const size_t size = (data->size() + p.count - 1) / p.count;
        const size_t from = std::min(data->size(), size * k);
        const size_t n = std::min(size, data->size() - from);
        if (n > 0 && !sink.write(data->data() + from, n)) return false;
        if (k + 1 >= p.count) sink.done();
        return true;
      });
}

void Error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(
      nlohmann::json{{"error", {{"message", message}, {"type", "invalid_request_error"}}}}.dump(),
      "application/json");
}

void Speech(const Pieces& pieces, const httplib::Request& req, httplib::Response& res) {
  auto body = nlohmann::json::parse(req.body, nullptr, false);
  if (!body.is_object()) return Error(res, 400, "the body must be a JSON object");
  const std::string input = body.value("input", "");
  const std::string voice = body.value("voice", "");
  const std::string format = body.value("response_format", "mp3");
  const double speed = body.value("speed", 1.0);
  if (input.empty()) return Error(res, 400, "input is empty");
  if (voice == "no-such-voice") return Error(res, 400, "voice 'no-such-voice' is not available");
  auto f = Formats().find(format);
  if (f == Formats().end()) return Error(res, 400, "unknown response_format " + format);
  char dir_template[] = "/tmp/tts_server.XXXXXX";
  if (!mkdtemp(dir_template)) return Error(res, 500, "no temp dir");
  const std::string dir = dir_template;
  const std::string text = dir + "/input.txt", wav = dir + "/speech.wav", out = dir + "/out";
  std::ofstream(text, std::ios::binary) << input;
  const int wpm = static_cast<int>(175 * speed);
  bool ok = Run({"espeak-ng", "-s", std::to_string(wpm), "-w", wav, "-f", text});
  std::vector<std::string> ffmpeg = {"ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", wav};
  ffmpeg.insert(ffmpeg.end(), f->second.first.begin(), f->second.first.end());
  ffmpeg.push_back(out);
  ok = ok && Run(ffmpeg);
  const std::string audio = ok ? ReadAll(out) : "";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!ok || audio.empty()) return Error(res, 500, "espeak-ng or ffmpeg failed");
  res.status = 200;
  if (pieces.count > 0) {
    return SendInPieces(res, audio, f->second.second, pieces, voice == "cut-midway");
  }
  res.set_content(audio, f->second.second);
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", hold_file;
  int port = 0;
  Pieces pieces;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--port") {
      port = std::atoi(argv[i + 1]);
    } else if (flag == "--host") {
      host = argv[i + 1];
    } else if (flag == "--hold-file") {
      hold_file = argv[i + 1];
    } else if (flag == "--pieces") {
      pieces.count = std::atoi(argv[i + 1]);
    } else if (flag == "--gate-file") {
      pieces.gate_file = argv[i + 1];
    } else {
      std::fprintf(stderr,
                   "usage: tts_server --port PORT [--host HOST] [--hold-file PATH] "
                   "[--pieces N --gate-file PATH]\n");
      return 2;
    }
  }
  if (pieces.count < 0 || (pieces.count > 0 && pieces.gate_file.empty())) {
    std::fprintf(stderr, "tts_server: --pieces takes N >= 1 and a --gate-file\n");
    return 2;
  }
  httplib::Server server;  // SIGTERM ends the process (its default action)
  server.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain");
  });
  server.Post("/v1/audio/speech", [&pieces](const httplib::Request& req, httplib::Response& res) {
    Speech(pieces, req, res);
  });
  server.Get("/v1/voices", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"voices": ["alloy", "echo", "fable"]})", "application/json");
  });
  server.Post("/v1/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.status = 201;
    res.set_header("X-Echo-Query", req.get_param_value("q"));
    res.set_content(req.body, req.get_header_value("Content-Type"));
  });
  server.Get("/v1/hold", [&hold_file](const httplib::Request&, httplib::Response& res) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!hold_file.empty() && !std::filesystem::exists(hold_file) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    res.set_content("released", "text/plain");
  });
  if (!server.bind_to_port(host.c_str(), port)) {
    std::fprintf(stderr, "tts_server: cannot listen on %s:%d\n", host.c_str(), port);
    return 1;
  }
  std::printf("tts_server listening on %d\n", port);
  std::fflush(stdout);
  server.listen_after_bind();
  return 0;
}
