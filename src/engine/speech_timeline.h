// The audio whisper decodes when VAD is on, and the way back from its times to the original's.
//
// The speech regions VAD found are laid back to back, with a short silence between two (as
// whisper.cpp's own VAD path does, so a word never runs into the next region's first word), and
// nothing else: no sample of a detected silence is decoded, so no text can come from one. Each
// region keeps its length, so a time inside a region maps back exactly (a shift). A time inside
// an inserted gap belongs to no speech: a segment's start there moves to the next region's start,
// its end to the previous region's end, so no segment starts or ends inside a silence.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace steno::engine {

// One stretch of speech in the original audio, in seconds.
struct SpeechRegion {
  double start = 0;
  double end = 0;
};

class SpeechTimeline {
 public:
  // The inserted gap: whisper.cpp's (0.1 s).
  static constexpr double kGapSeconds = 0.1;

  // `regions` must be sorted and disjoint (VAD's are); each is clipped to the audio, and empty
  // ones are dropped. `sample_rate` is the PCM's (16 kHz for whisper).
  SpeechTimeline(std::span<const float> pcm, std::vector<SpeechRegion> regions,
                 int sample_rate = 16000);

  // The samples to decode: empty when no speech was found.
  const std::vector<float>& samples() const { return samples_; }
  // The regions kept, in the original timeline.
  const std::vector<SpeechRegion>& regions() const { return regions_; }

  // A time in samples()'s timeline back in the original's: for a segment's or word's start, and
  // for its end (they differ only inside an inserted gap, see above). Times before the first
  // region or after the last clamp to its edge.
  double StartToOriginal(double t) const;
  double EndToOriginal(double t) const;

 private:
  struct Placed {
    double processed_start;  // where the region begins in samples()
    SpeechRegion original;
  };
  // The index of the last region beginning at or before processed time t (0 if none).
  size_t RegionAt(double t) const;

  std::vector<SpeechRegion> regions_;
  std::vector<Placed> placed_;
  std::vector<float> samples_;
};

}  // namespace steno::engine
