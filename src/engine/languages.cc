#include "engine/languages.h"

#include <string>

#include <whisper.h>

namespace steno::engine {

bool IsKnownLanguage(std::string_view name) {
  if (name.empty()) return false;
  // The table walked rather than whisper_lang_id, which logs an error for every unknown name.
  for (int id = 0; id <= whisper_lang_max_id(); ++id) {
    const char* code = whisper_lang_str(id);
    const char* full = whisper_lang_str_full(id);
    if ((code && name == code) || (full && name == full)) return true;
  }
  return false;
}

std::string LanguageCode(std::string_view name) {
  for (int id = 0; id <= whisper_lang_max_id(); ++id) {
    const char* code = whisper_lang_str(id);
    const char* full = whisper_lang_str_full(id);
    if ((code && name == code) || (full && name == full)) return code ? code : std::string(name);
  }
  return std::string(name);
}

Status CheckLanguage(std::string_view name) {
  if (name == "auto" || IsKnownLanguage(name)) return {};
  constexpr size_t kShown = 32;
  std::string shown(name.substr(0, kShown));
  if (name.size() > kShown) shown += "...";
  return Error(ErrorKind::kBadInput, "bad_language",
               "unknown language '" + shown +
                   "': use an ISO 639-1 code such as en, de, fr, or 'auto' to detect it");
}

}  // namespace steno::engine
