#include "api/chunking_strategy.h"

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "core/strings.h"

namespace steno::api {
namespace {

constexpr const char* kField = "chunking_strategy";

ApiError Bad(const std::string& message) {
  return MakeApiError(400, "bad_chunking_strategy", message, kField);
}

ApiError BadShape() {
  return Bad(
      "'chunking_strategy' must be \"auto\" or an object {\"type\": \"server_vad\", "
      "\"threshold\": 0..1, \"prefix_padding_ms\": ms, \"silence_duration_ms\": ms}");
}

// The object's members from the bracketed form fields; nullopt when there are none.
std::optional<nlohmann::json> FromBrackets(const RequestFields& f) {
  const std::string prefix = std::string(kField) + "[";
  nlohmann::json obj = nlohmann::json::object();
  for (const auto& [key, values] : f) {
    if (key.rfind(prefix, 0) != 0 || key.back() != ']' || values.empty()) continue;
    const std::string member = key.substr(prefix.size(), key.size() - prefix.size() - 1);
    const std::string value(Trim(values.back()));
    // Form values are text: numbers are read as JSON numbers, anything else stays a string.
    auto parsed = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
    obj[member] = !parsed.is_discarded() && parsed.is_number() ? parsed : nlohmann::json(value);
  }
  if (obj.empty()) return std::nullopt;
  return obj;
}

// An integer number of milliseconds (300 and 300.0 both are); nullopt otherwise.
std::optional<int> Millis(const nlohmann::json& v) {
  if (!v.is_number()) return std::nullopt;
  const double d = v.get<double>();
  if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 1e9) return std::nullopt;
  return static_cast<int>(d);
}

std::optional<ApiError> FromObject(const nlohmann::json& obj, JobParams& params) {
  if (!obj.is_object()) return BadShape();
  auto type = obj.find("type");
  if (type == obj.end() || !type->is_string() || *type != "server_vad") {
    return Bad("'chunking_strategy.type' must be \"server_vad\"");
  }
  VadSettings v = kOpenAiServerVadDefaults;
  for (const auto& [key, value] : obj.items()) {
    if (key == "type") continue;
    if (key == "threshold") {
      if (!value.is_number()) return Bad("'chunking_strategy.threshold' must be a number");
      v.threshold = value.get<float>();
    } else if (key == "prefix_padding_ms" || key == "silence_duration_ms") {
      auto ms = Millis(value);
      if (!ms) return Bad("'chunking_strategy." + key + "' must be a whole number of ms");
      (key == "prefix_padding_ms" ? v.prefix_padding_ms : v.silence_duration_ms) = *ms;
    } else {
      return Bad("'chunking_strategy' has no field '" + key +
                 "' (known: type, threshold, prefix_padding_ms, silence_duration_ms)");
    }
  }
  params.chunking_strategy = "server_vad";
  params.vad = v;
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> ParseChunkingStrategy(const RequestFields& f, JobParams& params) {
  auto it = f.find(kField);
  if (it != f.end() && !it->second.empty()) {
    const std::string value(Trim(it->second.back()));
    if (value == "auto") {
      params.chunking_strategy = "auto";
      return std::nullopt;
    }
    if (value.empty() || value.front() != '{') return BadShape();
    auto obj = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
    if (obj.is_discarded()) return Bad("'chunking_strategy' is not valid JSON");
    return FromObject(obj, params);
  }
  if (auto obj = FromBrackets(f)) return FromObject(*obj, params);
  return std::nullopt;
}

}  // namespace steno::api
