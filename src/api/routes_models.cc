// Models and runners: GET /v1/models (OpenAI's list shape: the model catalog, with each model's
// runner kind, capabilities and footprint source), GET /v1/models/{name}, GET /v1/runners (like
// `ollama ps`; each runner with "live_sessions", the live transcription sessions holding one of
// its streams, and a whisper runner with how it times words: "word_timing" dtw or tokens), POST
// /v1/models/{name}/load
// ({"device": ..., "keep_alive": ...}) and POST /v1/models/{name}/unload.
#include <ctime>
#include <filesystem>

#include "api/routes.h"
#include "core/paths.h"
#include "models/model_catalog.h"
#include "models/model_variant.h"

namespace steno::api {
namespace {

int64_t MtimeSeconds(const std::string& path) {
  std::error_code ec;
  auto t = std::filesystem::last_write_time(path, ec);
  if (ec) return 0;
  auto sys = std::chrono::file_clock::to_sys(t);
  return std::chrono::duration_cast<std::chrono::seconds>(sys.time_since_epoch()).count();
}

std::string Iso8601(int64_t wall_ms) {
  std::time_t t = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

ojson ModelJson(const models::ModelEntry& m, const sched::SchedulerSnapshot& snap) {
  int runners = 0;
  for (const auto& r : snap.runners) runners += models::ModelOfKey(r.view.model) == m.name;
  return {{"id", m.name},
          {"object", "model"},
          {"created", m.path.empty() ? 0 : MtimeSeconds(m.path)},
          {"owned_by", "steno"},
          {"size_bytes", m.file_bytes},
          {"loaded", runners > 0},
          {"runners", runners},
          {"kind", m.kind},
          {"capabilities", m.capabilities.Names()},
          {"footprint", models::FootprintSourceName(m.footprint)}};
}

void ListModels(Context& ctx, Call& call) {
  const auto snap = ctx.service.runners().Snapshot();
  ojson data = ojson::array();
  for (const auto& m : CatalogOf(ctx).List()) {
    data.push_back(ModelJson(m, snap));
  }
  SendJson(call.res, 200, {{"object", "list"}, {"data", std::move(data)}});
}

void GetModel(Context& ctx, Call& call) {
  const std::string& name = call.params[0];
  const auto snap = ctx.service.runners().Snapshot();
  for (const auto& m : CatalogOf(ctx).List()) {
    if (m.name == name) return SendJson(call.res, 200, ModelJson(m, snap));
  }
  SendError(call.res,
            MakeApiError(404, "model_not_found",
                         "model '" + name + "' is not installed on this server", "model"));
}

}  // namespace

models::ModelCatalog CatalogOf(Context& ctx) {
  if (auto catalog = ctx.service.runners().Catalog()) return *catalog;
  const auto& dir = ctx.options.models_dir;
  return models::ModelCatalog(dir.empty() ? steno::ModelsDir() : dir);
}

ojson RunnerJson(const sched::RunnerInfo& r, const sched::SchedulerSnapshot& snap, int64_t now) {
  // Scheduler times are on its own clock: convert through the snapshot's "now".
  auto wall = [&](int64_t t) { return now - (snap.now_ms - t); };
  const auto& v = r.view;
  const int64_t bytes = v.weights_bytes + static_cast<int64_t>(v.streams) * v.stream_bytes;
  ojson j = {{"id", v.id},
             {"model", models::ModelOfKey(v.model)},
             {"kind", r.kind},
             {"device", v.device},
             {"state", sched::RunnerStateName(r.state)},
             {"vram_bytes", v.device == "cpu" ? 0 : bytes},
             {"bytes", bytes},
             {"weights_bytes", v.weights_bytes},
             {"stream_bytes", v.stream_bytes},
             {"streams", v.streams},
             {"busy_streams", v.busy_streams},
             {"keep_alive_s", r.keep_alive_s},
             {"jobs_done", r.jobs_done},
             {"loaded_at_ms", v.loaded_ms > 0 ? wall(v.loaded_ms) : 0},
             {"last_used_at_ms", v.last_used_ms > 0 ? wall(v.last_used_ms) : 0}};
  // A whisper model's words are timed by DTW on a runner loaded for it (its DTW variant, or
  // every runner with --dtw-words): why one model may have two runners.
  if (const auto timing = models::WordTimingOf(r.kind, r.load.dtw_words); !timing.empty()) {
    j["word_timing"] = timing;
  }
  if (r.expires_at_ms) {
    const int64_t at = wall(*r.expires_at_ms);
    j["expires_at"] = Iso8601(at);
    j["expires_at_ms"] = at;
    j["expires_in_s"] = std::max<int64_t>(0, (*r.expires_at_ms - snap.now_ms) / 1000);
  } else {
    j["expires_at"] = nullptr;
    j["expires_at_ms"] = nullptr;
    j["expires_in_s"] = nullptr;  // busy, or kept forever
  }
  return j;
}

namespace {

void ListRunners(Context& ctx, Call& call) {
  const auto snap = ctx.service.runners().Snapshot();
  const int64_t now = UnixMillis();
  ojson data = ojson::array();
  for (const auto& r : snap.runners) data.push_back(RunnerJson(r, snap, now));
  AddLiveSessionCounts(ctx, data);
  SendJson(call.res, 200, {{"object", "list"}, {"data", std::move(data)}});
}

void LoadModel(Context& ctx, Call& call) {
  const std::string& name = call.params[0];
  nlohmann::json body;
  if (auto e = ReadJsonObject(call, ctx.options.max_json_bytes, body)) {
    return SendError(call.res, *e);
  }
  RequestFields fields;
  if (auto e = FieldsFromJson(body, fields)) return SendError(call.res, *e);
  // The same rules as a job's device and keep_alive.
  RequestFields subset{{"model", {name}}};
  for (const char* key : {"device", "keep_alive"}) {
    if (fields.count(key)) subset[key] = fields[key];
  }
  server::SubmitJob parsed;
  if (auto e = ParseJobRequest(subset, {"transcribe", ""}, parsed)) {
    return SendError(call.res, *e);
  }
  auto st = ctx.service.runners().Load(name, parsed.params.device, parsed.params.keep_alive_s);
  if (!st.ok()) {
    return SendError(call.res, FromError(st.error(), ParamForError(st.error())));
  }
  const auto snap = ctx.service.runners().Snapshot();
  const int64_t now = UnixMillis();
  ojson runners = ojson::array();
  for (const auto& r : snap.runners) {
    if (models::ModelOfKey(r.view.model) == name) runners.push_back(RunnerJson(r, snap, now));
  }
  SendJson(call.res, 200, {{"model", name}, {"status", "loaded"}, {"runners", runners}});
}

void UnloadModel(Context& ctx, Call& call) {
  const std::string& name = call.params[0];
  std::string ignored;
  if (auto e = ReadBody(call, ctx.options.max_json_bytes, ignored)) return SendError(call.res, *e);
  auto st = ctx.service.runners().Unload(name);
  if (!st.ok()) return SendError(call.res, FromError(st.error(), "model"));
  SendJson(call.res, 200, {{"model", name}, {"status", "unloaded"}});
}

}  // namespace

void AddModelRoutes(ApiRouter& router, Context& ctx) {
  router.Add("GET", "/v1/models", [&ctx](Call& c) { ListModels(ctx, c); });
  router.Add("GET", "/v1/models/{name}", [&ctx](Call& c) { GetModel(ctx, c); });
  router.Add("POST", "/v1/models/{name}/load", [&ctx](Call& c) { LoadModel(ctx, c); });
  router.Add("POST", "/v1/models/{name}/unload", [&ctx](Call& c) { UnloadModel(ctx, c); });
  router.Add("GET", "/v1/runners", [&ctx](Call& c) { ListRunners(ctx, c); });
}

}  // namespace steno::api
