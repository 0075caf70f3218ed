// One decoding stream over a loaded model: a whisper_state with its KV caches and compute
// buffers. Run() transcribes one audio buffer; a stream runs one buffer at a time, and several
// streams of one model run concurrently on separate threads. A run with VAD (DecodeParams::vad)
// loads the VAD model on the CPU the first time and keeps it with the stream.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "core/result.h"
#include "engine/decode_params.h"
#include "engine/footprint.h"
#include "engine/speech_timeline.h"
#include "engine/transcript.h"

struct whisper_state;

namespace steno::engine {

class WhisperModel;
class VadDetector;

struct StreamCallbacks {
  std::function<void(int percent)> on_progress;    // 0..100, from the decoding thread
  std::function<void(const Segment&)> on_segment;  // each segment as soon as it is decoded
  std::function<bool()> should_abort;              // polled often; true stops the run
};

class WhisperStream {
 public:
  ~WhisperStream();
  WhisperStream(const WhisperStream&) = delete;
  WhisperStream& operator=(const WhisperStream&) = delete;

  // Transcribes 16 kHz mono float samples. With word timestamps, the transcript's word_timing
  // says where the words' times come from: "dtw" when the model was loaded with
  // ModelOptions::dtw_words and matched a preset, "tokens" otherwise. With VAD, only the speech it
  // finds is decoded (no speech: no segments) and every time is in the original audio's timeline;
  // with known speech (DecodeParams::speech) the same, over those regions. Speech is decoded in
  // the chunk plan's groups (engine/chunk_plan.h, at most kWindowSeconds each), one whisper_full
  // call per group with no text carried from one to the next: the transcript is that of each
  // group decoded alone, in order, segments numbered from 0 (a chunked job's chunks give the same
  // text), and no segment spans the silence between two groups. Errors: kBadInput
  // (invalid params, language the model cannot handle, empty audio, a VAD model whisper.cpp
  // cannot load, "vad_model_missing"), kCancelled "aborted" when should_abort returned
  // true (the caller knows whether that meant cancel or timeout), kInternal "decode_failed" or
  // "vad_failed" otherwise.
  Result<Transcript> Run(std::span<const float> pcm, const DecodeParams& params,
                         const StreamCallbacks& callbacks = {});

  // The speech regions of 16 kHz mono `pcm` by the VAD model `params.vad_model_path` names (loaded
  // on the CPU the first time and kept with the stream), with `params.vad`'s settings
  // (whisper.cpp's defaults when unset). Errors: VadDetector::Load's and Detect's.
  Result<std::vector<SpeechRegion>> DetectSpeech(std::span<const float> pcm,
                                                 const DecodeParams& params);

  // Per-stream sizes reported when the state was created (weights are the model's).
  const Footprint& footprint() const { return footprint_; }

 private:
  friend class WhisperModel;
  WhisperStream(const WhisperModel* model, whisper_state* state, Footprint fp);
  std::string WordTiming() const;  // "dtw" or "tokens", by how the model was loaded

  const WhisperModel* model_;
  whisper_state* state_;
  Footprint footprint_;
  std::unique_ptr<VadDetector> vad_;
};

}  // namespace steno::engine
