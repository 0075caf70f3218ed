#include "engine/chunk_plan.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace steno::engine {
namespace {

// The sample in [from, to) around which the 20 ms of audio are quietest (the latest of equally
// quiet ones), by the sum of squares over 20 ms frames every 10 ms.
int64_t QuietestSample(std::span<const float> pcm, int64_t from, int64_t to, int rate) {
  const int64_t frame = std::max<int64_t>(1, rate / 50);
  const int64_t hop = std::max<int64_t>(1, rate / 100);
  int64_t best = to;
  double best_energy = std::numeric_limits<double>::infinity();
  for (int64_t s = from; s + frame <= to; s += hop) {
    double energy = 0;
    for (int64_t i = s; i < s + frame; ++i) energy += double(pcm[i]) * double(pcm[i]);
    if (energy <= best_energy) {
      best_energy = energy;
      best = s + frame / 2;
    }
  }
  return best;
}

// `r` cut into pieces of at most max_s seconds at quiet points (see PlanChunks).
void SplitLong(std::span<const float> pcm, SpeechRegion r, double max_s, int rate,
               std::vector<SpeechRegion>& out) {
  while (r.end - r.start > max_s) {
    const auto first = static_cast<int64_t>(std::ceil((r.start + max_s / 2) * rate));
    const auto last = static_cast<int64_t>(std::floor((r.start + max_s) * rate));
    const int64_t cut = QuietestSample(pcm, first, last, rate);
    const double at = std::clamp(static_cast<double>(cut) / rate, r.start, r.start + max_s);
    out.push_back({r.start, at});
    r.start = at;
  }
  out.push_back(r);
}

}  // namespace

std::vector<SpeechChunk> PlanChunks(std::span<const float> pcm, std::vector<SpeechRegion> speech,
                                    double max_s, int sample_rate) {
  const double duration = static_cast<double>(pcm.size()) / sample_rate;
  std::vector<SpeechRegion> pieces;
  for (SpeechRegion r : speech) {
    r.start = std::clamp(r.start, 0.0, duration);
    r.end = std::clamp(r.end, 0.0, duration);
    if (r.end <= r.start) continue;
    SplitLong(pcm, r, max_s, sample_rate, pieces);
  }
  std::vector<SpeechChunk> chunks;
  for (const SpeechRegion& r : pieces) {
    const double len = r.end - r.start;
    if (!chunks.empty()) {
      SpeechChunk& c = chunks.back();
      const double with = c.decoded_s + SpeechTimeline::kGapSeconds + len;
      if (with <= max_s) {
        c.speech.push_back(r);
        c.end = r.end;
        c.decoded_s = with;
        continue;
      }
    }
    chunks.push_back({r.start, r.end, {r}, len});
  }
  return chunks;
}

}  // namespace steno::engine
