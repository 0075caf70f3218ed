#include "api/job_request.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "api/chunking_strategy.h"
#include "core/duration.h"
#include "core/speech_format.h"
#include "core/strings.h"
#include "server/job_params_check.h"

namespace steno::api {
namespace {

ApiError Bad(std::string code, std::string message, std::string param) {
  return MakeApiError(400, std::move(code), std::move(message), std::move(param));
}

const std::string* Last(const RequestFields& f, const std::string& name) {
  auto it = f.find(name);
  if (it == f.end() || it->second.empty()) return nullptr;
  return &it->second.back();
}

std::optional<int64_t> ParseInt(std::string_view s) {
  s = Trim(s);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<double> ParseDouble(std::string_view s) {
  s = Trim(s);
  if (s.empty()) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<bool> ParseBool(std::string_view s) {
  s = Trim(s);
  if (s == "true" || s == "1") return true;
  if (s == "false" || s == "0") return false;
  return std::nullopt;
}

// The text-to-speech fields (OpenAI's speech request); CheckJobParams checks their values.
std::optional<ApiError> ParseSpeech(const RequestFields& f, JobParams& params) {
  if (const auto* input = Last(f, "input")) params.input = *input;
  if (const auto* voice = Last(f, "voice")) params.voice = std::string(Trim(*voice));
  if (const auto* instructions = Last(f, "instructions")) params.instructions = *instructions;
  if (const auto* speed = Last(f, "speed")) {
    auto v = ParseDouble(*speed);
    if (!v) return Bad("bad_speed", "'speed' must be a number from 0.25 to 4", "speed");
    params.speed = static_cast<float>(std::clamp(*v, 0.0, 5.0));  // out of range stays out
  }
  if (const auto* sf = Last(f, "stream_format"); sf && Trim(*sf) != "audio") {
    return Bad("bad_stream_format",
               "'stream_format' must be audio (the audio file; sse is not supported)",
               "stream_format");
  }
  return std::nullopt;
}

}  // namespace

std::optional<int> ParseKeepAlive(const std::string& text) {
  if (Trim(text) == "-1") return -1;
  return ParseDurationSeconds(text);
}

std::optional<ApiError> FieldsFromJson(const nlohmann::json& body, RequestFields& out) {
  if (!body.is_object()) {
    return Bad("bad_json", "the request body must be a JSON object", "");
  }
  auto text = [](const nlohmann::json& v) -> std::optional<std::string> {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_number_integer()) return v.dump();
    if (v.is_number()) return v.dump();
    return std::nullopt;
  };
  for (const auto& [key, value] : body.items()) {
    if (value.is_null()) continue;
    auto& values = out[key];
    if (key == "chunking_strategy" && value.is_object()) {  // api/chunking_strategy.h reads it
      values.push_back(value.dump());
      continue;
    }
    if (value.is_array()) {
      for (const auto& item : value) {
        auto t = text(item);
        if (!t) return Bad("bad_field", "'" + key + "' must hold plain values", key);
        values.push_back(*t);
      }
      continue;
    }
    auto t = text(value);
    if (!t) return Bad("bad_field", "'" + key + "' must be a string, number or boolean", key);
    values.push_back(*t);
  }
  return std::nullopt;
}

std::optional<ApiError> ParseJobRequest(const RequestFields& f, const JobRequestRules& rules,
                                        server::SubmitJob& out) {
  // model
  const std::string* model = Last(f, "model");
  std::string name = model ? std::string(Trim(*model)) : "";
  if (name.empty() || name == "whisper-1") {
    if (!rules.default_model.empty()) {
      name = rules.default_model;
    } else if (name.empty()) {
      return Bad("missing_model", "'model' is required", "model");
    }
  }
  out.model = name;

  // task
  if (!rules.task.empty()) {
    out.params.task = rules.task;
  } else if (const auto* task = Last(f, "task")) {
    out.params.task = *task;
  }

  if (const auto* lang = Last(f, "language")) {
    std::string l(Trim(*lang));
    for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.params.language = l.empty() ? "auto" : l;
  }
  if (const auto* prompt = Last(f, "prompt")) out.params.prompt = *prompt;

  if (const auto* t = Last(f, "temperature")) {
    auto v = ParseDouble(*t);
    if (!v) {
      return Bad("bad_temperature", "'temperature' must be a number from 0 to 1", "temperature");
    }
    // Clamped only so the float holds it: a value out of 0..1 stays out, for CheckJobParams.
    out.params.temperature = static_cast<float>(std::clamp(*v, -1.0, 2.0));
  }

  if (out.params.task == "speech") {
    out.params.response_format = std::string(kDefaultSpeechFormat);
    if (auto e = ParseSpeech(f, out.params)) return e;
  }
  if (const auto* rf = Last(f, "response_format")) out.params.response_format = *rf;

  for (const char* key : {"timestamp_granularities[]", "timestamp_granularities"}) {
    auto it = f.find(key);
    if (it == f.end()) continue;
    for (const auto& value : it->second) {
      size_t i = 0;
      while (i <= value.size()) {  // comma-separated also accepted
        size_t j = value.find(',', i);
        if (j == std::string::npos) j = value.size();
        std::string g(Trim(std::string_view(value).substr(i, j - i)));
        if (g == "word") {
          out.params.word_timestamps = true;
        } else if (g != "segment") {
          return Bad("bad_timestamp_granularity",
                     "'timestamp_granularities[]' values must be segment or word", key);
        }
        i = j + 1;
      }
    }
  }
  if (const auto* w = Last(f, "word_timestamps")) {
    auto v = ParseBool(*w);
    if (!v)
      return Bad("bad_word_timestamps", "'word_timestamps' must be true or false",
                 "word_timestamps");
    out.params.word_timestamps = out.params.word_timestamps || *v;
  }

  if (const auto* p = Last(f, "priority")) {
    auto v = ParsePriority(*p);
    if (!v) return Bad("bad_priority", "'priority' must be high, normal or low", "priority");
    out.priority = *v;
  }
  if (const auto* k = Last(f, "keep_alive")) {
    auto v = ParseKeepAlive(*k);
    if (!v) {
      return Bad("bad_keep_alive",
                 "'keep_alive' must be seconds (or 30s, 5m, 1h), 0 to unload at once or -1 to keep",
                 "keep_alive");
    }
    out.params.keep_alive_s = *v;
  }
  if (const auto* d = Last(f, "device")) {
    std::string dev(Trim(*d));
    out.params.device = dev == "auto" ? "" : dev;
  }
  if (const auto* t = Last(f, "timeout")) {
    auto v = ParseInt(*t);
    if (!v || *v <= 0 || *v > server::kMaxJobTimeoutS) {
      return Bad("bad_timeout", "'timeout' must be a number of seconds, 1 to 604800", "timeout");
    }
    out.params.timeout_s = static_cast<int>(*v);
  }
  if (const auto* s = Last(f, "stream")) {
    auto v = ParseBool(*s);
    if (v && rules.stream) {
      *rules.stream = *v;
    } else if (!v || *v) {
      return Bad("streaming_not_supported",
                 "streamed responses are supported on POST /v1/audio/transcriptions only; use "
                 "POST /v1/jobs and GET /v1/jobs/{id}/events",
                 "stream");
    }
  }
  if (out.params.task != "speech") {  // text to speech cuts no audio
    if (auto e = ParseChunkingStrategy(f, out.params)) return e;
  }
  if (auto problem = server::CheckJobParams(out.params)) {
    return Bad(problem->error.code, problem->error.message, problem->field);
  }
  return std::nullopt;
}

}  // namespace steno::api
