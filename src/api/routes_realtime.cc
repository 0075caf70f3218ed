// GET /v1/realtime?intent=transcription (or ?model=M, as OpenAI's clients connect): the WebSocket
// upgrade of a live transcription session (api/realtime_service.h). The API key was checked like
// on every route (the Authorization header, or the `openai-insecure-api-key.KEY` subprotocol).
// The handler takes the connection away from the HTTP server (api/realtime_upgrade.h), hands it
// to the realtime service and returns at once.
#include <spdlog/spdlog.h>

#include "api/realtime_upgrade.h"
#include "api/routes.h"

namespace steno::api {
namespace {

bool HasToken(const std::string& header, const std::string& token) {
  std::string lower;
  for (char c : header) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find(token) != std::string::npos;
}

void Realtime(Context& ctx, Call& call) {
  const auto& req = call.req;
  if (!HasToken(req.get_header_value("Upgrade"), "websocket") ||
      !HasToken(req.get_header_value("Connection"), "upgrade")) {
    call.res.set_header("Upgrade", "websocket");
    return SendError(call.res,
                     MakeApiError(426, "upgrade_required",
                                  "GET /v1/realtime is a WebSocket: send Upgrade: websocket"));
  }
  const std::string intent = req.get_param_value("intent");
  if (!intent.empty() && intent != "transcription") {
    return SendError(call.res, MakeApiError(400, "unsupported_intent",
                                            "this server runs transcription sessions only "
                                            "(intent=transcription)",
                                            "intent"));
  }
  if (ctx.stopping) {
    return SendErrorAndClose(call.res,
                             MakeApiError(503, "shutting_down", "the server is shutting down"));
  }
  auto fd = TakeConnection(req);
  if (!fd.ok()) {
    spdlog::error("GET /v1/realtime: {}", fd.error().message);
    return SendErrorAndClose(call.res,
                             MakeApiError(500, "internal_error", "cannot upgrade the connection"));
  }
  UpgradeRequest up;
  up.target = req.target.empty() ? req.path : req.target;
  for (const auto& [name, value] : req.headers) {
    // The library adds these itself; they were not sent.
    if (name == "REMOTE_ADDR" || name == "REMOTE_PORT" || name == "LOCAL_ADDR" ||
        name == "LOCAL_PORT") {
      continue;
    }
    up.headers.emplace_back(name, value);
  }
  up.model = req.get_param_value("model");
  ctx.realtime.Accept(*fd, std::move(up));
  // Nothing of this response reaches the client (the connection is the session's now).
  call.res.status = 101;
  CloseAfter(call.res);
}

}  // namespace

ojson LiveSessionsJson(Context& ctx) {
  ojson out = ojson::array();
  for (const auto& s : ctx.service.sessions().List()) {
    const bool active = s.state == JobState::kProcessing;
    out.push_back({{"id", s.id},
                   {"model", s.model},
                   {"state", active ? "active" : "waiting"},
                   {"runner_id", active ? ojson(s.runner_id) : ojson(nullptr)},
                   {"device", active ? ojson(s.device) : ojson(nullptr)},
                   {"created_ms", s.created_ms},
                   {"admitted_ms", s.admitted_ms > 0 ? ojson(s.admitted_ms) : ojson(nullptr)},
                   {"audio_ms", s.audio_ms},
                   {"completed", s.completed}});
  }
  return out;
}

void AddLiveSessionCounts(Context& ctx, ojson& runners) {
  const auto counts = ctx.service.sessions().PerRunner();
  for (auto& r : runners) {
    auto it = counts.find(r["id"].get<int64_t>());
    r["live_sessions"] = it == counts.end() ? 0 : it->second;
  }
}

void AddRealtimeRoutes(ApiRouter& router, Context& ctx) {
  router.Add("GET", "/v1/realtime", [&ctx](Call& c) { Realtime(ctx, c); });
}

}  // namespace steno::api
