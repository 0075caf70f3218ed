#include "sched/estimator.h"

#include <algorithm>

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

// Compute buffers, per graph, as multiples of the tensors that dominate it (f32 activations of
// n_ctx × n_state, the conv input of 2·n_audio_ctx × n_mels, the decoder's logits for its
// worst-case batch of n_text_ctx tokens × n_vocab), plus ~1.6 MB of fixed buffers in each of the
// encode, cross and decode graphs. Fitted to whisper.cpp 1.9.1 on the CPU with flash attention
// (the runner's setting) for tiny-test … large-v3, then rounded up by about 5%. Without flash
// attention the encoder also materialises n_audio_ctx² × heads scores: not modelled here.
constexpr int64_t kConvPerCtxState = 17;       // measured 16
constexpr int64_t kConvPerCtxMel = 36;         // measured ~34
constexpr int64_t kEncodePerCtxState = 30;     // measured 28
constexpr int64_t kCrossPerCtxState = 5;       // measured 4
constexpr int64_t kDecodePerTokState = 9;      // measured 8
constexpr int64_t kDecodePerTokVocab = 4;      // f32 logits: exact
constexpr int64_t kFixedOverhead = 6'000'000;  // measured ~5 MB over the three graphs

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
  const int64_t conv = actx * (kConvPerCtxState * h.n_audio_state + kConvPerCtxMel * h.n_mels);
  const int64_t encode = kEncodePerCtxState * actx * h.n_audio_state;
  const int64_t cross = kCrossPerCtxState * actx * h.n_text_state;
  const int64_t decode =
      tctx * (kDecodePerTokState * h.n_text_state + kDecodePerTokVocab * h.n_vocab);
  s.compute_bytes = conv + encode + cross + decode + kFixedOverhead;
  return s;
}

MemoryEstimate EstimateModel(const engine::ModelFileInfo& info, int beam_size) {
  return {.weights_bytes = info.tensor_bytes,
          .stream_bytes = EstimateStream(info.hparams, beam_size).Total(),
          .measured = false};
}

MemoryEstimate ChooseEstimate(const engine::ModelFileInfo& info,
                              const std::optional<store::ModelFootprint>& measured, int beam_size) {
  if (!measured || measured->weights_bytes <= 0 || measured->stream_bytes <= 0) {
    return EstimateModel(info, beam_size);
  }
  // The measurement is of a greedy state; beam search re-creates kv_self larger.
  const StreamSizes greedy = EstimateStream(info.hparams, 1);
  const StreamSizes beam = EstimateStream(info.hparams, beam_size);
  return {.weights_bytes = measured->weights_bytes,
          .stream_bytes = measured->stream_bytes + (beam.kv_self_bytes - greedy.kv_self_bytes),
          .measured = true};
}

}  // namespace steno::sched
