// A model server's transcription answer turned into the transcript JSON a whisper runner
// returns (engine/formats.h ToVerboseJson: what the scheduler stores and every response_format
// renders from), so a server model's jobs look like any other model's.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace steno::runners {

struct TranscriptRequest {
  std::string task = "transcribe";  // or "translate": the transcript's task
  bool word_timestamps = false;     // keep the answer's word timings (when it has them)
};

// `answer` is the server's JSON: OpenAI's verbose_json (or whisper.cpp's /inference
// verbose_json: segments with start, end, text, tokens, ...), or plain json ({"text": ...}),
// which becomes one segment spanning the audio as far as the answer says (its duration, else
// 0). The language becomes its ISO code ("english" → "en"); segments are numbered in order and
// kept inside the audio's duration; words are kept only when asked for and timed.
// kBadInput "bad_server_answer" when the answer has neither segments nor text.
Result<nlohmann::json> TranscriptFromServerAnswer(const nlohmann::json& answer,
                                                  const TranscriptRequest& request);

}  // namespace steno::runners
