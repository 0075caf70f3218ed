#include "engine/alignment_heads.h"

#include <whisper.h>

namespace steno::engine {
namespace {

struct Shape {
  int32_t audio_layers, text_layers, state, vocab;
  whisper_alignment_heads_preset preset;
  const char* name;
};

// The official models' dimensions (OpenAI's whisper/__init__.py): English-only models have a
// vocabulary of 51864, multilingual ones 51865, large-v3 and its turbo 51866.
constexpr Shape kShapes[] = {
    {4, 4, 384, 51864, WHISPER_AHEADS_TINY_EN, "tiny.en"},
    {4, 4, 384, 51865, WHISPER_AHEADS_TINY, "tiny"},
    {6, 6, 512, 51864, WHISPER_AHEADS_BASE_EN, "base.en"},
    {6, 6, 512, 51865, WHISPER_AHEADS_BASE, "base"},
    {12, 12, 768, 51864, WHISPER_AHEADS_SMALL_EN, "small.en"},
    {12, 12, 768, 51865, WHISPER_AHEADS_SMALL, "small"},
    {24, 24, 1024, 51864, WHISPER_AHEADS_MEDIUM_EN, "medium.en"},
    {24, 24, 1024, 51865, WHISPER_AHEADS_MEDIUM, "medium"},
    {32, 32, 1280, 51865, WHISPER_AHEADS_LARGE_V2, "large-v2"},
    {32, 32, 1280, 51866, WHISPER_AHEADS_LARGE_V3, "large-v3"},
    {32, 4, 1280, 51866, WHISPER_AHEADS_LARGE_V3_TURBO, "large-v3-turbo"},
};

}  // namespace

std::optional<AlignmentHeads> AlignmentHeadsFor(const ModelHparams& h, const std::string& path) {
  for (const Shape& s : kShapes) {
    if (h.n_audio_layer != s.audio_layers || h.n_text_layer != s.text_layers ||
        h.n_audio_state != s.state || h.n_text_state != s.state || h.n_vocab != s.vocab) {
      continue;
    }
    if (s.preset == WHISPER_AHEADS_LARGE_V2 && path.find("large-v1") != std::string::npos) {
      return AlignmentHeads{WHISPER_AHEADS_LARGE_V1, "large-v1"};
    }
    return AlignmentHeads{s.preset, s.name};
  }
  return std::nullopt;
}

}  // namespace steno::engine
