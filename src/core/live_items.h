// A live transcription session as a work item (OpenAI Realtime transcription sessions, issue
// 19): what the supervisor and a runner tell each other about it. These types are the contract
// between the API's WebSocket sessions (server side) and the runners that decode them.
//
// A session is one job, kept in memory like a synchronous request, whose params carry
// `"live": Settings`. The scheduler admits it like any job (the ledger, one stream of its
// model's runner) and it holds that stream from then until it ends, so its runner is never
// unloaded under it. Once the job is processing, the supervisor hands it Input through
// Scheduler::Feed (→ RunnerBackend::Feed → the runner), in order; the runner answers with Events
// as the job's kSegment payloads, in order, and ends the job (kDone) after an Input kClose, or
// with kError (cancelled, crash, ...) like any job.
//
// Audio is mono PCM16 at 16 kHz (kSampleRate); times are milliseconds of the session's audio
// timeline: sample 0 is the first sample appended.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "core/vad_settings.h"

namespace steno::live {

inline constexpr int kSampleRate = 16'000;
// OpenAI Realtime's `server_vad` turn detection defaults (threshold, prefix_padding_ms,
// silence_duration_ms).
inline constexpr VadSettings kRealtimeVadDefaults{0.5f, 300, 500};

// A session's settings: the job's params["live"], and what an Input kUpdate replaces.
struct Settings {
  std::string language;  // "" = detect
  std::string prompt;
  // Server VAD (the Silero model): each utterance is committed when a silence of
  // silence_duration_ms follows speech. Unset: only the client's kCommit ends an utterance.
  std::optional<VadSettings> turn_detection = kRealtimeVadDefaults;

  bool operator==(const Settings&) const = default;
};

struct Input {
  enum class Op {
    kAudio,   // `pcm` is appended to the open buffer
    kCommit,  // the buffer so far is one utterance: decode it and report kCommitted, kCompleted
    kClear,   // drop the buffer not yet committed (an utterance in progress is forgotten)
    kUpdate,  // `settings` replace the session's (turn detection from the next frame on)
    kClose,   // end the session: a committed utterance still decoding completes first; the
              // uncommitted buffer is dropped; then the job is done
  };
  Op op = Op::kAudio;
  std::vector<int16_t> pcm;  // kAudio
  Settings settings;         // kUpdate

  bool operator==(const Input&) const = default;
};

struct Event {
  enum class Kind {
    kSpeechStarted,  // server VAD heard the start of `item` at audio_start_ms
    kSpeechStopped,  // ... and its end at audio_end_ms (a kCommitted follows)
    kCommitted,      // `item` (audio_start_ms..audio_end_ms) is committed and being decoded
    kDelta,          // `text` is appended to `item`'s transcript so far (a partial decode)
    kCompleted,      // `text` is `item`'s whole transcript (authoritative over the deltas)
    kFailed,         // `item` could not be decoded, or (item 0) the session's input was refused:
                     // `code` and `text` say why; the session goes on
  };
  Kind kind = Kind::kDelta;
  int64_t item = 0;  // the utterance, numbered from 1 in the session
  std::string text;
  std::string code;  // kFailed: "decode_failed", "buffer_full" (audio came faster than it is
                     // decoded and was dropped), ...
  int64_t audio_start_ms = 0;
  int64_t audio_end_ms = 0;

  bool operator==(const Event&) const = default;
};

// JSON forms (the job's params["live"], Feed's input, kSegment payloads). Audio travels as
// base64 of little-endian PCM16 in "pcm16". The readers answer kBadInput naming the field.
nlohmann::json SettingsToJson(const Settings& settings);
Result<Settings> SettingsFromJson(const nlohmann::json& json);
nlohmann::json InputToJson(const Input& input);
Result<Input> InputFromJson(const nlohmann::json& json);
nlohmann::json EventToJson(const Event& event);
Result<Event> EventFromJson(const nlohmann::json& json);

}  // namespace steno::live
