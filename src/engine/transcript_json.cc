#include "engine/transcript_json.h"

namespace steno::engine {
namespace {

using nlohmann::json;

Error Bad(const char* code, const std::string& what) {
  return Error(ErrorKind::kBadInput, code, what);
}

// Reads j[key] into *out when present; false when present with the wrong type.
template <class T>
bool Optional(const json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  try {
    *out = it->get<T>();
    return true;
  } catch (const json::exception&) {
    return false;
  }
}

}  // namespace

Result<Transcript> TranscriptFromVerboseJson(const json& j) {
  if (!j.is_object() || !j.contains("segments") || !j["segments"].is_array()) {
    return Bad("bad_transcript", "transcript has no segments array");
  }
  Transcript t;
  bool ok = Optional(j, "task", &t.task) && Optional(j, "language", &t.language) &&
            Optional(j, "duration", &t.duration) && Optional(j, "word_timing", &t.word_timing);
  t.has_words = j.contains("words");
  for (const auto& js : j["segments"]) {
    if (!js.is_object()) return Bad("bad_transcript", "segment is not an object");
    Segment s;
    ok = ok && Optional(js, "id", &s.id) && Optional(js, "seek", &s.seek) &&
         Optional(js, "start", &s.start) && Optional(js, "end", &s.end) &&
         Optional(js, "text", &s.text) && Optional(js, "tokens", &s.tokens) &&
         Optional(js, "temperature", &s.temperature) &&
         Optional(js, "avg_logprob", &s.avg_logprob) &&
         Optional(js, "compression_ratio", &s.compression_ratio) &&
         Optional(js, "no_speech_prob", &s.no_speech_prob);
    if (auto w = js.find("words"); w != js.end() && w->is_array()) {
      t.has_words = true;
      for (const auto& jw : *w) {
        Word word;
        ok = ok && jw.is_object() && Optional(jw, "word", &word.text) &&
             Optional(jw, "start", &word.start) && Optional(jw, "end", &word.end) &&
             Optional(jw, "probability", &word.probability);
        s.words.push_back(std::move(word));
      }
    }
    t.segments.push_back(std::move(s));
  }
  if (!ok) return Bad("bad_transcript", "transcript field has the wrong type");
  return t;
}

json DecodeParamsToJson(const DecodeParams& p) {
  json j = {{"language", p.language},
            {"translate", p.translate},
            {"initial_prompt", p.initial_prompt},
            {"temperature", p.temperature},
            {"temperature_inc", p.temperature_inc},
            {"beam_size", p.beam_size},
            {"best_of", p.best_of},
            {"n_threads", p.n_threads},
            {"word_timestamps", p.word_timestamps},
            {"entropy_thold", p.entropy_thold},
            {"logprob_thold", p.logprob_thold},
            {"no_speech_thold", p.no_speech_thold}};
  if (p.vad) {
    j["vad"] = {{"threshold", p.vad->threshold},
                {"prefix_padding_ms", p.vad->prefix_padding_ms},
                {"silence_duration_ms", p.vad->silence_duration_ms}};
    j["vad_model_path"] = p.vad_model_path;
  }
  return j;
}

Result<DecodeParams> DecodeParamsFromJson(const json& j) {
  if (!j.is_object()) return Bad("bad_param", "decode parameters must be a JSON object");
  DecodeParams p;
  const bool ok = Optional(j, "language", &p.language) && Optional(j, "translate", &p.translate) &&
                  Optional(j, "initial_prompt", &p.initial_prompt) &&
                  Optional(j, "temperature", &p.temperature) &&
                  Optional(j, "temperature_inc", &p.temperature_inc) &&
                  Optional(j, "beam_size", &p.beam_size) && Optional(j, "best_of", &p.best_of) &&
                  Optional(j, "n_threads", &p.n_threads) &&
                  Optional(j, "word_timestamps", &p.word_timestamps) &&
                  Optional(j, "entropy_thold", &p.entropy_thold) &&
                  Optional(j, "logprob_thold", &p.logprob_thold) &&
                  Optional(j, "no_speech_thold", &p.no_speech_thold);
  if (!ok) return Bad("bad_param", "a decode parameter has the wrong type");
  if (auto it = j.find("vad"); it != j.end() && !it->is_null()) {
    VadSettings v;
    const bool vad_ok = it->is_object() && Optional(*it, "threshold", &v.threshold) &&
                        Optional(*it, "prefix_padding_ms", &v.prefix_padding_ms) &&
                        Optional(*it, "silence_duration_ms", &v.silence_duration_ms) &&
                        Optional(j, "vad_model_path", &p.vad_model_path);
    if (!vad_ok) return Bad("bad_param", "the VAD settings have the wrong type");
    p.vad = v;
  }
  return p;
}

}  // namespace steno::engine
