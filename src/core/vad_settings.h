// Voice activity detection for one job (OpenAI's `chunking_strategy`): the Silero model finds
// the speech first, only the speech is transcribed, and every time stays in the original audio's
// timeline (engine/speech_timeline.h). Nothing is decoded from a detected silence, so nothing
// is invented there.
#pragma once

namespace steno {

// The settings of a run with VAD. Defaults are whisper.cpp's (whisper_vad_default_params).
struct VadSettings {
  float threshold = 0.5f;         // speech probability above which audio counts as speech
  int prefix_padding_ms = 30;     // audio kept before and after each speech region
  int silence_duration_ms = 100;  // a pause at least this long ends a speech region

  bool operator==(const VadSettings&) const = default;
};

// OpenAI's defaults for the fields a `server_vad` chunking strategy leaves out.
inline constexpr VadSettings kOpenAiServerVadDefaults{0.5f, 300, 200};

// Bounds a request must keep to (server/job_params_check.h refuses others).
inline constexpr int kMaxVadPaddingMs = 10'000;
inline constexpr int kMaxVadSilenceMs = 60'000;

}  // namespace steno
