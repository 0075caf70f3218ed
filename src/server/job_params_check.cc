#include "server/job_params_check.h"

#include <algorithm>
#include <cmath>

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

}  // namespace

std::optional<ParamProblem> CheckJobParams(const JobParams& p) {
  if (p.task != "transcribe" && p.task != "translate") {
    return Bad("task", "bad_task", "'task' must be transcribe or translate");
  }
  if (auto st = engine::CheckLanguage(p.language); !st) {
    return ParamProblem{"language", st.error()};
  }
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f || p.temperature > 1.0f) {
    return Bad("temperature", "bad_temperature", "'temperature' must be a number from 0 to 1");
  }
  if (!engine::IsResponseFormat(p.response_format)) {
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
