// The two steps of a chunked job as a runner runs them (core/chunk_work.h, server/chunked_jobs.h):
// the plan decodes the audio once and cuts its speech into chunks, and each chunk transcribes its
// own speech from the decoded audio, never decoding the file again.
#pragma once

#include <functional>

#include <nlohmann/json.hpp>

#include "audio/probe.h"
#include "core/chunk_work.h"
#include "core/result.h"
#include "engine/decode_params.h"
#include "engine/transcript.h"
#include "engine/whisper_stream.h"

namespace steno::runner {

// Decodes `input`, finds its speech with the stream's VAD (params.vad's settings), cuts it into
// chunks of at most work.max_chunk_s (engine/chunk_plan.h) and writes the decoded audio to
// work.pcm_path (whole, or not at all: a temp file renamed). The result:
//   {"duration": s, "chunks": [{"start": s, "end": s, "speech": [[start, end], ...]}, ...]}
// `should_abort` is asked between the steps (decoding and VAD themselves run to their end).
// Errors: the decoder's, the VAD's, kIo "pcm_write_failed", kCancelled "aborted".
Result<nlohmann::json> RunPlan(engine::WhisperStream& stream, const audio::MediaFile& input,
                               const engine::DecodeParams& params, const ChunkWork& work,
                               const std::function<bool()>& should_abort);

// Transcribes the speech of one chunk (work.speech, times in the original audio) from the
// decoded audio at work.pcm_path, with every time in the original audio's timeline. Errors:
// kIo "pcm_read_failed" (the file is missing or unreadable), WhisperStream::Run's.
Result<engine::Transcript> RunChunk(engine::WhisperStream& stream, const ChunkWork& work,
                                    engine::DecodeParams params,
                                    const engine::StreamCallbacks& callbacks);

}  // namespace steno::runner
