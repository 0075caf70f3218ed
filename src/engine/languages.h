// The spoken languages steno accepts: whisper.cpp's own table, so every layer (the API, the job
// service, `steno transcribe`, the runner) checks a language against the one list the engine
// decodes with. A language is named by its code ("en", "de", "yue") or whisper's full name
// ("english"), lower case as whisper spells them; "auto" asks the engine to detect it.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace steno::engine {

// Whether whisper.cpp knows `name` (a code or a full name). "auto" is not a language.
bool IsKnownLanguage(std::string_view name);

// The code of a known language named by its code or full name ("english" → "en"); anything
// else is returned as it is (a model server may answer with names whisper does not know).
std::string LanguageCode(std::string_view name);

// "auto" or a known language; anything else is kBadInput "bad_language", whose message names
// the value (its first 32 bytes) and how to write a valid one.
Status CheckLanguage(std::string_view name);

}  // namespace steno::engine
