#include "runners/server/server_transcript.h"

#include "engine/formats.h"
#include "engine/languages.h"
#include "engine/transcript_json.h"

namespace steno::runners {
namespace {

using nlohmann::json;

double NumberOr(const json& j, const char* key, double fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

// The answer's segments as the fields TranscriptFromVerboseJson reads, without what servers add
// beyond them (speakers, t_dtw, untimed words) or send as null.
json CleanSegments(const json& segments, bool keep_words) {
  static const char* kFields[] = {
      "seek",          "start",       "end",         "text",
      "tokens",        "temperature", "avg_logprob", "compression_ratio",
      "no_speech_prob"};
  json out = json::array();
  for (const auto& s : segments) {
    if (!s.is_object()) continue;
    json c = json::object();
    c["id"] = static_cast<int>(out.size());
    for (const char* f : kFields) {
      if (auto it = s.find(f); it != s.end() && !it->is_null()) c[f] = *it;
    }
    auto words = s.find("words");
    if (keep_words && words != s.end() && words->is_array()) {
      json w = json::array();
      for (const auto& word : *words) {
        if (word.is_object() && word.contains("start") && word.contains("end")) w.push_back(word);
      }
      c["words"] = std::move(w);
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

Result<json> TranscriptFromServerAnswer(const json& answer, const TranscriptRequest& request) {
  if (!answer.is_object()) {
    return Error(ErrorKind::kBadInput, "bad_server_answer", "the server's answer is not an object");
  }
  const bool has_segments = answer.contains("segments") && answer["segments"].is_array();
  const bool has_text = answer.contains("text") && answer["text"].is_string();
  if (!has_segments && !has_text) {
    return Error(ErrorKind::kBadInput, "bad_server_answer",
                 "the server's answer has neither segments nor text");
  }
  const double duration = NumberOr(answer, "duration", 0);
  json v = json::object();
  v["task"] = request.task;
  if (auto l = answer.find("language"); l != answer.end() && l->is_string()) {
    v["language"] = engine::LanguageCode(l->get<std::string>());
  }
  v["duration"] = duration;
  if (has_segments) {
    v["segments"] = CleanSegments(answer["segments"], request.word_timestamps);
  } else {
    std::string text = answer["text"].get<std::string>();
    if (!text.empty() && text[0] != ' ') text = " " + text;  // as whisper decodes it
    v["segments"] = json::array({{{"id", 0}, {"start", 0.0}, {"end", duration}, {"text", text}}});
  }
  auto transcript = engine::TranscriptFromVerboseJson(v);
  if (!transcript.ok()) {
    return Error(ErrorKind::kBadInput, "bad_server_answer",
                 "the server's transcript: " + transcript.error().message);
  }
  engine::Transcript& t = *transcript;
  if (t.duration <= 0 && !t.segments.empty()) t.duration = t.segments.back().end;
  for (auto& s : t.segments) engine::ClampToDuration(s, t.duration);
  return json::parse(engine::ToVerboseJson(t).dump());
}

}  // namespace steno::runners
