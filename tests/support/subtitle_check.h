// Validators for steno's output documents, shared by the formats unit test and the CLI/API
// integration tests. Each returns a list of problems, one sentence each (with a 1-based line
// number for SRT/VTT); an empty list means the document is valid.
//
// SRT: cues numbered 1..n consecutively; each cue is a number line, a timing line
//   "HH:MM:SS,mmm --> HH:MM:SS,mmm" and at least one non-blank text line; exactly one blank line
//   between cues; start <= end; starts never decrease; minutes and seconds below 60; no text line
//   holds "-->" or only whitespace (parsers take those for timing lines or cue ends); the document
//   ends with '\n' (trailing blank lines are tolerated). An empty document is valid (no cues).
// VTT: first line "WEBVTT" (optionally followed by a space or tab and a title), then a blank
//   line; each cue is an optional identifier line without "-->", a timing line
//   "HH:MM:SS.mmm --> HH:MM:SS.mmm" (optionally followed by a space and cue settings) and at least
//   one text line; the same time, text and blank-line rules as SRT. Hours always present.
// JSON: the shapes documented in src/engine/formats.h, including no unexpected keys, end >= start,
//   non-negative times and, for verbose_json, words either everywhere or nowhere.
#pragma once

#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace steno::test {
namespace subtitle_detail {

struct Line {
  int number;  // 1-based
  std::string_view text;
};

// Lines split on '\n'; a final '\n' does not start another (empty) line.
inline std::vector<Line> SplitLines(std::string_view doc) {
  std::vector<Line> lines;
  std::size_t pos = 0;
  int number = 1;
  while (pos < doc.size()) {
    std::size_t nl = doc.find('\n', pos);
    if (nl == std::string_view::npos) nl = doc.size();
    lines.push_back({number++, doc.substr(pos, nl - pos)});
    pos = nl + 1;
  }
  return lines;
}

inline bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

inline std::int64_t ToInt(std::string_view s) {
  std::int64_t v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// "HH:MM:SS<sep>mmm" (two or more hour digits) to milliseconds; nullopt when malformed.
inline std::optional<std::int64_t> ParseTimestamp(std::string_view s, char sep) {
  const std::size_t c1 = s.find(':');
  if (c1 == std::string_view::npos || c1 < 2) return std::nullopt;
  if (s.size() != c1 + 10) return std::nullopt;  // ":MM:SS,mmm"
  const std::string_view h = s.substr(0, c1), m = s.substr(c1 + 1, 2), sec = s.substr(c1 + 4, 2),
                         ms = s.substr(c1 + 7, 3);
  if (s[c1 + 3] != ':' || s[c1 + 6] != sep) return std::nullopt;
  if (!AllDigits(h) || h.size() > 12 || !AllDigits(m) || !AllDigits(sec) || !AllDigits(ms)) {
    return std::nullopt;
  }
  if (ToInt(m) >= 60 || ToInt(sec) >= 60) return std::nullopt;
  return ((ToInt(h) * 60 + ToInt(m)) * 60 + ToInt(sec)) * 1000 + ToInt(ms);
}

// Splits lines into blocks separated by blank lines, reporting any run of more than one blank
// line between blocks (trailing blank lines at the end are tolerated).
inline std::vector<std::vector<Line>> Blocks(const std::vector<Line>& lines, std::size_t first,
                                             std::vector<std::string>& problems) {
  std::vector<std::vector<Line>> blocks;
  std::vector<Line> current;
  int blank_run = 0;
  for (std::size_t i = first; i < lines.size(); ++i) {
    const Line& line = lines[i];
    if (line.text.empty()) {
      if (!current.empty()) blocks.push_back(std::move(current));
      current.clear();
      ++blank_run;
      continue;
    }
    if (blank_run > 1 && !blocks.empty()) {
      problems.push_back("line " + std::to_string(line.number) + ": " + std::to_string(blank_run) +
                         " blank lines before this cue instead of 1");
    }
    blank_run = 0;
    current.push_back(line);
  }
  if (!current.empty()) blocks.push_back(std::move(current));
  return blocks;
}

// Checks a timing line and the cue text lines that follow it; updates prev_start.
inline void CheckCue(const Line& timing, const std::vector<Line>& text_lines, char sep,
                     bool allow_settings, std::optional<std::int64_t>& prev_start,
                     std::vector<std::string>& problems) {
  const std::string where = "line " + std::to_string(timing.number) + ": ";
  const std::string_view arrow = " --> ";
  const std::size_t at = timing.text.find(arrow);
  if (at == std::string_view::npos) {
    problems.push_back(where + "expected a timing line, got '" + std::string(timing.text) + "'");
    return;
  }
  std::string_view rest = timing.text.substr(at + arrow.size());
  std::string_view end_text = rest;
  if (const std::size_t space = rest.find_first_of(" \t"); space != std::string_view::npos) {
    end_text = rest.substr(0, space);
    if (!allow_settings) {
      problems.push_back(where + "unexpected text after the end time");
    }
  }
  const auto start = ParseTimestamp(timing.text.substr(0, at), sep);
  const auto end = ParseTimestamp(end_text, sep);
  const std::string form = std::string("HH:MM:SS") + sep + "mmm";
  if (!start) problems.push_back(where + "start time is not " + form);
  if (!end) problems.push_back(where + "end time is not " + form);
  if (start && end && *end < *start) problems.push_back(where + "end time is before start time");
  if (start && prev_start && *start < *prev_start) {
    problems.push_back(where + "start time is before the previous cue's start");
  }
  if (start) prev_start = start;
  if (text_lines.empty()) problems.push_back(where + "cue has no text");
  for (const Line& line : text_lines) {
    if (line.text.find("-->") != std::string_view::npos) {
      problems.push_back("line " + std::to_string(line.number) + ": cue text contains '-->'");
    }
    if (line.text.find_first_not_of(" \t\r\f\v") == std::string_view::npos) {
      problems.push_back("line " + std::to_string(line.number) + ": whitespace-only cue text line");
    }
  }
}

inline void CheckEndsWithNewline(std::string_view doc, std::vector<std::string>& problems) {
  if (!doc.empty() && doc.back() != '\n') problems.push_back("document does not end with '\\n'");
}

}  // namespace subtitle_detail

inline std::vector<std::string> ValidateSrt(std::string_view doc) {
  using namespace subtitle_detail;
  std::vector<std::string> problems;
  CheckEndsWithNewline(doc, problems);
  const std::vector<Line> lines = SplitLines(doc);
  if (!lines.empty() && lines[0].text.empty()) {
    problems.push_back("line 1: document starts with a blank line");
  }
  std::optional<std::int64_t> prev_start;
  std::int64_t expected = 1;
  for (const auto& block : Blocks(lines, 0, problems)) {
    const Line& number = block[0];
    if (!AllDigits(number.text) || number.text.size() > 9) {
      problems.push_back("line " + std::to_string(number.number) + ": expected cue number " +
                         std::to_string(expected) + ", got '" + std::string(number.text) + "'");
    } else if (ToInt(number.text) != expected) {
      problems.push_back("line " + std::to_string(number.number) + ": cue number " +
                         std::string(number.text) + " should be " + std::to_string(expected));
    }
    ++expected;
    if (block.size() < 2) {
      problems.push_back("line " + std::to_string(number.number) + ": cue has no timing line");
      continue;
    }
    CheckCue(block[1], std::vector<Line>(block.begin() + 2, block.end()), ',',
             /*allow_settings=*/false, prev_start, problems);
  }
  return problems;
}

inline std::vector<std::string> ValidateVtt(std::string_view doc) {
  using namespace subtitle_detail;
  std::vector<std::string> problems;
  CheckEndsWithNewline(doc, problems);
  std::string_view body = doc;
  if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);  // a BOM is allowed
  const std::vector<Line> lines = SplitLines(body);
  const std::string_view header = lines.empty() ? std::string_view() : lines[0].text;
  if (header.substr(0, 6) != "WEBVTT" ||
      (header.size() > 6 && header[6] != ' ' && header[6] != '\t')) {
    problems.push_back("line 1: missing 'WEBVTT' header");
    return problems;
  }
  if (lines.size() > 1 && !lines[1].text.empty()) {
    problems.push_back("line 2: expected a blank line after the WEBVTT header");
    return problems;
  }
  std::optional<std::int64_t> prev_start;
  for (const auto& block : Blocks(lines, 1, problems)) {
    // An identifier line is optional; the timing line is the first one holding "-->".
    std::size_t timing = 0;
    if (block[0].text.find("-->") == std::string_view::npos && block.size() > 1) timing = 1;
    CheckCue(block[timing], std::vector<Line>(block.begin() + timing + 1, block.end()), '.',
             /*allow_settings=*/true, prev_start, problems);
  }
  return problems;
}

