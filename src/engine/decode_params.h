// How one audio buffer is decoded. Defaults follow upstream whisper-cli so that the same flags
// give the same output (the parity test relies on it).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/vad_settings.h"
#include "engine/speech_timeline.h"

namespace steno::engine {

struct DecodeParams {
  std::string language = "auto";  // ISO 639-1 code, or "auto" to detect
  bool translate = false;         // translate to English instead of transcribing
  std::string initial_prompt;     // text that conditions the first window
  float temperature = 0.0f;       // initial sampling temperature
  float temperature_inc = 0.2f;   // fallback increment; 0 disables fallback (deterministic)
  int beam_size = 5;              // > 1: beam search; 1: greedy
  int best_of = 5;                // candidates when sampling at temperature > 0
  int n_threads = 4;
  bool word_timestamps = false;
  float entropy_thold = 2.4f;
  float logprob_thold = -1.0f;
  float no_speech_thold = 0.6f;
  // Set: voice activity detection first, and only the speech is decoded (engine/vad.h); segment
  // times stay in the original audio's timeline (engine/speech_timeline.h).
  std::optional<VadSettings> vad;
  std::string vad_model_path;  // the Silero ggml file; needed when `vad` is set
  // Set: the speech is already known (one chunk of a long recording, core/chunk_work.h): only
  // these regions (sorted, disjoint, seconds of the audio) are decoded, no VAD runs, and times
  // are in the audio's timeline as with `vad`. Not carried on the wire (DecodeParamsToJson).
  std::optional<std::vector<SpeechRegion>> speech;
};

// Checks ranges and the language (engine/languages.h). kBadInput "bad_language" for an unknown
// language, "bad_param" for a value out of range (VAD settings included).
Status ValidateDecodeParams(const DecodeParams& params);

}  // namespace steno::engine
