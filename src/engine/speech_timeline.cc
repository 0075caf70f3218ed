#include "engine/speech_timeline.h"

#include <algorithm>
#include <cmath>

namespace steno::engine {

SpeechTimeline::SpeechTimeline(std::span<const float> pcm, std::vector<SpeechRegion> regions,
                               int sample_rate) {
  const double rate = static_cast<double>(sample_rate);
  const auto n = static_cast<int64_t>(pcm.size());
  const auto gap = static_cast<size_t>(std::lround(kGapSeconds * rate));
  for (const SpeechRegion& r : regions) {
    const int64_t first = std::clamp<int64_t>(std::llround(r.start * rate), 0, n);
    const int64_t last = std::clamp<int64_t>(std::llround(r.end * rate), 0, n);
    if (last <= first) continue;
    if (!samples_.empty()) samples_.insert(samples_.end(), gap, 0.0f);
    const double processed_start = static_cast<double>(samples_.size()) / rate;
    const SpeechRegion kept{static_cast<double>(first) / rate, static_cast<double>(last) / rate};
    placed_.push_back({processed_start, kept});
    regions_.push_back(kept);
    samples_.insert(samples_.end(), pcm.begin() + first, pcm.begin() + last);
  }
}

size_t SpeechTimeline::RegionAt(double t) const {
  auto it = std::upper_bound(placed_.begin(), placed_.end(), t,
                             [](double v, const Placed& p) { return v < p.processed_start; });
  return it == placed_.begin() ? 0 : static_cast<size_t>(it - placed_.begin()) - 1;
}

double SpeechTimeline::StartToOriginal(double t) const {
  if (placed_.empty()) return t;
  const size_t i = RegionAt(t);
  const Placed& p = placed_[i];
  if (t <= p.processed_start) return p.original.start;
  const double mapped = p.original.start + (t - p.processed_start);
  if (mapped < p.original.end) return mapped;
  // In the gap after region i: the next region's start (or the last region's end).
  return i + 1 < placed_.size() ? placed_[i + 1].original.start : p.original.end;
}

double SpeechTimeline::EndToOriginal(double t) const {
  if (placed_.empty()) return t;
  const Placed& p = placed_[RegionAt(t)];
  if (t <= p.processed_start) return p.original.start;
  return std::min(p.original.start + (t - p.processed_start), p.original.end);
}

}  // namespace steno::engine
