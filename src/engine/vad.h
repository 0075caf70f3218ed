// Voice activity detection with whisper.cpp's VAD API (Silero VAD in ggml format,
// `steno models pull silero-v6.2.0`). The model is small and always runs on the CPU.
//
// One detector belongs to one thread at a time (whisper.cpp's VAD context keeps the LSTM state
// of the audio it last read); a runner keeps one per stream.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/vad_settings.h"
#include "engine/speech_timeline.h"

struct whisper_vad_context;

namespace steno::engine {

class VadDetector {
 public:
  // The Silero model reads 16 kHz audio in windows of 512 samples (32 ms).
  static constexpr int kFrameSamples = 512;

  // Loads the model at `path` on the CPU, on one thread: the model runs one tiny graph per 32 ms
  // of audio, and a second thread costs far more in synchronisation than it saves (600 s of
  // audio on a busy 2-core machine: 1.7 s of CPU on one thread, 72 s on two). Errors: kBadInput
  // "vad_model_missing" (no such file; the message says to run `steno models pull
  // silero-v6.2.0`), kBadInput "bad_vad_model" (whisper.cpp cannot load it).
  static Result<std::unique_ptr<VadDetector>> Load(const std::string& path);
  ~VadDetector();
  VadDetector(const VadDetector&) = delete;
  VadDetector& operator=(const VadDetector&) = delete;

  // The speech in 16 kHz mono samples, sorted, in seconds (whisper.cpp's
  // whisper_vad_segments_from_samples with `settings`; its other parameters keep whisper.cpp's
  // defaults). An empty list: no speech. Errors: kInternal "vad_failed".
  Result<std::vector<SpeechRegion>> Detect(std::span<const float> pcm, const VadSettings& settings);

  // Streaming (a live session): the speech probability of each frame of kFrameSamples samples in
  // `pcm` (its size a multiple of kFrameSamples), carrying the model's state over from the audio
  // read before, so audio read in pieces gives the probabilities it gives read whole. Detect and
  // ResetState start afresh. Errors: kBadInput "bad_vad_frames" (a partial frame), kInternal
  // "vad_failed".
  Result<std::vector<float>> FrameProbabilities(std::span<const float> pcm);
  void ResetState();

  const std::string& path() const { return path_; }

 private:
  VadDetector(whisper_vad_context* ctx, std::string path) : ctx_(ctx), path_(std::move(path)) {}
  whisper_vad_context* ctx_;
  std::string path_;
};

// The error for a VAD model that is not installed: kBadInput "vad_model_missing", telling the user
// to run `steno models pull silero-v6.2.0`. `where` names the file or dir looked in.
Error VadModelMissing(const std::string& where);

}  // namespace steno::engine
