#include "core/chunk_work.h"

#include <nlohmann/json.hpp>

namespace steno {

nlohmann::json ChunkWorkToJson(const ChunkWork& w) {
  nlohmann::json j = {{"step", w.step == ChunkWork::Step::kPlan ? "plan" : "chunk"},
                      {"pcm_path", w.pcm_path}};
  if (w.step == ChunkWork::Step::kPlan) {
    j["max_chunk_s"] = w.max_chunk_s;
    return j;
  }
  j["index"] = w.index;
  j["start"] = w.start;
  j["end"] = w.end;
  nlohmann::json speech = nlohmann::json::array();
  for (const auto& [s, e] : w.speech) speech.push_back({s, e});
  j["speech"] = std::move(speech);
  return j;
}

Result<ChunkWork> ChunkWorkFromJson(const nlohmann::json& j) {
  auto bad = [](const std::string& why) {
    return Error(ErrorKind::kBadInput, "bad_chunk_work", "chunk work: " + why);
  };
  if (!j.is_object()) return bad("not an object");
  ChunkWork w;
  try {
    const std::string step = j.at("step").get<std::string>();
    if (step != "plan" && step != "chunk") return bad("unknown step '" + step + "'");
    w.step = step == "plan" ? ChunkWork::Step::kPlan : ChunkWork::Step::kChunk;
    w.pcm_path = j.at("pcm_path").get<std::string>();
    if (w.pcm_path.empty()) return bad("no pcm_path");
    if (w.step == ChunkWork::Step::kPlan) {
      w.max_chunk_s = j.value("max_chunk_s", w.max_chunk_s);
      if (!(w.max_chunk_s > 0)) return bad("max_chunk_s must be positive");
      return w;
    }
    w.index = j.at("index").get<int>();
    w.start = j.at("start").get<double>();
    w.end = j.at("end").get<double>();
    for (const auto& r : j.at("speech")) {
      w.speech.emplace_back(r.at(0).get<double>(), r.at(1).get<double>());
    }
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }
  return w;
}

}  // namespace steno
