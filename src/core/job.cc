#include "core/job.h"

#include <nlohmann/json.hpp>

namespace steno {

const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kPending: return "pending";
    case JobState::kLoading: return "loading";
    case JobState::kProcessing: return "processing";
    case JobState::kCompleted: return "completed";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
  }
  return "pending";
}

std::optional<JobState> ParseJobState(std::string_view name) {
  for (auto s : {JobState::kPending, JobState::kLoading, JobState::kProcessing,
                 JobState::kCompleted, JobState::kFailed, JobState::kCancelled}) {
    if (name == JobStateName(s)) return s;
  }
  return std::nullopt;
}

bool IsFinal(JobState state) {
  return state == JobState::kCompleted || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

bool IsActive(JobState state) {
  return state == JobState::kLoading || state == JobState::kProcessing;
}

const char* PriorityName(Priority priority) {
  switch (priority) {
    case Priority::kHigh: return "high";
    case Priority::kNormal: return "normal";
    case Priority::kLow: return "low";
  }
  return "normal";
}

std::optional<Priority> ParsePriority(std::string_view name) {
  for (auto p : {Priority::kHigh, Priority::kNormal, Priority::kLow}) {
    if (name == PriorityName(p)) return p;
  }
  return std::nullopt;
}

std::string JobParamsToJson(const JobParams& p) {
  nlohmann::json j = {
      {"task", p.task},
      {"language", p.language},
      {"prompt", p.prompt},
      {"temperature", p.temperature},
      {"response_format", p.response_format},
      {"word_timestamps", p.word_timestamps},
      {"device", p.device},
      {"filename", p.filename},
  };
  if (p.keep_alive_s) j["keep_alive_s"] = *p.keep_alive_s;
  if (p.timeout_s) j["timeout_s"] = *p.timeout_s;
  if (!p.chunking_strategy.empty()) j["chunking_strategy"] = p.chunking_strategy;
  if (p.vad) {
    j["vad"] = {{"threshold", p.vad->threshold},
                {"prefix_padding_ms", p.vad->prefix_padding_ms},
                {"silence_duration_ms", p.vad->silence_duration_ms}};
  }
  if (p.chunk) j["chunk"] = ChunkWorkToJson(*p.chunk);
  if (p.live) j["live"] = live::SettingsToJson(*p.live);
  if (p.task == "speech") {
    j["input"] = p.input;
    j["voice"] = p.voice;
    j["speed"] = p.speed;
    if (!p.instructions.empty()) j["instructions"] = p.instructions;
  }
  // Invalid UTF-8 (a multipart field's bytes) is replaced rather than thrown on.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<JobParams> JobParamsFromJson(std::string_view text) {
  auto bad = [](const std::string& why) {
    return Error(ErrorKind::kBadInput, "bad_job_params", "job parameters: " + why);
  };
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  JobParams p;
  try {
    // Missing fields keep their defaults; unknown fields are ignored (forward compatibility).
    auto get = [&j](const char* key, auto& field) {
      if (auto it = j.find(key); it != j.end() && !it->is_null()) it->get_to(field);
    };
    get("task", p.task);
    get("language", p.language);
    get("prompt", p.prompt);
    get("temperature", p.temperature);
    get("response_format", p.response_format);
    get("word_timestamps", p.word_timestamps);
    get("device", p.device);
    get("filename", p.filename);
    get("input", p.input);
    get("voice", p.voice);
    get("speed", p.speed);
    get("instructions", p.instructions);
    if (auto it = j.find("keep_alive_s"); it != j.end() && !it->is_null())
      p.keep_alive_s = it->get<int>();
    if (auto it = j.find("timeout_s"); it != j.end() && !it->is_null())
      p.timeout_s = it->get<int>();
    get("chunking_strategy", p.chunking_strategy);
    if (auto it = j.find("vad"); it != j.end() && !it->is_null()) {
      if (!it->is_object()) return bad("vad is not an object");
      VadSettings v;
      v.threshold = it->value("threshold", v.threshold);
      v.prefix_padding_ms = it->value("prefix_padding_ms", v.prefix_padding_ms);
      v.silence_duration_ms = it->value("silence_duration_ms", v.silence_duration_ms);
      p.vad = v;
    }
    if (auto it = j.find("chunk"); it != j.end() && !it->is_null()) {
      auto work = ChunkWorkFromJson(*it);
      if (!work.ok()) return bad(work.error().message);
      p.chunk = std::move(work).value();
    }
    if (auto it = j.find("live"); it != j.end() && !it->is_null()) {
      auto settings = live::SettingsFromJson(*it);
      if (!settings.ok()) return bad(settings.error().message);
      p.live = std::move(settings).value();
    }
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }
  return p;
}

}  // namespace steno
