// OpenAI Realtime transcription sessions' events (the beta `transcription_session.*` names of the
// `openai` npm package 4.95, and the GA `session.update` with `type: "transcription"`), as the
// WebSocket endpoint GET /v1/realtime reads and writes them (api/realtime_service.h): parsing of
// the client's events, the server's events as JSON, and the input audio's conversion to the
// runners' PCM16 16 kHz mono (live::kSampleRate).
//
// Input audio formats (`input_audio_format`): "pcm16" is OpenAI's PCM16 mono at 24 kHz; steno
// also takes "pcm16_24000" and "pcm16_16000" (16 kHz, passed on as it is), and the GA form
// `audio.input.format: {"type": "audio/pcm", "rate": 24000 | 16000}`. G.711 is refused.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/live_items.h"
#include "core/result.h"

namespace steno::api::realtime {

// A session's configuration as the client set it.
struct SessionConfig {
  std::string model;  // "" until the client or the server's default names one
  live::Settings settings;
  int input_rate = 24'000;  // 24000 or 16000
};

// A client event, parsed. Errors carry OpenAI's error code and the param at fault.
struct ClientEvent {
  enum class Type { kUpdate, kAppend, kCommit, kClear, kClose };
  Type type = Type::kAppend;
  std::string event_id;  // the client's, if it sent one
  // kUpdate: the fields it set, applied over the session's (unset: unchanged).
  std::optional<std::string> model;
  std::optional<std::string> language;
  std::optional<std::string> prompt;
  bool turn_detection_set = false;
  std::optional<VadSettings> turn_detection;  // with turn_detection_set: null = manual commits
  std::optional<int> input_rate;
  // kAppend: little-endian PCM16 at the session's input rate.
  std::vector<int16_t> pcm;
};

struct ProtocolError {
  std::string code;  // "invalid_json", "unknown_event", "invalid_base64", ...
  std::string message;
  std::string param;     // the field at fault ("" if none)
  std::string event_id;  // the client event's id, if known
};

// Parses one text frame. `session_rate` is the input rate audio is read at (odd byte counts are
// refused).
std::variant<ClientEvent, ProtocolError> ParseClientEvent(std::string_view text);

// Applies an update to `config`.
void ApplyUpdate(const ClientEvent& update, SessionConfig& config);

// Server events. `event_id` is the server's (NextEventId).
nlohmann::json SessionJson(const SessionConfig& config, const std::string& id);
nlohmann::json SessionEvent(const std::string& type, const std::string& event_id,
                            const SessionConfig& config, const std::string& session_id);
nlohmann::json ErrorEvent(const std::string& event_id, const ProtocolError& error);
// The runner's event as OpenAI's (item ids from ItemId); nullopt for none.
std::optional<nlohmann::json> RunnerEventJson(const std::string& event_id,
                                              const live::Event& event);
std::string ItemId(int64_t item);  // "item_000001"

// Converts PCM16 mono at `input_rate` to live::kSampleRate, in a stream (libswresample keeps
// the filter's state between calls). 16 kHz input is passed on unchanged.
class Resampler {
 public:
  explicit Resampler(int input_rate);
  ~Resampler();
  Resampler(const Resampler&) = delete;
  Resampler& operator=(const Resampler&) = delete;

  int input_rate() const { return rate_; }
  std::vector<int16_t> Convert(const std::vector<int16_t>& in);
  // What the filter still holds (its delay), emptying it: called at a commit, so the utterance
  // has all its samples.
  std::vector<int16_t> Flush();

 private:
  struct Swr;
  int rate_;
  std::unique_ptr<Swr> swr_;  // null at 16 kHz
};

}  // namespace steno::api::realtime
