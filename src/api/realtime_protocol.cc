#include "api/realtime_protocol.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "audio/ffmpeg_api.h"
#include "core/base64.h"

namespace steno::api::realtime {

using nlohmann::json;

namespace {

ProtocolError Bad(std::string code, std::string message, std::string param,
                  const std::string& event_id) {
  return ProtocolError{std::move(code), std::move(message), std::move(param), event_id};
}

// A string field: nullopt when absent; an error when not a string (or null where null is not
// allowed).
std::optional<ProtocolError> ReadString(const json& j, const char* name, const std::string& path,
                                        const std::string& event_id,
                                        std::optional<std::string>& out) {
  if (!j.contains(name) || j[name].is_null()) return std::nullopt;
  if (!j[name].is_string()) {
    return Bad("invalid_value", path + name + " must be a string", path + name, event_id);
  }
  out = j[name].get<std::string>();
  return std::nullopt;
}

std::optional<ProtocolError> ReadTranscription(const json& t, const std::string& path,
                                               const std::string& event_id, ClientEvent& e) {
  if (t.is_null()) return std::nullopt;
  if (!t.is_object()) {
    return Bad("invalid_value", path + " must be an object", path, event_id);
  }
  const std::string p = path + ".";
  if (auto err = ReadString(t, "model", p, event_id, e.model)) return err;
  if (auto err = ReadString(t, "language", p, event_id, e.language)) return err;
  if (auto err = ReadString(t, "prompt", p, event_id, e.prompt)) return err;
  return std::nullopt;
}

std::optional<ProtocolError> ReadTurnDetection(const json& t, const std::string& path,
                                               const std::string& event_id, ClientEvent& e) {
  e.turn_detection_set = true;
  if (t.is_null()) {
    e.turn_detection.reset();
    return std::nullopt;
  }
  if (!t.is_object())
    return Bad("invalid_value", path + " must be an object or null", path, event_id);
  if (t.contains("type") && !(t["type"].is_string() && t["type"] == "server_vad")) {
    return Bad("unsupported_turn_detection", "only turn_detection type \"server_vad\" is supported",
               path + ".type", event_id);
  }
  VadSettings v = live::kRealtimeVadDefaults;
  if (t.contains("threshold") && !t["threshold"].is_null()) {
    if (!t["threshold"].is_number() || t["threshold"].get<double>() < 0 ||
        t["threshold"].get<double>() > 1) {
      return Bad("invalid_value", "threshold must be a number from 0 to 1", path + ".threshold",
                 event_id);
    }
    v.threshold = t["threshold"].get<float>();
  }
  for (auto [name, field] : {std::pair{"prefix_padding_ms", &v.prefix_padding_ms},
                             std::pair{"silence_duration_ms", &v.silence_duration_ms}}) {
    if (!t.contains(name) || t[name].is_null()) continue;
    if (!t[name].is_number_integer() || t[name].get<int64_t>() < 0 ||
        t[name].get<int64_t>() > 60'000) {
      return Bad("invalid_value", std::string(name) + " must be an integer from 0 to 60000",
                 path + "." + name, event_id);
    }
    *field = t[name].get<int>();
  }
  e.turn_detection = v;
  return std::nullopt;
}

std::optional<ProtocolError> ReadFormatName(const json& f, const std::string& path,
                                            const std::string& event_id, ClientEvent& e) {
  if (f.is_null()) return std::nullopt;
  const std::string name = f.is_string() ? f.get<std::string>() : "";
  if (name == "pcm16" || name == "pcm16_24000") {
    e.input_rate = 24'000;
  } else if (name == "pcm16_16000") {
    e.input_rate = 16'000;
  } else {
    return Bad("unsupported_audio_format",
               "input_audio_format must be \"pcm16\" (24 kHz), \"pcm16_24000\" or \"pcm16_16000\"",
               path, event_id);
  }
  return std::nullopt;
}

// GA: {"type": "audio/pcm", "rate": 24000 | 16000}.
std::optional<ProtocolError> ReadFormatObject(const json& f, const std::string& path,
                                              const std::string& event_id, ClientEvent& e) {
  if (f.is_null()) return std::nullopt;
  if (f.is_string()) return ReadFormatName(f, path, event_id, e);
  const bool pcm = f.is_object() && f.value("type", std::string()) == "audio/pcm";
  const int rate = pcm && f.contains("rate") && f["rate"].is_number_integer()
                       ? f["rate"].get<int>()
                       : (pcm && !f.contains("rate") ? 24'000 : 0);
  if (rate != 24'000 && rate != 16'000) {
    return Bad("unsupported_audio_format",
               "the input format must be {\"type\": \"audio/pcm\", \"rate\": 24000 or 16000}", path,
               event_id);
  }
  e.input_rate = rate;
  return std::nullopt;
}

// The beta transcription session object (transcription_session.update's `session`).
std::optional<ProtocolError> ReadBetaSession(const json& s, const std::string& event_id,
                                             ClientEvent& e) {
  if (s.contains("input_audio_format")) {
    if (auto err =
            ReadFormatName(s["input_audio_format"], "session.input_audio_format", event_id, e)) {
      return err;
    }
  }
  if (s.contains("input_audio_transcription")) {
    if (auto err = ReadTranscription(s["input_audio_transcription"],
                                     "session.input_audio_transcription", event_id, e)) {
      return err;
    }
  }
  if (s.contains("turn_detection")) {
    if (auto err = ReadTurnDetection(s["turn_detection"], "session.turn_detection", event_id, e)) {
      return err;
    }
  }
  return std::nullopt;
}

// GA: session.update with {"type": "transcription", "audio": {"input": {format, transcription,
// turn_detection}}}.
std::optional<ProtocolError> ReadGaSession(const json& s, const std::string& event_id,
                                           ClientEvent& e) {
  if (!s.contains("audio") || s["audio"].is_null()) return std::nullopt;
  const json& audio = s["audio"];
  if (!audio.is_object() || (audio.contains("input") && !audio["input"].is_object())) {
    return Bad("invalid_value", "session.audio.input must be an object", "session.audio", event_id);
  }
  if (!audio.contains("input")) return std::nullopt;
  const json& in = audio["input"];
  const std::string p = "session.audio.input.";
  if (in.contains("format")) {
    if (auto err = ReadFormatObject(in["format"], p + "format", event_id, e)) return err;
  }
  if (in.contains("transcription")) {
    if (auto err = ReadTranscription(in["transcription"], p + "transcription", event_id, e)) {
      return err;
    }
  }
  if (in.contains("turn_detection")) {
    if (auto err = ReadTurnDetection(in["turn_detection"], p + "turn_detection", event_id, e)) {
      return err;
    }
  }
  return std::nullopt;
}

std::optional<ProtocolError> ReadUpdate(const json& j, const std::string& type,
                                        const std::string& event_id, ClientEvent& e) {
  e.type = ClientEvent::Type::kUpdate;
  if (!j.contains("session") || !j["session"].is_object()) {
    return Bad("missing_required_parameter", "the event needs a `session` object", "session",
               event_id);
  }
  const json& s = j["session"];
  if (type == "session.update" && s.value("type", std::string()) == "transcription") {
    return ReadGaSession(s, event_id, e);
  }
  if (type == "session.update" && !s.contains("input_audio_transcription") &&
      !s.contains("input_audio_format")) {
    return Bad("unsupported_session_type",
               "this endpoint runs transcription sessions: session.type must be \"transcription\"",
               "session.type", event_id);
  }
  return ReadBetaSession(s, event_id, e);
}

}  // namespace

std::variant<ClientEvent, ProtocolError> ParseClientEvent(std::string_view text) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Bad("invalid_json", "the message is not a JSON object", "", "");
  }
  ClientEvent e;
  if (j.contains("event_id") && j["event_id"].is_string()) e.event_id = j["event_id"];
  if (!j.contains("type") || !j["type"].is_string()) {
    return Bad("missing_required_parameter", "the event has no `type`", "type", e.event_id);
  }
  const std::string type = j["type"];
  if (type == "input_audio_buffer.append") {
    e.type = ClientEvent::Type::kAppend;
    if (!j.contains("audio") || !j["audio"].is_string()) {
      return Bad("missing_required_parameter", "input_audio_buffer.append needs `audio` (base64)",
                 "audio", e.event_id);
    }
    auto bytes = Base64Decode(j["audio"].get_ref<const std::string&>());
    if (!bytes.ok()) {
      return Bad("invalid_base64", "`audio` is not valid base64", "audio", e.event_id);
    }
    if (bytes->size() % 2 != 0) {
      return Bad("invalid_audio", "`audio` must be whole PCM16 samples (an even number of bytes)",
                 "audio", e.event_id);
    }
    e.pcm.resize(bytes->size() / 2);
    std::memcpy(e.pcm.data(), bytes->data(), bytes->size());
    return e;
  }
  if (type == "input_audio_buffer.commit") {
    e.type = ClientEvent::Type::kCommit;
    return e;
  }
  if (type == "input_audio_buffer.clear") {
    e.type = ClientEvent::Type::kClear;
    return e;
  }
  if (type == "session.close" || type == "transcription_session.close") {
    e.type = ClientEvent::Type::kClose;
    return e;
  }
  if (type == "transcription_session.update" || type == "session.update") {
    if (auto err = ReadUpdate(j, type, e.event_id, e)) return *err;
    return e;
  }
  return Bad("unknown_event", "unknown event type: " + type.substr(0, 100), "type", e.event_id);
}

