// Reading the header of a whisper.cpp ggml model file without loading it: its hyperparameters,
// type and the bytes its tensors occupy. `steno models list` shows these, and the scheduler's
// estimator sizes a model from them before it was ever loaded.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "core/result.h"

namespace steno::engine {

// The hyperparameters stored at the start of a ggml Whisper file, in file order.
struct ModelHparams {
  int32_t n_vocab = 0;
  int32_t n_audio_ctx = 0;
  int32_t n_audio_state = 0;
  int32_t n_audio_head = 0;
  int32_t n_audio_layer = 0;
  int32_t n_text_ctx = 0;
  int32_t n_text_state = 0;
  int32_t n_text_head = 0;
  int32_t n_text_layer = 0;
  int32_t n_mels = 0;
  int32_t ftype = 0;  // 0 f32, 1 f16, others quantized (may carry a GGML_QNT_VERSION offset)
};

// The ten dimensions (all but ftype) with their file names, for validation and messages.
std::array<std::pair<const char*, int32_t>, 10> NamedDims(const ModelHparams& h);

struct ModelFileInfo {
  std::string path;
  int64_t file_bytes = 0;
  ModelHparams hparams;
  std::string type;  // "tiny", "base", "small", "medium", "large" by n_audio_layer, else "custom"
  bool multilingual = false;  // n_vocab >= 51865
  std::string ftype_name;     // "f32", "f16", "q5_0", ...
  int64_t tensor_bytes = 0;   // sum of all tensor data: the weights' size once loaded
  int32_t n_tensors = 0;
};

// Reads and validates the header and walks the tensor table (seeking past the data). Cheap: it
// reads the header, mel filters and vocabulary (~1 MB) and one small header per tensor.
// Errors: kNotFound "model_not_found"; kBadInput "not_a_model" (not a regular file, wrong magic
// — a GGUF file is named as such —, impossible hyperparameters, an ftype whisper.cpp cannot
// load, or a malformed tensor header); kIntegrity "model_truncated" (the file ends before its
// tensors do, or holds fewer tensors than its hyperparameters require, as a file cut exactly
// between two tensors does); kIo "model_unreadable" (the file exists but cannot be read).
Result<ModelFileInfo> ReadModelFile(const std::string& path);

}  // namespace steno::engine
