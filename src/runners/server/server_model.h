// The server kind: any model server process (whisper.cpp's whisper-server, a FunASR SenseVoice
// server, a Step-Audio TTS server, speaches, llama.cpp's llama-server, ...) run as a runner under
// steno's memory manager. Its models are declared in the config file (`[[models]]` tables with
// kind = "server"; server_config.h parses them); each runner is one server process tree started
// on the device placement chose, ready when its health check answers, stopped with SIGTERM to its
// process group (SIGKILL after stop_timeout) and its release verified like any runner's.
//
// This header is the contract between the config (server_config.h), the kind's backend
// (server_backend.h), the scheduler's per-model settings and the API.
//
// Work items (sched::JobRunSpec) the server kind takes. `params` is the job's JobParams JSON
// (core/job.h); its "task" says what to do:
//   - "transcribe" / "translate" (protocols openai-transcription and whisper-server): the input
//     (BlobRef::path, with BlobRef::name as the upload's file name) is forwarded as multipart;
//     the server's JSON answer becomes the same transcript JSON a whisper runner returns
//     (engine/transcript_json.h), so every response_format renders from it.
//   - "speech" (protocol openai-speech): params "input", "voice", "speed", "response_format" are
//     sent as OpenAI's speech request; the returned audio is written to
//     `<KindContext::results_dir>/<job id>.<format>` and kDone's payload is
//     {"audio_file": "<that path>", "content_type": "...", "bytes": N}. While it runs, each
//     write is reported to the job's SpeechStream if the API watches the job (speech_stream.h).
//   - "proxy" (any protocol; the http protocol takes only these): holds one stream of the runner
//     for a request the API proxies itself. The backend answers at once with one kSegment whose
//     payload is {"endpoint": "http://HOST:PORT"} and keeps the stream until Cancel(job), after
//     which it reports kDone with an empty object: the API streams bodies both ways directly.
// A work item whose task the model's protocol cannot serve ends with kError kind kBadInput.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace steno::runners {

inline constexpr const char* kServerKind = "server";

enum class ServerProtocol {
  kOpenAiTranscription,  // "openai-transcription": POST /v1/audio/{transcriptions,translations}
  kWhisperServer,        // "whisper-server": whisper.cpp's POST /inference
  kOpenAiSpeech,         // "openai-speech": POST /v1/audio/speech returning audio
  kHttp,                 // "http": any routes, proxied by /v1/servers/{name}/{path}
};
const char* ServerProtocolName(ServerProtocol protocol);
std::optional<ServerProtocol> ParseServerProtocol(std::string_view name);

struct HealthCheck {
  std::string path = "/health";
  int status = 200;  // the answer that means ready

  bool operator==(const HealthCheck&) const = default;
};

// One `[[models]]` entry of kind "server".
struct ServerModel {
  std::string name;
  // argv; each element may hold the placeholders {port}, {host}, {device} ("cuda:N" or "cpu"),
  // {cuda_index}, {gpu_uuid}, {models_dir}, {name} (server_backend.h expands them).
  std::vector<std::string> command;
  std::vector<std::pair<std::string, std::string>> env;  // added to the server's environment
  std::string workdir;                                   // "": steno's working directory
  ServerProtocol protocol = ServerProtocol::kHttp;
  HealthCheck health;
  std::chrono::seconds ready_timeout{120};
  int64_t vram_bytes = 0;           // declared device memory for the first load (then measured)
  int64_t ram_bytes = 0;            // declared host memory
  int streams = 1;                  // requests it takes at once
  std::optional<int> keep_alive_s;  // unset: the server's default keep-alive
  std::chrono::seconds stop_timeout{10};
  std::vector<std::string> devices;  // allowed devices ("cpu", "cuda:N"); empty: any
  bool preload = false;
  std::string source;  // the file that declared it (for messages)

  bool operator==(const ServerModel&) const = default;
};

}  // namespace steno::runners
