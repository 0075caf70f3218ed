// The one check of what a client may ask of a job (JobParams), shared by every way in: the HTTP
// API checks a request with it (after parsing the fields' text), and JobService::Submit checks
// every job with it before anything is stored, so a value is refused with the same code whichever
// door it came through. The lists it checks against are the engine's (engine/languages.h,
// engine/formats.h).
//
// Every problem is kBadInput with a code naming the field:
//   bad_task             task is not transcribe, translate or speech
//   bad_language         not "auto" nor a language whisper knows (engine::CheckLanguage)
//   bad_temperature      outside 0..1 (or not a number)
//   bad_response_format  transcribe/translate: not json, text, srt, vtt or verbose_json;
//                        speech: not mp3, opus, aac, flac, wav or pcm (core/speech_format.h)
//   bad_input_text       speech: `input` empty or longer than 4096 characters (OpenAI's bound)
//   bad_voice            speech: `voice` empty, longer than 64 bytes, or not letters, digits,
//                        '-', '_', '.' (servers name voices; steno does not know their lists)
//   bad_speed            speech: outside 0.25..4 (or not a number)
//   bad_instructions     speech: longer than 4096 characters
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
#include "models/model_catalog.h"

namespace steno::server {

inline constexpr int kMaxJobTimeoutS = 7 * 86400;
inline constexpr size_t kMaxPromptBytes = 16 * 1024;
inline constexpr size_t kMaxSpeechInputChars = 4096;

// A refused value: the JobParams field at fault, as the API names it ("language",
// "response_format", ...), and the error.
struct ParamProblem {
  std::string field;
  Error error;
};

// The first problem with `params`, fields in the order listed above; nullopt when there is none.
std::optional<ParamProblem> CheckJobParams(const JobParams& params);

// Whether the model can do the job's task, by its catalog capabilities: speech needs the speech
// capability, transcribe and translate need transcribe. Else a problem with field "model",
// kBadInput "model_cannot_do_task" naming the model, the task and what it can do.
std::optional<ParamProblem> CheckModelTask(const std::string& model, const std::string& task,
                                           const models::Capabilities& capabilities);

}  // namespace steno::server