namespace subtitle_detail {

using Json = nlohmann::json;

// Checks that `obj` is an object with exactly the `required` keys plus any of `optional`.
inline bool CheckKeys(const Json& obj, const std::string& where,
                      std::initializer_list<const char*> required,
                      std::initializer_list<const char*> optional,
                      std::vector<std::string>& problems) {
  if (!obj.is_object()) {
    problems.push_back(where + " is not an object");
    return false;
  }
  for (const char* key : required) {
    if (!obj.contains(key)) problems.push_back(where + " lacks \"" + key + "\"");
  }
  for (const auto& [key, value] : obj.items()) {
    bool known = false;
    for (const char* k : required) known = known || key == k;
    for (const char* k : optional) known = known || key == k;
    if (!known) problems.push_back(where + " has unexpected key \"" + key + "\"");
  }
  return true;
}

inline void CheckType(const Json& obj, const std::string& where, const char* key, const char* type,
                      std::vector<std::string>& problems) {
  if (!obj.contains(key)) return;  // reported by CheckKeys
  const Json& v = obj[key];
  const std::string t = type;
  const bool ok = (t == "string" && v.is_string()) || (t == "number" && v.is_number()) ||
                  (t == "integer" && v.is_number_integer()) || (t == "array" && v.is_array());
  if (!ok) problems.push_back(where + "." + key + " is not a " + t);
}

inline double Num(const Json& obj, const char* key) {
  return obj.contains(key) && obj[key].is_number() ? obj[key].get<double>() : 0.0;
}

// start/end: numbers, start >= 0, end >= start.
inline void CheckSpan(const Json& obj, const std::string& where,
                      std::vector<std::string>& problems) {
  CheckType(obj, where, "start", "number", problems);
  CheckType(obj, where, "end", "number", problems);
  if (Num(obj, "start") < 0) problems.push_back(where + ".start is negative");
  if (Num(obj, "end") < Num(obj, "start")) problems.push_back(where + ".end is before start");
}

inline void CheckProbability(const Json& obj, const std::string& where, const char* key,
                             std::vector<std::string>& problems) {
  CheckType(obj, where, key, "number", problems);
  const double p = Num(obj, key);
  if (p < 0 || p > 1) problems.push_back(where + "." + key + " is outside [0, 1]");
}

inline void CheckHeader(const Json& j, std::vector<std::string>& problems) {
  CheckType(j, "document", "text", "string", problems);
  CheckType(j, "document", "language", "string", problems);
  CheckType(j, "document", "duration", "number", problems);
  if (Num(j, "duration") < 0) problems.push_back("document.duration is negative");
  CheckType(j, "document", "segments", "array", problems);
}

}  // namespace subtitle_detail

