// HTTP errors in OpenAI's shape, and the one table that maps steno's typed errors to statuses.
//
//   {"error": {"type": "invalid_request_error", "code": "model_not_found",
//              "message": "…", "param": "model"}}
//
// Status policy (every route follows it; a client's mistake is never a 5xx):
//   400 malformed request (bad field, bad JSON, bad multipart, bad parameter value)
//   401 missing or wrong API key                      403 server path outside the allowed roots
//   404 unknown route, job, model, runner or file     405 known route, other method
//   408 the request body stopped arriving (no bytes for the read timeout)
//   409 the job or node is in the wrong state (kConflict: cancel of a completed job, forgetting a
//       live node; kCancelled)
//   413 body, upload or field too large; audio longer than the configured limit ("too_long")
//   415 audio that cannot be decoded (not_media, no_audio_stream, corrupt_audio,
//       unsupported_codec, empty_audio, truncated) or a request body of the wrong content type
//   429 too_many_uploads: the client already has its bound of requests sending a body
//   503 queue_full, shutting_down, devices unavailable (kUnavailable, kOutOfMemory); Retry-After
//       is the error's retry_after_s, or 5 s when it has none
//   507 insufficient_storage: the data dir's disk is full, or its free space is below
//       --min-free-disk (kNoSpace); the request changed nothing
//   500 only for steno's own failures (I/O, integrity, bugs)
//
// Server paths never reach a client: the messages of the storage kinds (kIo, kNoSpace,
// kIntegrity), which name files under the data and models dirs, are logged and replaced by a
// sentence that names none.
#pragma once

#include <string>

#include "core/error.h"

namespace steno::api {

struct ApiError {
  int status = 500;
  std::string type;  // OpenAI's error type: invalid_request_error, authentication_error, ...
  std::string code;  // stable machine-readable code
  std::string message;
  std::string param;      // the request field at fault, if one is
  int retry_after_s = 0;  // > 0: sent as Retry-After
};

// An error the HTTP layer itself detects (bad field, unknown route, ...). `type` follows from
// the status.
ApiError MakeApiError(int status, std::string code, std::string message, std::string param = "");

// The status and type for an error returned by the service layers (see the table above).
ApiError FromError(const Error& error, std::string param = "");

// FromError for a failure storing an upload: a full disk (kNoSpace) is 507 insufficient_storage
// "not enough disk space to store the upload NAME; retry later", another storage failure a 500
// naming the upload; `upload_name` is the client's own file name (may be empty).
ApiError FromUploadError(const Error& error, const std::string& upload_name);

// OpenAI's error type for a status: authentication_error (401), permission_error (403),
// server_error (5xx), invalid_request_error for every other 4xx (OpenAI uses it for 404 too).
const char* ErrorTypeFor(int status);

// The JSON document for `error` (compact, UTF-8 safe).
std::string ErrorBody(const ApiError& error);

// A generic code for a status the HTTP library produced on its own (400, 404, 413, 414, ...).
std::string CodeForStatus(int status);

}  // namespace steno::api
