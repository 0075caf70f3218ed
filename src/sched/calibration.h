// The measured constants the ledger plans with, in one table: the CUDA context charged per GPU
// runner and the estimator's compute-buffer factors. scripts/gpu-acceptance.sh measures them on a
// real GPU; its report (report.json "calibration", also printed in summary.txt) lists each
// constant's current value beside the suggested one, under the same name as here, so applying a
// report is one edit of this file.
//
// Which report figure calibrates which constant:
//   kCudaContextBytes   step 8 (context_per_runner): a runner's memory as nvidia-smi lists it
//                       minus the weights and streams it reports, for a tiny model; steps 2 and 3
//                       give the same figure for bigger models.
//   kConvPerCtxState … kFixedOverhead
//                       steps 2 and 3 (footprint, stream_on_device): the stream bytes whisper.cpp
//                       reports and a stream's growth on the device (nvidia-smi) against the
//                       estimate. A ratio above 1 scales the compute factors (never the KV
//                       caches, which are exact formulas in estimator.cc).
#pragma once

#include <cstdint>

namespace steno::sched::calibration {

// Every process that uses CUDA holds a context on its card (driver state, kernels of the loaded
// libraries, cuBLAS workspace): memory that neither a model's weights nor its streams account
// for, and that a runner's own measurement cannot see (the device is queried after the context
// exists). Charged once per GPU runner on top of its weights (SchedulerConfig's default).
inline constexpr int64_t kCudaContextBytes = 300LL << 20;

// Compute buffers, per graph, as multiples of the tensors that dominate it (f32 activations of
// n_ctx × n_state, the conv input of 2·n_audio_ctx × n_mels, the decoder's logits for its
// worst-case batch of n_text_ctx tokens × n_vocab), plus ~1.6 MB of fixed buffers in each of the
// encode, cross and decode graphs. Fitted to whisper.cpp 1.9.1 on the CPU with flash attention
// (the runner's setting) for tiny-test … large-v3, then rounded up by about 5%. Without flash
// attention the encoder also materialises n_audio_ctx² × heads scores: not modelled here.
inline constexpr int64_t kConvPerCtxState = 17;       // measured 16
inline constexpr int64_t kConvPerCtxMel = 36;         // measured ~34
inline constexpr int64_t kEncodePerCtxState = 30;     // measured 28
inline constexpr int64_t kCrossPerCtxState = 5;       // measured 4
inline constexpr int64_t kDecodePerTokState = 9;      // measured 8
inline constexpr int64_t kDecodePerTokVocab = 4;      // f32 logits: exact
inline constexpr int64_t kFixedOverhead = 6'000'000;  // measured ~5 MB over the three graphs

}  // namespace steno::sched::calibration
