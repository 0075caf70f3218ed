// A long recording's speech cut into chunks that can be transcribed apart (in parallel, on
// several streams) and merged back in order: the plan step of a chunked job
// (server/chunked_jobs.h). Pure: no model, no threads.
#pragma once

#include <span>
#include <vector>

#include "engine/speech_timeline.h"

namespace steno::engine {

struct SpeechChunk {
  double start = 0;                  // its first region's start, in the original audio (seconds)
  double end = 0;                    // its last region's end
  std::vector<SpeechRegion> speech;  // sorted, disjoint, inside [start, end]
};

// Groups `speech` (sorted and disjoint, seconds of `pcm`; VAD's regions) into chunks, in order:
// - a chunk spans at most `max_s` from its start to its end, and so does the audio it decodes
//   (its regions laid back to back with SpeechTimeline's gaps);
// - chunks take regions greedily, so a chunk boundary lies in a detected silence (between two
//   regions), except inside a single region longer than `max_s`: such a region is cut first,
//   again and again, at the quietest 20 ms of the second half of its next `max_s` seconds (the
//   latest such point when several are equally quiet), leaving pieces of at most `max_s`.
// Regions are clipped to the audio; empty ones are dropped. No speech: no chunks.
std::vector<SpeechChunk> PlanChunks(std::span<const float> pcm, std::vector<SpeechRegion> speech,
                                    double max_s, int sample_rate = 16000);

}  // namespace steno::engine
