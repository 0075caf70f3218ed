// The alignment heads for DTW word timestamps: whisper.cpp 1.9.1 ships one preset of cross-
// attention heads per official model (WHISPER_AHEADS_TINY_EN ... WHISPER_AHEADS_LARGE_V3_TURBO),
// and a model loaded with the one matching its architecture times each text token by dynamic
// time warping over those heads (`t_dtw`), as OpenAI's reference implementation does.
#pragma once

#include <optional>
#include <string>

#include "engine/model_file.h"

namespace steno::engine {

struct AlignmentHeads {
  int preset = 0;    // a whisper_alignment_heads_preset value
  std::string name;  // the official model it belongs to: "tiny.en", "large-v3-turbo", ...
};

// The preset for a model with these dimensions (n_audio_layer, n_text_layer, n_state, n_vocab),
// or none. large-v1 and large-v2 have the same dimensions: `path` naming "large-v1" picks v1,
// anything else v2 (the far more common of the two).
std::optional<AlignmentHeads> AlignmentHeadsFor(const ModelHparams& h, const std::string& path);

}  // namespace steno::engine
