#include "sched/estimator.h"

#include <algorithm>

#include "sched/calibration.h"

namespace steno::sched {
namespace {

int64_t Pad(int64_t n, int64_t to) {
  return (n + to - 1) / to * to;
}

// Bytes per KV element: whisper.cpp allocates its caches in the model's "itype", f32 only for an
// f32 model (ftype 0) and f16 otherwise (f16 and quantized models alike).
int64_t KvElementBytes(const engine::ModelHparams& h) {
  return h.ftype % 1000 == 0 ? 4 : 2;
}

}  // namespace

StreamSizes EstimateStream(const engine::ModelHparams& h, int beam_size) {
  const int64_t elem = KvElementBytes(h);
  const int64_t text_ctx = Pad(h.n_text_ctx, 256);
  const int64_t audio_ctx = Pad(h.n_audio_ctx, 256);
  const int64_t factor = beam_size > 1 ? beam_size + 2 : 1;

  StreamSizes s;
  // K and V: n_text_state × n_text_layer × n_ctx elements each (whisper_kv_cache_init).
  s.kv_self_bytes = 2 * elem * h.n_text_state * h.n_text_layer * text_ctx * factor;
  s.kv_cross_bytes = 2 * elem * h.n_text_state * h.n_text_layer * audio_ctx;
  s.kv_pad_bytes = 2 * elem * h.n_audio_state * audio_ctx;

  const int64_t actx = h.n_audio_ctx;
  const int64_t tctx = h.n_text_ctx;
  const int64_t conv = actx * (calibration::kConvPerCtxState * h.n_audio_state +
                               calibration::kConvPerCtxMel * h.n_mels);
  const int64_t encode = calibration::kEncodePerCtxState * actx * h.n_audio_state;
  const int64_t cross = calibration::kCrossPerCtxState * actx * h.n_text_state;
  const int64_t decode = tctx * (calibration::kDecodePerTokState * h.n_text_state +
                                 calibration::kDecodePerTokVocab * h.n_vocab);
  s.compute_bytes = conv + encode + cross + decode + calibration::kFixedOverhead;
  return s;
}

MemoryEstimate EstimateModel(const engine::ModelFileInfo& info, int beam_size) {
  return {.weights_bytes = info.tensor_bytes,
          .stream_bytes = EstimateStream(info.hparams, beam_size).Total(),
          .measured = false};
}

int64_t BeamExtraStreamBytes(const engine::ModelHparams& hparams, int beam_size) {
  return EstimateStream(hparams, beam_size).kv_self_bytes -
         EstimateStream(hparams, 1).kv_self_bytes;
}

MemoryEstimate ChooseEstimate(const MemoryEstimate& from_file,
                              const std::optional<MemoryEstimate>& measured,
                              int64_t measured_stream_extra) {
  if (!measured || measured->weights_bytes <= 0 || measured->stream_bytes < 0) return from_file;
  // No stream figure is a measurement only for a model that declares none (a server whose
  // requests add nothing of their own); for the others it is a broken one.
  if (measured->stream_bytes == 0 && from_file.stream_bytes > 0) return from_file;
  return {.weights_bytes = measured->weights_bytes,
          .stream_bytes = measured->stream_bytes + measured_stream_extra,
          .measured = true};
}

}  // namespace steno::sched
