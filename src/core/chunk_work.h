// What one internal sub-job of a chunked job does (server/chunked_jobs.h): a long recording with
// VAD runs as a plan (decode once, find the speech, cut it into chunks) and then one sub-job
// per chunk. Only those sub-jobs carry it (JobParams::chunk); a stored job never does.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/result.h"

namespace steno {

struct ChunkWork {
  enum class Step {
    kPlan,   // decode the input, write it to pcm_path, find its speech and answer the chunks
    kChunk,  // transcribe the speech of one chunk, read from pcm_path
  };
  Step step = Step::kPlan;
  // The job's audio decoded once: 16 kHz mono 32-bit floats, native byte order, no header.
  std::string pcm_path;
  double max_chunk_s = 30;  // kPlan: the longest chunk
  int index = 0;            // kChunk: its place in the job (0 first)
  double start = 0;         // kChunk: its window in the original audio, in seconds
  double end = 0;
  // kChunk: the speech in the window, sorted and disjoint, in the original audio's timeline.
  std::vector<std::pair<double, double>> speech;

  bool operator==(const ChunkWork&) const = default;
};

// {"step": "plan"|"chunk", "pcm_path", "max_chunk_s" | "index", "start", "end", "speech"}.
nlohmann::json ChunkWorkToJson(const ChunkWork& work);
// kBadInput "bad_chunk_work" when `j` is not such an object.
Result<ChunkWork> ChunkWorkFromJson(const nlohmann::json& j);

}  // namespace steno
