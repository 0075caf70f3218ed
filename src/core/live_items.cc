#include "core/live_items.h"

#include <array>
#include <cstring>
#include <string_view>
#include <utility>

#include "core/base64.h"
#include "core/error.h"

namespace steno::live {

using nlohmann::json;

namespace {

Error BadField(const std::string& field, const std::string& why) {
  return Error(ErrorKind::kBadInput, "bad_live_" + field, field + ": " + why);
}

constexpr std::array<std::pair<Input::Op, std::string_view>, 5> kOps{{
    {Input::Op::kAudio, "audio"},
    {Input::Op::kCommit, "commit"},
    {Input::Op::kClear, "clear"},
    {Input::Op::kUpdate, "update"},
    {Input::Op::kClose, "close"},
}};

constexpr std::array<std::pair<Event::Kind, std::string_view>, 6> kKinds{{
    {Event::Kind::kSpeechStarted, "speech_started"},
    {Event::Kind::kSpeechStopped, "speech_stopped"},
    {Event::Kind::kCommitted, "committed"},
    {Event::Kind::kDelta, "delta"},
    {Event::Kind::kCompleted, "completed"},
    {Event::Kind::kFailed, "failed"},
}};

template <class Table, class Value>
std::string_view NameOf(const Table& table, Value value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "";
}

template <class Table, class Value>
bool ValueOf(const Table& table, std::string_view name, Value& out) {
  for (const auto& [v, n] : table) {
    if (n == name) {
      out = v;
      return true;
    }
  }
  return false;
}

Result<std::string> StringField(const json& j, const char* name) {
  if (!j.contains(name) || j[name].is_null()) return std::string();
  if (!j[name].is_string()) return BadField(name, "must be a string");
  return j[name].get<std::string>();
}

Result<int64_t> IntField(const json& j, const char* name) {
  if (!j.contains(name)) return int64_t{0};
  if (!j[name].is_number_integer()) return BadField(name, "must be an integer");
  return j[name].get<int64_t>();
}

Result<VadSettings> TurnFromJson(const json& j) {
  if (!j.is_object()) return BadField("turn_detection", "must be an object or null");
  VadSettings vad = kRealtimeVadDefaults;
  if (j.contains("threshold")) {
    if (!j["threshold"].is_number()) return BadField("threshold", "must be a number");
    vad.threshold = j["threshold"].get<float>();
  }
  for (auto [name, field] : {std::pair{"prefix_padding_ms", &vad.prefix_padding_ms},
                             std::pair{"silence_duration_ms", &vad.silence_duration_ms}}) {
    if (!j.contains(name)) continue;
    if (!j[name].is_number_integer()) return BadField(name, "must be an integer");
    *field = j[name].get<int>();
  }
  return vad;
}

}  // namespace

json SettingsToJson(const Settings& settings) {
  json j{{"language", settings.language}, {"prompt", settings.prompt}};
  if (settings.turn_detection) {
    const VadSettings& v = *settings.turn_detection;
    j["turn_detection"] = {{"threshold", v.threshold},
                           {"prefix_padding_ms", v.prefix_padding_ms},
                           {"silence_duration_ms", v.silence_duration_ms}};
  } else {
    j["turn_detection"] = nullptr;
  }
  return j;
}

Result<Settings> SettingsFromJson(const json& j) {
  if (!j.is_object()) return BadField("settings", "must be an object");
  Settings s;
  auto language = StringField(j, "language");
  if (!language) return language.error();
  auto prompt = StringField(j, "prompt");
  if (!prompt) return prompt.error();
  s.language = std::move(language.value());
  s.prompt = std::move(prompt.value());
  if (!j.contains("turn_detection") || j["turn_detection"].is_null()) {
    s.turn_detection.reset();
  } else {
    auto turn = TurnFromJson(j["turn_detection"]);
    if (!turn) return turn.error();
    s.turn_detection = turn.value();
  }
  return s;
}

json InputToJson(const Input& input) {
  json j{{"op", NameOf(kOps, input.op)}};
  if (input.op == Input::Op::kAudio) {
    j["pcm16"] = Base64Encode(std::string_view(reinterpret_cast<const char*>(input.pcm.data()),
                                               input.pcm.size() * sizeof(int16_t)));
  } else if (input.op == Input::Op::kUpdate) {
    j["settings"] = SettingsToJson(input.settings);
  }
  return j;
}

Result<Input> InputFromJson(const json& j) {
  if (!j.is_object() || !j.contains("op") || !j["op"].is_string()) {
    return BadField("op", "missing or not a string");
  }
  Input input;
  if (!ValueOf(kOps, j["op"].get<std::string>(), input.op)) {
    return BadField("op", "unknown: " + j["op"].get<std::string>());
  }
  if (input.op == Input::Op::kAudio) {
    auto text = StringField(j, "pcm16");
    if (!text) return text.error();
    auto bytes = Base64Decode(text.value());
    if (!bytes) return BadField("pcm16", "not valid base64");
    if (bytes.value().size() % 2 != 0) return BadField("pcm16", "an odd number of bytes");
    input.pcm.resize(bytes.value().size() / 2);
    std::memcpy(input.pcm.data(), bytes.value().data(), bytes.value().size());
  } else if (input.op == Input::Op::kUpdate) {
    if (!j.contains("settings")) return BadField("settings", "missing");
    auto settings = SettingsFromJson(j["settings"]);
    if (!settings) return settings.error();
    input.settings = std::move(settings.value());
  }
  return input;
}

json EventToJson(const Event& event) {
  return json{{"event", NameOf(kKinds, event.kind)},
              {"item", event.item},
              {"text", event.text},
              {"code", event.code},
              {"audio_start_ms", event.audio_start_ms},
              {"audio_end_ms", event.audio_end_ms}};
}

Result<Event> EventFromJson(const json& j) {
  if (!j.is_object() || !j.contains("event") || !j["event"].is_string()) {
    return BadField("event", "missing or not a string");
  }
  Event e;
  if (!ValueOf(kKinds, j["event"].get<std::string>(), e.kind)) {
    return BadField("event", "unknown: " + j["event"].get<std::string>());
  }
  auto item = IntField(j, "item");
  auto text = StringField(j, "text");
  auto code = StringField(j, "code");
  auto start = IntField(j, "audio_start_ms");
  auto end = IntField(j, "audio_end_ms");
  if (!item) return item.error();
  if (!text) return text.error();
  if (!code) return code.error();
  if (!start) return start.error();
  if (!end) return end.error();
  e.item = item.value();
  e.text = std::move(text.value());
  e.code = std::move(code.value());
  e.audio_start_ms = start.value();
  e.audio_end_ms = end.value();
  return e;
}

}  // namespace steno::live
