#include "engine/decode_params.h"

#include <cmath>

#include "engine/languages.h"

namespace steno::engine {
namespace {

Error BadParam(const std::string& message) {
  return Error(ErrorKind::kBadInput, "bad_param", message);
}

}  // namespace

Status ValidateDecodeParams(const DecodeParams& p) {
  if (auto st = CheckLanguage(p.language); !st) return st;
  if (!std::isfinite(p.temperature) || p.temperature < 0 || p.temperature > 1) {
    return BadParam("temperature must be between 0 and 1");
  }
  if (!std::isfinite(p.temperature_inc) || p.temperature_inc < 0 || p.temperature_inc > 1) {
    return BadParam("temperature increment must be between 0 and 1");
  }
  if (p.beam_size < 1 || p.beam_size > 16) return BadParam("beam size must be between 1 and 16");
  if (p.best_of < 1 || p.best_of > 16) return BadParam("best-of must be between 1 and 16");
  if (p.n_threads < 1 || p.n_threads > 256) return BadParam("threads must be between 1 and 256");
  if (p.vad) {
    if (!std::isfinite(p.vad->threshold) || p.vad->threshold < 0 || p.vad->threshold > 1) {
      return BadParam("the VAD threshold must be between 0 and 1");
    }
    if (p.vad->prefix_padding_ms < 0 || p.vad->prefix_padding_ms > kMaxVadPaddingMs) {
      return BadParam("the VAD padding must be between 0 and " + std::to_string(kMaxVadPaddingMs) +
                      " ms");
    }
    if (p.vad->silence_duration_ms < 0 || p.vad->silence_duration_ms > kMaxVadSilenceMs) {
      return BadParam("the VAD silence duration must be between 0 and " +
                      std::to_string(kMaxVadSilenceMs) + " ms");
    }
  }
  return {};
}

}  // namespace steno::engine
