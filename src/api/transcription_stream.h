// `stream=true` on POST /v1/audio/transcriptions: the answer is text/event-stream with OpenAI's
// transcription events, as the job's segments are decoded:
//   transcript.text.delta  {"type": "transcript.text.delta", "delta": "..."}: one per segment, in
//                          order (the first without its leading space), so the deltas joined
//                          are the text
//   transcript.text.done   {"type": "transcript.text.done", "text": "..."}: the whole text, the
//                          non-streamed response's "text"; the stream ends after it
//   error                  {"type": "error", "error": {"message", "type", "code"}}: the job
//                          failed or was cancelled; the stream ends after it
// A client that disconnects before the end cancels the job (its runner stops decoding it): the
// stream writes a keep-alive comment every second at least, so a client that left is noticed
// within about two seconds.
#pragma once

#include <string>

#include "api/routes.h"

namespace steno::api {

// Answers `call` with job `id`'s stream (the job was just submitted for this request).
void StreamTranscription(Context& ctx, Call& call, const std::string& id);

}  // namespace steno::api
