// Writing Whisper models with random weights in whisper.cpp's ggml file format. Tests, benchmarks
// and `make run`'s demo model need a model that whisper.cpp loads and runs at any size (a few MB
// for CI, real tiny..large-v3 dimensions for memory and speed measurements) without downloading
// one. The text such a model produces is meaningless, but always valid (ASCII) UTF-8.
//
// Promises:
// - whisper.cpp 1.9.1 loads every model this writes (ftype 1: the big matrices f16, the small
//   and 1-d tensors f32, exactly as models/convert-pt-to-ggml.py lays them out).
// - The same hparams and seed give a byte-identical file; a different seed gives different weights.
// - Weights are streamed to disk (constant memory even for a ~3 GB large-v3).
// - The file appears at `path` complete or not at all: it is written under a temporary name in
//   the same directory, synced, then renamed over `path`. (A killed writer can leave the
//   temporary `path.tmp-PID` behind, never a partial `path`.)
// - Greedy decoding behaves like a real model's, not like naive random weights': a few segments
//   of a few pseudo-words per 30 s window with increasing timestamps, each window ended by
//   end-of-text, so a window costs tens of decoder steps rather than ~220 and temperature
//   fallback is rare. The text does not depend much on the audio.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "engine/model_file.h"

namespace steno::engine {

// Preset names in a stable order: "tiny-test" (the ~8 MB model every CI test uses: English
// vocab, 80 mels, state 64, 2 heads, 2 audio layers, 3 text layers, text ctx 448), then the
// official dimensions "tiny", "tiny.en", "base", "base.en", "small", "medium", "large-v3",
// "large-v3-turbo".
const std::vector<std::string>& ModelPresetNames();

// The hparams of a preset (ftype 1). Error kBadInput "unknown_preset" naming the valid ones.
Result<ModelHparams> ModelPreset(std::string_view name);

// Checks that a model with these hparams can be written and that whisper.cpp can run it:
// n_vocab is 51864 (English-only), 51865 or 51866 (multilingual; 51866 = large-v3's 100
// languages); n_audio_ctx >= 1500 (a 30 s window is 3000 mel frames, halved by the conv stride);
// n_text_ctx >= 8; n_audio_state == n_text_state, each divisible by its head count; every
// dimension positive and every tensor under 2^31 elements (whisper.cpp counts in int32);
// ftype 1 (f16: ftype 0 models crash in whisper.cpp's conv op). Error kBadInput "bad_model_dims"
// whose message names the offending field.
// Allowed but worth knowing: whisper.cpp treats n_text_layer == 2 with n_vocab != 51866 as a
// distil-whisper model and forces no_timestamps (one segment per window, bogus start times), and
// whisper-bench needs n_text_ctx >= 256.
Status CheckWritableHparams(const ModelHparams& hparams);

// One tensor of the file, in the loader's terms: ne[0] is the fastest-varying dimension.
struct TensorSpec {
  std::string name;  // e.g. "encoder.blocks.0.attn.query.weight"
  int n_dims = 1;
  int64_t ne[3] = {1, 1, 1};
  bool f16 = false;  // else f32

  int64_t Elements() const { return ne[0] * ne[1] * ne[2]; }
  int64_t Bytes() const { return Elements() * (f16 ? 2 : 4); }
};

// Every tensor whisper.cpp expects for these hparams (ftype 1), in the order the writer writes
// them (the order convert-pt-to-ggml.py uses). 11 + 15 * n_audio_layer + 24 * n_text_layer.
std::vector<TensorSpec> WhisperTensorSpecs(const ModelHparams& hparams);

// The exact size in bytes of the file WriteRandomModel writes for these hparams.
int64_t RandomModelFileBytes(const ModelHparams& hparams);

// Writes a random-weight model to `path` (see the promises above) and returns its size in bytes.
// Errors: CheckWritableHparams' errors; kIo "write_failed" (directory missing, disk full, ...),
// in which case `path` is as it was and the temporary file is removed.
Result<int64_t> WriteRandomModel(const std::string& path, const ModelHparams& hparams,
                                 uint64_t seed);

}  // namespace steno::engine