// The "json" format: {"text","language","duration","segments":[{"id","start","end","text"}]}.
inline std::vector<std::string> ValidateJsonShape(const nlohmann::json& j) {
  using namespace subtitle_detail;
  std::vector<std::string> problems;
  if (!CheckKeys(j, "document", {"text", "language", "duration", "segments"}, {}, problems)) {
    return problems;
  }
  CheckHeader(j, problems);
  if (!j.contains("segments") || !j["segments"].is_array()) return problems;
  for (std::size_t i = 0; i < j["segments"].size(); ++i) {
    const Json& s = j["segments"][i];
    const std::string where = "segments[" + std::to_string(i) + "]";
    if (!CheckKeys(s, where, {"id", "start", "end", "text"}, {}, problems)) continue;
    CheckType(s, where, "id", "integer", problems);
    CheckType(s, where, "text", "string", problems);
    CheckSpan(s, where, problems);
  }
  return problems;
}

enum class WordsExpectation { kAny, kPresent, kAbsent };

// The "verbose_json" format (OpenAI's shape). Words must be on every segment and at the top level,
// or nowhere; `words` additionally demands one or the other.
inline std::vector<std::string> ValidateVerboseJsonShape(
    const nlohmann::json& j, WordsExpectation words = WordsExpectation::kAny) {
  using namespace subtitle_detail;
  std::vector<std::string> problems;
  if (!CheckKeys(j, "document", {"task", "language", "duration", "text", "segments"},
                 {"words", "word_timing"}, problems)) {
    return problems;
  }
  CheckHeader(j, problems);
  CheckType(j, "document", "task", "string", problems);
  if (j.contains("task") && j["task"] != "transcribe" && j["task"] != "translate") {
    problems.push_back("document.task is neither \"transcribe\" nor \"translate\"");
  }
  const bool top_words = j.contains("words");
  // steno's own "word_timing" ("dtw" or "tokens") comes with the words only.
  if (j.contains("word_timing") &&
      (!top_words || (j["word_timing"] != "dtw" && j["word_timing"] != "tokens"))) {
    problems.push_back("document.word_timing is not \"dtw\" or \"tokens\" beside words");
  }
  if (words == WordsExpectation::kPresent && !top_words) problems.push_back("document lacks words");
  if (words == WordsExpectation::kAbsent && top_words) problems.push_back("document has words");
  std::size_t segment_word_count = 0;
  if (j.contains("segments") && j["segments"].is_array()) {
    for (std::size_t i = 0; i < j["segments"].size(); ++i) {
      const Json& s = j["segments"][i];
      const std::string where = "segments[" + std::to_string(i) + "]";
      if (!CheckKeys(s, where,
                     {"id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
                      "compression_ratio", "no_speech_prob"},
                     {"words"}, problems)) {
        continue;
      }
      CheckType(s, where, "id", "integer", problems);
      CheckType(s, where, "seek", "integer", problems);
      if (s.contains("seek") && s["seek"].is_number() && s["seek"].get<double>() < 0) {
        problems.push_back(where + ".seek is negative");
      }
      CheckType(s, where, "text", "string", problems);
      CheckSpan(s, where, problems);
      CheckType(s, where, "tokens", "array", problems);
      if (s.contains("tokens") && s["tokens"].is_array()) {
        for (const Json& tok : s["tokens"]) {
          if (!tok.is_number_integer()) {
            problems.push_back(where + ".tokens holds a non-integer");
            break;
          }
        }
      }
      CheckType(s, where, "temperature", "number", problems);
      if (Num(s, "temperature") < 0) problems.push_back(where + ".temperature is negative");
      CheckType(s, where, "avg_logprob", "number", problems);
      CheckType(s, where, "compression_ratio", "number", problems);
      CheckProbability(s, where, "no_speech_prob", problems);
      if (s.contains("words") != top_words) {
        problems.push_back(where + (top_words ? " lacks words while the document has them"
                                              : " has words while the document has none"));
      }
      if (!s.contains("words")) continue;
      if (!s["words"].is_array()) {
        problems.push_back(where + ".words is not an array");
        continue;
      }
      for (std::size_t k = 0; k < s["words"].size(); ++k) {
        const Json& w = s["words"][k];
        const std::string wwhere = where + ".words[" + std::to_string(k) + "]";
        if (!CheckKeys(w, wwhere, {"word", "start", "end", "probability"}, {}, problems)) continue;
        CheckType(w, wwhere, "word", "string", problems);
        CheckSpan(w, wwhere, problems);
        CheckProbability(w, wwhere, "probability", problems);
      }
      segment_word_count += s["words"].size();
    }
  }
  if (top_words) {
    const Json& all = j["words"];
    if (!all.is_array()) {
      problems.push_back("document.words is not an array");
      return problems;
    }
    if (all.size() != segment_word_count) {
      problems.push_back("document.words has " + std::to_string(all.size()) +
                         " entries but the segments hold " + std::to_string(segment_word_count));
    }
    for (std::size_t k = 0; k < all.size(); ++k) {
      const std::string where = "words[" + std::to_string(k) + "]";
      if (!CheckKeys(all[k], where, {"word", "start", "end"}, {}, problems)) continue;
      CheckType(all[k], where, "word", "string", problems);
      CheckSpan(all[k], where, problems);
    }
  }
  return problems;
}

}  // namespace steno::test
