// Server-side turn detection for live sessions (OpenAI Realtime's `server_vad`): where an
// utterance starts and ends, from the speech probability of each VAD frame (the Silero model,
// engine/vad.h). A pure state machine: no model, no clock, no threads; the live work item
// (runner/live_steps.h) feeds it the probabilities of the audio as it arrives.
//
// Positions are samples of the session's timeline. Frames come in order and back to back.
//   - A turn starts at the first frame whose probability is ≥ threshold; it is reported
//     prefix_padding_ms earlier (OpenAI's audio_start_ms includes the padding), but never before
//     the floor (the end of the previous turn, a clear, or the detector's start).
//   - During a turn, a frame below threshold − 0.15 (at least 0.01; Silero's hysteresis, as
//     whisper.cpp's segmenter) starts a silence, and a frame ≥ threshold ends it. When a silence
//     has lasted silence_duration_ms (counted to the end of the current frame), the turn stops at
//     the end of that frame: OpenAI's audio_end_ms includes the silence.
//   - A turn is never longer than `max_turn_samples` (whisper's 30 s window): at the frame that
//     would carry it past that, it stops at the frame's start (forced), and if speech goes on
//     (no silence under way) the next turn starts right there, without padding.
#pragma once

#include <cstdint>
#include <vector>

#include "core/vad_settings.h"

namespace steno::engine {

struct TurnEvent {
  enum class Kind { kStarted, kStopped };
  Kind kind = Kind::kStarted;
  int64_t sample = 0;   // where the turn starts (padding included) or ends (silence included)
  bool forced = false;  // kStopped: cut at the maximum length, not by a silence

  bool operator==(const TurnEvent&) const = default;
};

class TurnDetector {
 public:
  static constexpr int kSamplesPerMs = 16;  // 16 kHz audio

  TurnDetector(VadSettings settings, int64_t max_turn_samples);

  // One frame, samples [start, start + length), with its speech probability. Returns what it
  // changed, in order: nothing, a start, a stop, or (a forced cut while speech goes on) a stop
  // then a start.
  std::vector<TurnEvent> Push(int64_t start, int64_t length, float probability);

  // Forgets any turn under way; none starts before `floor` (a clear, a commit).
  void Reset(int64_t floor);
  // A turn is under way from `start` (a buffer kept open when turn detection is switched on).
  void Open(int64_t start);
  // New settings, from the next frame on; a turn under way stays open.
  void set_settings(VadSettings settings) { settings_ = settings; }

  bool in_turn() const { return in_turn_; }
  int64_t turn_start() const { return turn_start_; }
  const VadSettings& settings() const { return settings_; }

 private:
  float StopThreshold() const;

  VadSettings settings_;
  int64_t max_turn_samples_;
  bool in_turn_ = false;
  int64_t turn_start_ = 0;
  int64_t silence_start_ = -1;  // -1: no silence under way
  int64_t floor_ = 0;
};

}  // namespace steno::engine
