// OpenAI's `chunking_strategy` request field: how the audio is cut before it is transcribed.
// steno answers it with voice activity detection (core/vad_settings.h):
//   "auto"                                    VAD with whisper.cpp's defaults when the server
//                                             has the VAD model (else none, quietly)
//   {"type": "server_vad", "threshold": 0.5,  VAD with these settings, required: 400 when the
//    "prefix_padding_ms": 300,                 server lacks the model; fields left out take
//    "silence_duration_ms": 200}              OpenAI's defaults (kOpenAiServerVadDefaults)
// The object comes as JSON text in a form field, as a nested object in a JSON body, or as the
// bracketed fields OpenAI's own clients send in multipart forms (chunking_strategy[type]=...,
// chunking_strategy[threshold]=...). Not given: the server's --vad default decides.
#pragma once

#include <optional>

#include "api/api_errors.h"
#include "api/job_request.h"
#include "core/job.h"

namespace steno::api {

// Sets params.chunking_strategy ("", "auto" or "server_vad") and, for server_vad, params.vad.
// Any other value, type, unknown key or a setting that is not a number: 400
// "bad_chunking_strategy" naming chunking_strategy (ranges are server::CheckJobParams').
std::optional<ApiError> ParseChunkingStrategy(const RequestFields& fields, JobParams& params);

}  // namespace steno::api
