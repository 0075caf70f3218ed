#include "engine/whisper_model.h"

#include <chrono>

#include <spdlog/spdlog.h>
#include <whisper.h>

#include "engine/alignment_heads.h"
#include "engine/whisper_log.h"
#include "engine/whisper_stream.h"

namespace steno::engine {

Result<std::unique_ptr<WhisperModel>> WhisperModel::Load(const std::string& path,
                                                         const ModelOptions& options) {
  InstallWhisperLogRouting();
  auto info = ReadModelFile(path);
  if (!info) return info.error();

  whisper_context_params cparams = whisper_context_default_params();
  cparams.use_gpu = options.use_gpu;
  cparams.gpu_device = options.gpu_device;
  cparams.flash_attn = options.flash_attn;

  std::unique_ptr<WhisperModel> model(new WhisperModel());
  model->info_ = std::move(info).value();
  if (options.dtw_words) {
    if (auto heads = AlignmentHeadsFor(model->info_.hparams, path)) {
      cparams.dtw_token_timestamps = true;
      cparams.dtw_aheads_preset = static_cast<whisper_alignment_heads_preset>(heads->preset);
      cparams.flash_attn = false;  // whisper.cpp 1.9.1 turns DTW off under flash attention
      model->word_alignment_ = heads->name;
      spdlog::info("{}: words timed by DTW with the {} alignment heads", path, heads->name);
    } else {
      spdlog::warn(
          "{}: no alignment-heads preset matches this model's dimensions (audio layers {}, text "
          "layers {}, state {}, vocabulary {}): word timestamps come from token timestamps",
          path, model->info_.hparams.n_audio_layer, model->info_.hparams.n_text_layer,
          model->info_.hparams.n_text_state, model->info_.hparams.n_vocab);
    }
  }
  auto start = std::chrono::steady_clock::now();
  {
    FootprintCapture capture(&model->footprint_);
    model->ctx_ = whisper_init_from_file_with_params_no_state(path.c_str(), cparams);
  }
  if (!model->ctx_) {
    return Error(ErrorKind::kBadInput, "model_load_failed",
                 "whisper.cpp could not load the model " + path +
                     " (run with --log-level debug for its reason)");
  }
  model->load_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  if (model->footprint_.weights_bytes == 0)
    model->footprint_.weights_bytes = model->info_.tensor_bytes;
  return model;
}

WhisperModel::~WhisperModel() {
  if (ctx_) whisper_free(ctx_);
}

bool WhisperModel::multilingual() const {
  return whisper_is_multilingual(ctx_) != 0;
}

Result<std::unique_ptr<WhisperStream>> WhisperModel::NewStream() {
  Footprint fp;
  whisper_state* state = nullptr;
  {
    FootprintCapture capture(&fp);
    state = whisper_init_state(ctx_);
  }
  if (!state) {
    return Error(ErrorKind::kOutOfMemory, "stream_alloc_failed",
                 "could not allocate a decoding state for " + info_.path);
  }
  return std::unique_ptr<WhisperStream>(new WhisperStream(this, state, fp));
}

}  // namespace steno::engine
