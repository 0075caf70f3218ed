// The one check of what a client may ask of a job (JobParams), shared by every way in: the HTTP
// API checks a request with it (after parsing the fields' text), and JobService::Submit checks
// every job with it before anything is stored, so a value is refused with the same code whichever
// door it came through. The lists it checks against are the engine's (engine/languages.h,
// engine/formats.h).
//
// Every problem is kBadInput with a code naming the field:
//   bad_task             task is not transcribe or translate
//   bad_language         not "auto" nor a language whisper knows (engine::CheckLanguage)
//   bad_temperature      outside 0..1 (or not a number)
//   bad_response_format  not json, text, srt, vtt or verbose_json
//   bad_keep_alive       below -1 (-1 keeps the model loaded, 0 unloads at once)
//   bad_timeout          outside 1..604800 seconds
//   bad_device           not "", auto, cpu or cuda:N (N up to 3 digits)
//   bad_prompt           longer than 16 KiB
//   bad_chunking_strategy  not "", auto or server_vad, or VAD settings out of range (threshold
//                        0..1, prefix_padding_ms 0..10000, silence_duration_ms 0..60000)
#pragma once

#include <optional>
#include <string>

#include "core/error.h"
#include "core/job.h"

namespace steno::server {

inline constexpr int kMaxJobTimeoutS = 7 * 86400;
inline constexpr size_t kMaxPromptBytes = 16 * 1024;

// A refused value: the JobParams field at fault, as the API names it ("language",
// "response_format", ...), and the error.
struct ParamProblem {
  std::string field;
  Error error;
};

// The first problem with `params`, fields in the order listed above; nullopt when there is none.
std::optional<ParamProblem> CheckJobParams(const JobParams& params);

}  // namespace steno::server
