// Managed model servers as a config file declares them: the `[[models]]` tables of a TOML file
// (the `--config` file beside its [serve] table, or a file of its own given with
// `--models-config`), read into ServerModel values (server_model.h).
//
// One table per model; every key but name, kind and command may be left out:
//   name          the model's name in requests; letters, digits and . _ - : (not a path)
//   kind          "server" (the only kind a [[models]] table declares)
//   command       the argument list, e.g. ["whisper-server", "--port", "{port}"]
//   env           a table of environment variables added for the server, e.g. {HF_HOME = "/x"}
//   workdir       the directory it starts in (default: steno's own)
//   protocol      openai-transcription | whisper-server | openai-speech | http (default http)
//   health        "/path", or {path = "/health", status = 200} (the default)
//   ready_timeout a duration ("120s", "10m", or a number of seconds; default 120 s, at least 1 s)
//   stop_timeout  a duration (default 10 s): SIGTERM, then SIGKILL after it
//   keep_alive    a duration, 0 (unload when idle) or -1 (never); default: --keep-alive
//   vram, ram     sizes ("5GiB", "512MiB", or a number of bytes): declared footprint
//   streams       requests it takes at once, 1 to 64 (default 1)
//   devices       allowed devices, e.g. ["cuda:0", "cpu"] (default: any)
//   preload       true: loaded at start (and after a reload that adds or changes it), kept loaded
// Placeholders: command, env values and workdir may hold {port} {host} {device} {cuda_index}
// {gpu_uuid} {models_dir} {name}; "{{" and "}}" stand for one brace, and any other brace is
// refused (an unknown placeholder, or one left open), so a typo never reaches the server as text.
//
// Every refusal is kBadInput "bad_models_config" and names the file, the line and the key:
//   models.toml:12: models[1].protocol: unknown protocol "grpc" (one of openai-transcription,
//   whisper-server, openai-speech, http)
// Refused: TOML syntax errors, a missing name, kind or command, an unknown key, a value of the
// wrong type, an unknown protocol or placeholder, a bad size or duration, a kind other than
// "server", a name that looks like a path, and a name declared twice.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "runners/server/server_model.h"

namespace steno::runners {

// What else the file may hold beside `models`.
enum class ModelsFileScope {
  kModelsOnly,      // --models-config: `models` is the only top-level key
  kBesideSettings,  // --config: other tables ([serve]) are the CLI's to check
};

// The server models of TOML text read from `source` (the file name messages give), in the order
// they are declared; each one's ServerModel::source is `source`. A name already in `earlier`
// (the models another file declared) is refused like a name declared twice in this one.
Result<std::vector<ServerModel>> ParseServerModels(std::string_view text, const std::string& source,
                                                   ModelsFileScope scope,
                                                   const std::vector<ServerModel>& earlier = {});

// The same for a file; kBadInput "bad_models_config" when it cannot be read.
Result<std::vector<ServerModel>> ReadServerModels(const std::string& path, ModelsFileScope scope,
                                                  const std::vector<ServerModel>& earlier = {});

}  // namespace steno::runners
