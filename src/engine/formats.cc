#include "engine/formats.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/strings.h"

namespace steno::engine {
namespace {

struct FormatInfo {
  Format format;
  std::string_view name;
  std::string_view extension;
  std::string_view content_type;
};

constexpr std::array<FormatInfo, 5> kFormats = {{
    {Format::kTxt, "txt", "txt", "text/plain; charset=utf-8"},
    {Format::kSrt, "srt", "srt", "application/x-subrip"},
    {Format::kVtt, "vtt", "vtt", "text/vtt"},
    {Format::kJson, "json", "json", "application/json"},
    {Format::kVerboseJson, "verbose_json", "verbose.json", "application/json"},
}};

const FormatInfo& Info(Format f) {
  for (const auto& info : kFormats) {
    if (info.format == f) return info;
  }
  return kFormats[0];  // unreachable for a valid enum value
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// "HH:MM:SS<sep>mmm" from a non-negative millisecond count.
std::string FormatMillis(std::int64_t ms, char sep) {
  const std::int64_t hours = ms / 3'600'000;
  const std::int64_t minutes = ms / 60'000 % 60;
  const std::int64_t secs = ms / 1000 % 60;
  const std::int64_t millis = ms % 1000;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%02" PRId64 ":%02" PRId64 ":%02" PRId64 "%c%03" PRId64, hours,
                minutes, secs, sep, millis);
  return buf;
}

// Cue text for SRT/VTT: lines trimmed, blank lines dropped (a blank line ends a cue), "-->"
// replaced (a line holding it reads as a timing line), and for VTT the two characters that start
// markup escaped ('>' alone is plain text in WebVTT, so "->" stays readable in the file).
std::string CueText(std::string_view text, bool vtt) {
  std::string joined;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find_first_of("\r\n", pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = Trim(text.substr(pos, nl - pos));
    if (!line.empty()) {
      if (!joined.empty()) joined += '\n';
      joined += line;
    }
    pos = nl + 1;
  }
  // Each replacement shortens the text, so this ends; restart one back because "--->" -> "-->".
  for (std::size_t at = joined.find("-->"); at != std::string::npos;
       at = joined.find("-->", at > 0 ? at - 1 : 0)) {
    joined.replace(at, 3, "->");
  }
  if (!vtt) return joined;
  std::string escaped;
  escaped.reserve(joined.size());
  for (char c : joined) {
    switch (c) {
      case '&': escaped += "&amp;"; break;
      case '<': escaped += "&lt;"; break;
      default: escaped += c;
    }
  }
  return escaped;
}

std::string RenderTxt(const Transcript& t) {
  std::string out;
  for (const auto& s : t.segments) {
    const std::string_view text = Trim(s.text);
    if (text.empty()) continue;
    out += text;
    out += '\n';
  }
  return out;
}

std::string RenderSubtitles(const Transcript& t, bool vtt) {
  const char sep = vtt ? '.' : ',';
  std::string out = vtt ? "WEBVTT\n" : "";
  int number = 0;
  std::int64_t prev_start = 0;
  for (const auto& s : t.segments) {
    const std::string text = CueText(s.text, vtt);
    if (text.empty()) continue;
    const std::int64_t start = std::max(SecondsToMillis(s.start), prev_start);
    const std::int64_t end = std::max(SecondsToMillis(s.end), start);
    prev_start = start;
    ++number;
    // SRT has no header, so its first cue needs no separating blank line.
    if (vtt || number > 1) out += '\n';
    if (!vtt) out += std::to_string(number) + '\n';
    out += FormatMillis(start, sep);
    out += " --> ";
    out += FormatMillis(end, sep);
    out += '\n';
    out += text;
    out += '\n';
  }
  // An empty VTT still needs the blank line that ends its header block.
  if (vtt && number == 0) out += '\n';
  return out;
}

// A float as the double with the same shortest decimal form, so 0.2f is written as 0.2.
double FloatForJson(float v) {
  if (!std::isfinite(v)) return 0;
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return v;
  double out = v;
  std::from_chars(buf, end, out);
  return out;
}

nlohmann::ordered_json SegmentWords(const Segment& s) {
  nlohmann::ordered_json words = nlohmann::ordered_json::array();
  for (const auto& w : s.words) {
    const double start = RoundSeconds(w.start);
    words.push_back({{"word", w.text},
                     {"start", start},
                     {"end", std::max(RoundSeconds(w.end), start)},
                     {"probability", FloatForJson(w.probability)}});
  }
  return words;
}

}  // namespace

Result<Format> ParseFormat(std::string_view name) {
  const std::string lower = Lower(name);
  if (lower == "text") return Format::kTxt;
  for (const auto& info : kFormats) {
    if (lower == info.name) return info.format;
  }
  std::string valid;
  for (const auto& info : kFormats) {
    if (!valid.empty()) valid += ", ";
    valid += info.name;
  }
  return Error(
      ErrorKind::kBadInput, "bad_format",
      "Unknown output format '" + std::string(name) + "'; valid formats are " + valid + ".");
}

bool IsResponseFormat(std::string_view name) {
  return name == "json" || name == "text" || name == "srt" || name == "vtt" ||
         name == "verbose_json";
}

std::string_view FormatName(Format f) {
  return Info(f).name;
}
std::string_view FormatExtension(Format f) {
  return Info(f).extension;
}
std::string_view FormatContentType(Format f) {
  return Info(f).content_type;
}

std::int64_t SecondsToMillis(double seconds) {
  if (!std::isfinite(seconds) || seconds <= 0) return 0;
  const double ms = seconds * 1000.0;
  // 9.2e18 is just below INT64_MAX; llround beyond it is undefined.
  if (ms >= 9.2e18) return std::numeric_limits<std::int64_t>::max();
  return static_cast<std::int64_t>(std::llround(ms));
}

double RoundSeconds(double seconds) {
  return static_cast<double>(SecondsToMillis(seconds)) / 1000.0;
}

std::string FormatTimestamp(double seconds, char ms_separator) {
  return FormatMillis(SecondsToMillis(seconds), ms_separator);
}

nlohmann::ordered_json ToJson(const Transcript& t) {
  nlohmann::ordered_json segments = nlohmann::ordered_json::array();
  for (const auto& s : t.segments) {
    const double start = RoundSeconds(s.start);
    segments.push_back({{"id", s.id},
                        {"start", start},
                        {"end", std::max(RoundSeconds(s.end), start)},
                        {"text", s.text}});
  }
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["text"] = std::string(TrimLeft(t.Text()));
  j["language"] = t.language;
  j["duration"] = RoundSeconds(t.duration);
  j["segments"] = std::move(segments);
  return j;
}

nlohmann::ordered_json ToVerboseJson(const Transcript& t) {
  nlohmann::ordered_json segments = nlohmann::ordered_json::array();
  nlohmann::ordered_json all_words = nlohmann::ordered_json::array();
  for (const auto& s : t.segments) {
    const double start = RoundSeconds(s.start);
    nlohmann::ordered_json seg = {{"id", s.id},
                                  {"seek", s.seek},
                                  {"start", start},
                                  {"end", std::max(RoundSeconds(s.end), start)},
                                  {"text", s.text},
                                  {"tokens", s.tokens},
                                  {"temperature", FloatForJson(s.temperature)},
                                  {"avg_logprob", FloatForJson(s.avg_logprob)},
                                  {"compression_ratio", FloatForJson(s.compression_ratio)},
                                  {"no_speech_prob", FloatForJson(s.no_speech_prob)}};
    if (t.has_words) {
      seg["words"] = SegmentWords(s);
      for (const auto& w : seg["words"]) {
        all_words.push_back({{"word", std::string(Trim(w["word"].get_ref<const std::string&>()))},
                             {"start", w["start"]},
                             {"end", w["end"]}});
      }
    }
    segments.push_back(std::move(seg));
  }
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["task"] = t.task;
  j["language"] = t.language;
  j["duration"] = RoundSeconds(t.duration);
  j["text"] = std::string(TrimLeft(t.Text()));
  j["segments"] = std::move(segments);
  if (t.has_words) j["words"] = std::move(all_words);
  if (t.has_words && !t.word_timing.empty()) j["word_timing"] = t.word_timing;
  return j;
}

std::string DumpJson(const nlohmann::ordered_json& j) {
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + '\n';
}

std::string Render(const Transcript& t, Format f) {
  switch (f) {
    case Format::kTxt: return RenderTxt(t);
    case Format::kSrt: return RenderSubtitles(t, /*vtt=*/false);
    case Format::kVtt: return RenderSubtitles(t, /*vtt=*/true);
    case Format::kJson: return DumpJson(ToJson(t));
    case Format::kVerboseJson: return DumpJson(ToVerboseJson(t));
  }
  return {};
}

}  // namespace steno::engine