void ApplyUpdate(const ClientEvent& u, SessionConfig& c) {
  if (u.model) c.model = *u.model;
  if (u.language) c.settings.language = *u.language;
  if (u.prompt) c.settings.prompt = *u.prompt;
  if (u.turn_detection_set) c.settings.turn_detection = u.turn_detection;
  if (u.input_rate) c.input_rate = *u.input_rate;
}

json SessionJson(const SessionConfig& c, const std::string& id) {
  json turn = nullptr;
  if (c.settings.turn_detection) {
    const VadSettings& v = *c.settings.turn_detection;
    turn = {{"type", "server_vad"},
            {"threshold", v.threshold},
            {"prefix_padding_ms", v.prefix_padding_ms},
            {"silence_duration_ms", v.silence_duration_ms}};
  }
  return json{
      {"id", id},
      {"object", "realtime.transcription_session"},
      {"input_audio_format", c.input_rate == 24'000 ? "pcm16" : "pcm16_16000"},
      {"input_audio_transcription",
       {{"model", c.model.empty() ? json(nullptr) : json(c.model)},
        {"language", c.settings.language.empty() ? json(nullptr) : json(c.settings.language)},
        {"prompt", c.settings.prompt}}},
      {"turn_detection", turn},
      {"modalities", {"text"}},
      {"include", json::array()},
      {"client_secret", nullptr}};
}

json SessionEvent(const std::string& type, const std::string& event_id, const SessionConfig& c,
                  const std::string& session_id) {
  return json{{"type", type}, {"event_id", event_id}, {"session", SessionJson(c, session_id)}};
}

json ErrorEvent(const std::string& event_id, const ProtocolError& e) {
  return json{{"type", "error"},
              {"event_id", event_id},
              {"error",
               {{"type", "invalid_request_error"},
                {"code", e.code},
                {"message", e.message},
                {"param", e.param.empty() ? json(nullptr) : json(e.param)},
                {"event_id", e.event_id.empty() ? json(nullptr) : json(e.event_id)}}}};
}

std::string ItemId(int64_t item) {
  return fmt::format("item_{:06d}", item);
}

std::optional<json> RunnerEventJson(const std::string& event_id, const live::Event& e) {
  using Kind = live::Event::Kind;
  const std::string item = ItemId(e.item);
  switch (e.kind) {
    case Kind::kSpeechStarted:
      return json{{"type", "input_audio_buffer.speech_started"},
                  {"event_id", event_id},
                  {"item_id", item},
                  {"audio_start_ms", e.audio_start_ms}};
    case Kind::kSpeechStopped:
      return json{{"type", "input_audio_buffer.speech_stopped"},
                  {"event_id", event_id},
                  {"item_id", item},
                  {"audio_end_ms", e.audio_end_ms}};
    case Kind::kCommitted:
      return json{{"type", "input_audio_buffer.committed"},
                  {"event_id", event_id},
                  {"item_id", item},
                  {"previous_item_id", e.item > 1 ? json(ItemId(e.item - 1)) : json(nullptr)},
                  {"audio_start_ms", e.audio_start_ms},
                  {"audio_end_ms", e.audio_end_ms}};
    case Kind::kDelta:
      return json{{"type", "conversation.item.input_audio_transcription.delta"},
                  {"event_id", event_id},
                  {"item_id", item},
                  {"content_index", 0},
                  {"delta", e.text}};
    case Kind::kCompleted:
      return json{{"type", "conversation.item.input_audio_transcription.completed"},
                  {"event_id", event_id},
                  {"item_id", item},
                  {"content_index", 0},
                  {"transcript", e.text},
                  {"audio_start_ms", e.audio_start_ms},
                  {"audio_end_ms", e.audio_end_ms}};
    case Kind::kFailed:
      if (e.item <= 0) {
        // The session's input was refused (buffer_full, ...): an error event.
        return ErrorEvent(event_id,
                          ProtocolError{e.code.empty() ? "live_failed" : e.code, e.text, "", ""});
      }
      return json{{"type", "conversation.item.input_audio_transcription.failed"},
                  {"event_id", event_id},
                  {"item_id", item},
                  {"content_index", 0},
                  {"error",
                   {{"type", "transcription_error"},
                    {"code", e.code},
                    {"message", e.text},
                    {"param", nullptr}}}};
  }
  return std::nullopt;
}

struct Resampler::Swr {
  SwrContext* ctx = nullptr;
  ~Swr() { audio::ffmpeg::Api().swr_free(&ctx); }
};

Resampler::Resampler(int input_rate) : rate_(input_rate) {
  if (rate_ == live::kSampleRate) return;
  if (auto loaded = audio::ffmpeg::Load(); !loaded)
    throw std::runtime_error(loaded.error().message);
  swr_ = std::make_unique<Swr>();
  AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
  if (audio::ffmpeg::Api().swr_alloc_set_opts2(&swr_->ctx, &mono, AV_SAMPLE_FMT_S16,
                                               live::kSampleRate, &mono, AV_SAMPLE_FMT_S16, rate_,
                                               0, nullptr) < 0 ||
      audio::ffmpeg::Api().swr_init(swr_->ctx) < 0) {
    throw std::runtime_error("cannot set up the audio resampler");
  }
}

Resampler::~Resampler() = default;

std::vector<int16_t> Resampler::Convert(const std::vector<int16_t>& in) {
  if (!swr_) return in;
  const int count = static_cast<int>(in.size());
  std::vector<int16_t> out(
      static_cast<size_t>(audio::ffmpeg::Api().swr_get_out_samples(swr_->ctx, count)) + 16);
  auto* dst = reinterpret_cast<uint8_t*>(out.data());
  const auto* src = reinterpret_cast<const uint8_t*>(in.data());
  const int got = audio::ffmpeg::Api().swr_convert(swr_->ctx, &dst, static_cast<int>(out.size()),
                                                   count > 0 ? &src : nullptr, count);
  out.resize(static_cast<size_t>(std::max(0, got)));
  return out;
}

std::vector<int16_t> Resampler::Flush() {
  if (!swr_) return {};
  std::vector<int16_t> out = Convert({});
  // Drained: start the filter afresh for the audio that follows.
  audio::ffmpeg::Api().swr_init(swr_->ctx);
  return out;
}

}  // namespace steno::api::realtime
