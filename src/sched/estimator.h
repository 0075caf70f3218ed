// How much memory a model will take before it was ever loaded: weights from the file's tensor
// table, and per stream (whisper_state) the KV caches and compute buffers whisper.cpp allocates,
// from the hyperparameters. Once a runner measured a model on a kind of device, that measurement
// (store::ModelFootprint, SchedulerConfig::known_footprints) replaces the estimate, grown by what
// the measurement cannot see (ChooseEstimate).
//
// The KV cache sizes are whisper.cpp 1.9.1's own formulas (exact). The compute buffers are the
// ggml graph allocator's worst case, which has no closed form; the formula here is a linear model
// of the tensors that dominate each graph, with constants (calibration.h) fitted to what
// whisper.cpp reports for the generated presets (tests/unit/sched_estimator_test.cc checks the
// estimate is never below the measured stream and at most 15% above it, tiny-test … large-v3
// dimensions). The estimate is of whisper.cpp's buffers only: a GPU runner's CUDA context (a few
// hundred MiB per process) is not in it, nor in a runner's measurement; the scheduler charges it
// separately (SchedulerConfig::cuda_context_bytes, calibration::kCudaContextBytes). Erring high
// only costs packing density; erring low costs an out-of-memory refusal, so the constants round up.
#pragma once

#include <cstdint>
#include <optional>

#include "engine/model_file.h"

namespace steno::sched {

struct StreamSizes {
  int64_t kv_self_bytes = 0;
  int64_t kv_cross_bytes = 0;
  int64_t kv_pad_bytes = 0;
  int64_t compute_bytes = 0;  // conv + encode + cross + decode buffers

  int64_t Total() const { return kv_self_bytes + kv_cross_bytes + kv_pad_bytes + compute_bytes; }
};

// Per-stream sizes for decoding with `beam_size` parallel decoders (1 = greedy). whisper.cpp
// re-creates the self-attention cache (beam_size + 2)× larger when more than one decoder runs.
StreamSizes EstimateStream(const engine::ModelHparams& hparams, int beam_size = 1);

struct MemoryEstimate {
  int64_t weights_bytes = 0;  // once per runner
  int64_t stream_bytes = 0;   // per concurrent stream
  bool measured = false;      // from a runner's measurement rather than the file

  int64_t RunnerBytes(int streams) const { return weights_bytes + streams * stream_bytes; }
};

// From the model file alone: weights ≈ tensor bytes, streams from EstimateStream.
MemoryEstimate EstimateModel(const engine::ModelFileInfo& info, int beam_size = 1);

// What a runner's measured stream lacks when jobs decode with `beam_size`: runners measure right
// after warming up a greedy state, and beam search re-creates the self-attention cache
// (beam_size + 2)× larger. 0 for greedy decoding.
int64_t BeamExtraStreamBytes(const engine::ModelHparams& hparams, int beam_size);

// The footprint to plan with: the measured one when there is one and it is plausible (weights
// positive; stream positive, or 0 when `from_file` has 0 too), its stream grown by
// `measured_stream_extra` (BeamExtraStreamBytes for the beam size jobs decode with); else
// `from_file` (EstimateModel at that beam size).
MemoryEstimate ChooseEstimate(const MemoryEstimate& from_file,
                              const std::optional<MemoryEstimate>& measured,
                              int64_t measured_stream_extra);

}  // namespace steno::sched
