// A recording's speech cut into chunks that are transcribed apart and merged back in order: the
// plan step of a chunked job (server/chunked_jobs.h: in parallel, on several streams) and the
// groups a VAD run decodes one whisper_full call each (engine/whisper_stream.h), so the same
// speech gives the same text either way. Pure: no model, no threads.
#pragma once

#include <span>
#include <vector>

#include "engine/speech_timeline.h"

namespace steno::engine {

// whisper's window: a chunk of at most this many seconds is decoded by one window (one encoder
// pass), and a second one only where whisper's timestamps stop short of its end.
inline constexpr double kWindowSeconds = 30;

struct SpeechChunk {
  double start = 0;                  // its first region's start, in the original audio (seconds)
  double end = 0;                    // its last region's end
  std::vector<SpeechRegion> speech;  // sorted, disjoint, inside [start, end]
  // The audio it decodes: its regions back to back with SpeechTimeline's gaps (seconds).
  double decoded_s = 0;
};

// Groups `speech` (sorted and disjoint, seconds of `pcm`; VAD's regions) into chunks, in order:
// - the audio a chunk decodes (its regions laid back to back with SpeechTimeline's gaps) is at
//   most `max_s` long; the silences between its regions are not decoded, so they do not count,
//   however long (a chunk of a sparse recording may span minutes of it);
// - chunks take regions greedily, so a chunk boundary lies in a detected silence (between two
//   regions), except inside a single region longer than `max_s`: such a region is cut first,
//   again and again, at the quietest 20 ms of the second half of its next `max_s` seconds (the
//   latest such point when several are equally quiet), leaving pieces of at most `max_s`, no two
//   of them in one chunk.
// Regions are clipped to the audio; empty ones are dropped. No speech: no chunks.
std::vector<SpeechChunk> PlanChunks(std::span<const float> pcm, std::vector<SpeechRegion> speech,
                                    double max_s, int sample_rate = 16000);

}  // namespace steno::engine
