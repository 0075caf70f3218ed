// One decoding stream over a loaded model: a whisper_state with its KV caches and compute
// buffers. Run() transcribes one audio buffer; a stream runs one buffer at a time, and several
// streams of one model run concurrently on separate threads.
#pragma once

#include <functional>
#include <memory>
#include <span>

#include "core/result.h"
#include "engine/decode_params.h"
#include "engine/footprint.h"
#include "engine/transcript.h"

struct whisper_state;

namespace steno::engine {

class WhisperModel;

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

  // Transcribes 16 kHz mono float samples. Errors: kBadInput (invalid params, language the model
  // cannot handle, empty audio), kCancelled "aborted" when should_abort returned true (the caller
  // knows whether that meant cancel or timeout), kInternal "decode_failed" otherwise.
  Result<Transcript> Run(std::span<const float> pcm, const DecodeParams& params,
                         const StreamCallbacks& callbacks = {});

  // Per-stream sizes reported when the state was created (weights are the model's).
  const Footprint& footprint() const { return footprint_; }

 private:
  friend class WhisperModel;
  WhisperStream(const WhisperModel* model, whisper_state* state, Footprint fp)
      : model_(model), state_(state), footprint_(fp) {}

  const WhisperModel* model_;
  whisper_state* state_;
  Footprint footprint_;
};

}  // namespace steno::engine
