#include "server/job_params_check.h"

#include <algorithm>
#include <cmath>

#include "core/speech_format.h"
#include "engine/formats.h"
#include "engine/languages.h"

namespace steno::server {
namespace {

ParamProblem Bad(std::string field, std::string code, std::string message) {
  return {std::move(field), Error(ErrorKind::kBadInput, std::move(code), std::move(message))};
}

bool ValidDevice(const std::string& d) {
  if (d.empty() || d == "auto" || d == "cpu") return true;
  const std::string prefix = "cuda:";
  if (d.rfind(prefix, 0) != 0) return false;
  const std::string rest = d.substr(prefix.size());
  return !rest.empty() && rest.size() <= 3 &&
         std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// chunking_strategy and the VAD settings it carries.
std::optional<ParamProblem> CheckVadParams(const JobParams& p) {
  const std::string& c = p.chunking_strategy;
  if (!c.empty() && c != "auto" && c != "server_vad") {
    return Bad("chunking_strategy", "bad_chunking_strategy",
               "'chunking_strategy' must be \"auto\" or {\"type\": \"server_vad\", ...}");
  }
  if (!p.vad) return std::nullopt;
  if (!std::isfinite(p.vad->threshold) || p.vad->threshold < 0 || p.vad->threshold > 1) {
    return Bad("chunking_strategy", "bad_chunking_strategy",
               "'chunking_strategy.threshold' must be a number from 0 to 1");
  }
  if (p.vad->prefix_padding_ms < 0 || p.vad->prefix_padding_ms > kMaxVadPaddingMs) {
    return Bad("chunking_strategy", "bad_chunking_strategy",
               "'chunking_strategy.prefix_padding_ms' must be from 0 to " +
                   std::to_string(kMaxVadPaddingMs));
  }
  if (p.vad->silence_duration_ms < 0 || p.vad->silence_duration_ms > kMaxVadSilenceMs) {
    return Bad("chunking_strategy", "bad_chunking_strategy",
               "'chunking_strategy.silence_duration_ms' must be from 0 to " +
                   std::to_string(kMaxVadSilenceMs));
  }
  return std::nullopt;
}

// Characters (code points) of UTF-8 text: continuation bytes are not counted.
size_t Utf8Chars(const std::string& s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool ValidVoice(const std::string& v) {
  return !v.empty() && v.size() <= 64 && std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

std::optional<ParamProblem> CheckSpeech(const JobParams& p) {
  if (p.input.empty() || Utf8Chars(p.input) > kMaxSpeechInputChars) {
    return Bad("input", "bad_input_text",
               "'input' must be the text to speak, 1 to 4096 characters");
  }
  if (!ValidVoice(p.voice)) {
    return Bad("voice", "bad_voice",
               "'voice' must name one of the model's voices (letters, digits, '-', '_', '.'; at "
               "most 64)");
  }
  if (!std::isfinite(p.speed) || p.speed < 0.25f || p.speed > 4.0f) {
    return Bad("speed", "bad_speed", "'speed' must be a number from 0.25 to 4");
  }
  if (!IsSpeechFormat(p.response_format)) {
    return Bad("response_format", "bad_response_format",
               "'response_format' must be one of " + SpeechFormatList() + " for speech");
  }
  if (Utf8Chars(p.instructions) > kMaxSpeechInputChars) {
    return Bad("instructions", "bad_instructions",
               "'instructions' must be at most 4096 characters");
  }
  return std::nullopt;
}

}  // namespace

std::optional<ParamProblem> CheckModelTask(const std::string& model, const std::string& task,
                                           const models::Capabilities& capabilities) {
  const bool speech = task == "speech";
  if (capabilities.Has(speech ? models::Capability::kSpeech : models::Capability::kTranscribe)) {
    return std::nullopt;
  }
  std::string can;
  for (const auto& name : capabilities.Names()) can += (can.empty() ? "" : ", ") + name;
  return Bad(
      "model", "model_cannot_do_task",
      "model '" + model + "' cannot do " + (speech ? "speech" : task) + " (it does " +
          (can.empty() ? std::string("only requests proxied under /v1/servers/") + model : can) +
          ")");
}

std::optional<ParamProblem> CheckJobParams(const JobParams& p) {
  if (p.task != "transcribe" && p.task != "translate" && p.task != "speech") {
    return Bad("task", "bad_task", "'task' must be transcribe, translate or speech");
  }
  if (p.task == "speech") {
    if (auto problem = CheckSpeech(p)) return problem;
  }
  if (auto st = engine::CheckLanguage(p.language); !st) {
    return ParamProblem{"language", st.error()};
  }
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f || p.temperature > 1.0f) {
    return Bad("temperature", "bad_temperature", "'temperature' must be a number from 0 to 1");
  }
  if (p.task != "speech" && !engine::IsResponseFormat(p.response_format)) {
    return Bad("response_format", "bad_response_format",
               "'response_format' must be one of json, text, srt, vtt, verbose_json");
  }
  if (p.keep_alive_s && *p.keep_alive_s < -1) {
    return Bad("keep_alive", "bad_keep_alive",
               "'keep_alive' must be seconds (or 30s, 5m, 1h), 0 to unload at once or -1 to keep");
  }
  if (p.timeout_s && (*p.timeout_s <= 0 || *p.timeout_s > kMaxJobTimeoutS)) {
    return Bad("timeout", "bad_timeout", "'timeout' must be a number of seconds, 1 to 604800");
  }
  if (!ValidDevice(p.device)) {
    return Bad("device", "bad_device", "'device' must be auto, cpu or cuda:N");
  }
  if (p.prompt.size() > kMaxPromptBytes) {
    return Bad("prompt", "bad_prompt", "'prompt' must be at most 16 KiB");
  }
  if (auto problem = CheckVadParams(p)) return problem;
  return std::nullopt;
}

}  // namespace steno::server
