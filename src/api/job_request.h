// Turning the fields of a transcription request into a job. One parser serves the OpenAI
// multipart form (`/v1/audio/transcriptions`, `/v1/audio/translations`), the async multipart
// form and the async JSON body (`POST /v1/jobs`), so a field means the same everywhere:
//
//   model                      required (or the server's --default-model; "whisper-1", the name
//                              OpenAI's clients default to, also means the default model)
//   language                   ISO 639-1 code; empty or "auto" detects
//   prompt                     initial prompt
//   temperature                0..1
//   response_format            json | text | srt | vtt | verbose_json (default json)
//   timestamp_granularities[]  segment | word (word turns on word timestamps); also accepted
//                              without the brackets, as a JSON array, or comma-separated
//   word_timestamps            true | false (steno's own spelling of the same)
//   task                       transcribe | translate | speech (only where the route does not
//                              fix it)
//   priority                   high | normal | low                        (steno extra)
//   keep_alive                 seconds, or 30s / 5m / 1h; -1 keeps the model loaded forever
//   device                     auto | cpu | cuda:N                        (steno extra)
//   timeout                    seconds a job may run before it is stopped (steno extra)
//   stream                     true | false; true only where the route streams (rules.stream)
//   chunking_strategy          "auto" or {"type": "server_vad", ...}: voice activity detection
//                              (api/chunking_strategy.h); also chunking_strategy[type]=... fields
// and, for the speech task (POST /v1/audio/speech, or task "speech" in a POST /v1/jobs body):
//   input                      the text to speak (required)
//   voice                      the server's voice name (required)
//   speed                      0.25..4 (default 1)
//   instructions               forwarded to the server
//   response_format            mp3 | opus | aac | flac | wav | pcm (default mp3)
//   stream_format              only "audio" is accepted
// Unknown fields are ignored, as OpenAI's newer client options would otherwise break requests.
// Every error is a 400 naming the field (ApiError::param). The values are checked by
// server::CheckJobParams, the check JobService::Submit makes too (same codes); this parser adds
// only what text needs (numbers, booleans, durations, fields that are not JobParams).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/api_errors.h"
#include "server/job_service.h"
#include "store/blob_store.h"  // job_service.h uses it without including it

namespace steno::api {

// Field name → every value given, as text.
using RequestFields = std::map<std::string, std::vector<std::string>>;

struct JobRequestRules {
  std::string task;           // "transcribe"/"translate" fixed by the route; "" reads `task`
  std::string default_model;  // --default-model; "" requires `model`
  // Where the route can stream its answer (POST /v1/audio/transcriptions): receives the request's
  // `stream` value. Null: stream=true is a 400 "streaming_not_supported".
  bool* stream = nullptr;
};

// Fills `out` (model, priority, params); the audio (blob or path) is the caller's. On error,
// returns it and leaves `out` partly filled.
std::optional<ApiError> ParseJobRequest(const RequestFields& fields, const JobRequestRules& rules,
                                        server::SubmitJob& out);

// The fields of a JSON object body: strings as they are, numbers and booleans as text, arrays of
// scalars as several values. A nested object is a 400 naming the field, except
// chunking_strategy's (kept as its JSON text).
std::optional<ApiError> FieldsFromJson(const nlohmann::json& body, RequestFields& out);

// A duration (ParseDurationSeconds: "30", "30s", "5m", "1h") or "-1" (keep loaded) → seconds;
// nullopt if malformed or beyond a year.
std::optional<int> ParseKeepAlive(const std::string& text);

}  // namespace steno::api
