// Rendering a Transcript into the output formats of `steno transcribe --format` and of the
// OpenAI-compatible API's response_format: txt, srt, vtt, json and verbose_json.
//
// Promises (tests/unit/formats_test.cc checks each one; tests/support/subtitle_check.h validates):
// - Render never throws and always returns a complete document, whatever the transcript holds:
//   negative or non-finite times become 0, an end before its start is clamped to the start, and
//   invalid UTF-8 in text (random-weight models emit arbitrary bytes) is replaced by U+FFFD in
//   JSON, so JSON output always parses. txt/srt/vtt pass text bytes through unchanged, except for
//   the cue rules below.
// - Times are rounded (not truncated) to the millisecond: 1.9996 s is "00:00:02,000" and 2.0 in
//   JSON. Hours are not capped at 99 (360000 s is "100:00:00,000").
// - txt: one line per segment with its text trimmed of surrounding whitespace, each line ending
//   in '\n'; segments whose trimmed text is empty are left out. No segments -> "".
// - srt / vtt: one cue per segment whose trimmed text is non-empty; SRT cues are numbered 1..n
//   with no gaps even when segments are skipped. Cue text has no blank or whitespace-only lines
//   (line breaks inside a segment are kept, runs of them collapse to one), and "-->" inside text
//   becomes "->" (a parser would take such a line for a timing line). Cue starts never go
//   backwards: a start earlier than the previous cue's start is raised to it (players and
//   validators require monotonic starts). VTT additionally writes '&' and '<' as "&amp;" and
//   "&lt;", since WebVTT cue text treats them as markup. Cues are separated by one
//   blank line; the document ends with a single '\n'. VTT always starts with "WEBVTT\n\n".
// - json: {"text","language","duration","segments":[{"id","start","end","text"}]}. "text" is
//   Transcript::Text() without leading whitespace; segment texts are kept as decoded (leading
//   space included) and every segment is listed, empty ones too, so the segments match what the
//   engine produced (and what whisper-cli prints for the same decode).
// - verbose_json: OpenAI's shape {"task","language","duration","text","segments":[{"id","seek",
//   "start","end","text","tokens","temperature","avg_logprob","compression_ratio",
//   "no_speech_prob"}]}. Only when t.has_words: each segment gets "words":[{"word","start","end",
//   "probability"}] (word text as decoded, like openai-whisper's result) and the top level gets
//   "words":[{"word","start","end"}] with words trimmed (like the OpenAI API), then steno's own
//   "word_timing": "dtw" or "tokens" (Transcript::word_timing) when set. Float statistics
//   are written with float precision (0.2f is 0.2, not 0.20000000298...); non-finite ones as 0.
// - JSON documents are indented by 2 and end with '\n'.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "engine/transcript.h"

namespace steno::engine {

enum class Format { kTxt, kSrt, kVtt, kJson, kVerboseJson };

// Parses a format name, case-insensitively: "txt" (or OpenAI's "text"), "srt", "vtt", "json",
// "verbose_json". Anything else is kBadInput "bad_format" with a message listing the valid names.
Result<Format> ParseFormat(std::string_view name);

// Whether `name` is one of the API's response_format values, OpenAI's names spelled exactly:
// json, text, srt, vtt, verbose_json (each parses with ParseFormat).
bool IsResponseFormat(std::string_view name);

// Canonical name ("txt", "srt", "vtt", "json", "verbose_json"); ParseFormat(FormatName(f)) == f.
std::string_view FormatName(Format f);

// File extension without the dot: "txt", "srt", "vtt", "json", "verbose.json" (so the json and
// verbose_json outputs of the same input do not overwrite each other).
std::string_view FormatExtension(Format f);

// HTTP Content-Type: "text/plain; charset=utf-8", "application/x-subrip", "text/vtt",
// "application/json" (json and verbose_json).
std::string_view FormatContentType(Format f);

// The whole document for `t` in format `f` (see the promises above).
std::string Render(const Transcript& t, Format f);

// The json / verbose_json documents as values, for callers that embed them in a larger response.
// ordered_json keeps OpenAI's key order. Times and statistics are already sanitized; text may
// still hold invalid UTF-8, so dump with error_handler_t::replace (DumpJson does), never plain
// dump(), which throws on it.
nlohmann::ordered_json ToJson(const Transcript& t);
nlohmann::ordered_json ToVerboseJson(const Transcript& t);

// Dumps with indent 2, invalid UTF-8 replaced by U+FFFD, and a trailing '\n'. Never throws.
std::string DumpJson(const nlohmann::ordered_json& j);

// --- Timestamp helpers, shared with the API layer ---

// Seconds to whole milliseconds, rounded half away from zero. Negative, NaN and infinite inputs
// give 0; values beyond ~292 million years saturate instead of overflowing.
std::int64_t SecondsToMillis(double seconds);

// Seconds rounded to the millisecond, as a double for JSON (same guards as SecondsToMillis).
double RoundSeconds(double seconds);

// "HH:MM:SS<sep>mmm" from seconds, rounded to the millisecond: ',' for SRT, '.' for VTT.
// Hours have at least two digits and grow as needed. Same guards as SecondsToMillis.
std::string FormatTimestamp(double seconds, char ms_separator = ',');

}  // namespace steno::engine
