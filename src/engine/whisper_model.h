// A Whisper model loaded once, without a decoding state: the weights. Streams (whisper_state,
// see whisper_stream.h) are created from it, one per concurrent job; they share the weights.
//
// Thread-safety: NewStream() may be called from any thread; each stream is used by one thread at
// a time. The model must outlive its streams.
#pragma once

#include <memory>
#include <string>

#include "core/result.h"
#include "engine/footprint.h"
#include "engine/model_file.h"

struct whisper_context;

namespace steno::engine {

class WhisperStream;

struct ModelOptions {
  bool use_gpu = false;  // false: CPU only
  int gpu_device = 0;    // CUDA ordinal when use_gpu
  bool flash_attn = true;
  // Time words by DTW over the alignment heads matching the model's dimensions
  // (engine/alignment_heads.h). whisper.cpp 1.9.1 sets this up per loaded model, not per decode,
  // and only without flash attention, which it then turns off: on the CPU that doubled the
  // decoding time of a tiny model here, so a model is loaded this way only when its work wants
  // words. A model matching no preset loads as without it, and the log says so once.
  bool dtw_words = false;
};

class WhisperModel {
 public:
  // Validates the file (model_file.h errors), then loads it. A file whisper.cpp refuses is
  // kBadInput "model_load_failed".
  static Result<std::unique_ptr<WhisperModel>> Load(const std::string& path,
                                                    const ModelOptions& options);
  ~WhisperModel();
  WhisperModel(const WhisperModel&) = delete;
  WhisperModel& operator=(const WhisperModel&) = delete;

  // Creates a decoding state. Its sizes are in the stream's footprint(). Failure to allocate is
  // kOutOfMemory "stream_alloc_failed".
  Result<std::unique_ptr<WhisperStream>> NewStream();

  // Weights as whisper.cpp reported them at load.
  const Footprint& footprint() const { return footprint_; }
  const ModelFileInfo& info() const { return info_; }
  bool multilingual() const;
  int64_t load_ms() const { return load_ms_; }
  // The official model whose alignment heads time this model's words by DTW ("tiny.en", ...);
  // empty: words take whisper.cpp's token timestamps.
  const std::string& word_alignment() const { return word_alignment_; }
  whisper_context* ctx() const { return ctx_; }

 private:
  WhisperModel() = default;
  whisper_context* ctx_ = nullptr;
  ModelFileInfo info_;
  Footprint footprint_;
  int64_t load_ms_ = 0;
  std::string word_alignment_;
};

}  // namespace steno::engine
