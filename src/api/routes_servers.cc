// Managed model servers' own routes: `/v1/servers/{name}/{path...}`, any method. For a model of
// kind "server" (any protocol; the `http` protocol is served only this way) the request takes a
// proxy hold (server/proxy_holds.h): it is admitted and placed like any job, starts the server
// if it is not running, renews its keep-alive and counts as a busy stream of its runner while it
// runs. The request then goes to the server's endpoint as it came (method, path after the
// model's name, query, headers less hop-by-hop ones and steno's Authorization), its body and the
// answer streamed through (server_relay.h); the server's status, headers and body come back as
// they are. The hold ends (its stream freed) once the answer is sent or the client is gone.
//
// Errors of steno's own (JSON, like every route): 404 model_not_found naming `model` for a name
// the catalog does not have; 400 not_a_server_model for a model of another kind; the hold's
// failure (a server that never turned healthy, no room: as a job's); 502 bad_gateway when the
// server did not answer.
#include <strings.h>

#include <cstdlib>
#include <memory>

#include "api/routes.h"
#include "api/server_relay.h"
#include "runners/server/server_model.h"

namespace steno::api {
namespace {

bool HasBody(const httplib::Request& req) {
  if (req.has_header("Transfer-Encoding")) return true;
  return req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0";
}

// The path and query after "/v1/servers/{name}" in the raw request target ("/" at least).
std::string UpstreamTarget(const httplib::Request& req) {
  const std::string& raw = req.target.empty() ? req.path : req.target;
  const std::string prefix = "/v1/servers/";
  size_t pos = raw.rfind(prefix, 0) == 0 ? prefix.size() : 0;
  pos = raw.find_first_of("/?", pos);
  std::string rest = pos == std::string::npos ? "" : raw.substr(pos);
  if (rest.empty() || rest.front() == '?') rest = "/" + rest;
  return rest;
}

std::optional<ApiError> CheckServerModel(Context& ctx, const std::string& name) {
  auto entry = CatalogOf(ctx).Find(name, /*allow_paths=*/false);
  if (!entry.ok()) {
    if (entry.error().kind == ErrorKind::kNotFound) {
      return MakeApiError(404, "model_not_found",
                          "model '" + name + "' is not declared on this server (GET /v1/models)",
                          "model");
    }
    return FromError(entry.error(), "model");
  }
  if (entry->kind != runners::kServerKind) {
    return MakeApiError(400, "not_a_server_model",
                        "model '" + name + "' is a " + entry->kind +
                            " model; /v1/servers/ relays only to managed model servers "
                            "(kind \"server\")",
                        "model");
  }
  return std::nullopt;
}

RelayTarget TargetOf(const Call& call, const std::string& endpoint, int timeout_s) {
  RelayTarget t;
  t.endpoint = endpoint;
  t.method = call.req.method;
  t.target = UpstreamTarget(call.req);
  t.timeout_s = timeout_s;
  for (const auto& [name, value] : call.req.headers) {
    if (!IsUnforwardedHeader(name)) t.headers.emplace(name, value);
  }
  if (call.reader && HasBody(call.req)) {
    t.has_body = true;
    if (call.req.has_header("Content-Length")) t.body_length = ContentLength(call.req);
  }
  return t;
}

// Sends the server's answer: status, headers, then its body as it comes.
void SendAnswer(Call& call, std::shared_ptr<ServerRelay> relay, std::function<void()> release) {
  call.res.status = relay->status();
  std::string content_type = "application/octet-stream";
  std::optional<uint64_t> length;
  for (const auto& [name, value] : relay->headers()) {
    if (strcasecmp(name.c_str(), "Content-Type") == 0) {
      content_type = value;
    } else if (strcasecmp(name.c_str(), "Content-Length") == 0) {
      length = std::strtoull(value.c_str(), nullptr, 10);
    } else if (!IsUnforwardedHeader(name)) {
      call.res.set_header(name, value);
    }
  }
  auto releaser = [relay, release](bool) { release(); };
  if (call.req.method == "HEAD" || call.res.status == 204 || call.res.status == 304) {
    call.res.set_content("", content_type);
    relay.reset();
    return release();
  }
  if (length) {
    call.res.set_content_provider(
        static_cast<size_t>(*length), content_type,
        [relay](size_t, size_t want, httplib::DataSink& sink) {
          char buf[64 * 1024];
          const size_t n = relay->ReadAnswer(buf, std::min(want, sizeof buf));
          return n > 0 && sink.write(buf, n);  // short: the connection is cut, not padded
        },
        releaser);
    return;
  }
  call.res.set_chunked_content_provider(
      content_type,
      [relay](size_t, httplib::DataSink& sink) {
        char buf[64 * 1024];
        const size_t n = relay->ReadAnswer(buf, sizeof buf);
        if (n > 0) return sink.write(buf, n);
        if (!relay->answer_complete()) return false;
        sink.done();
        return true;
      },
      releaser);
}

void Relay(Context& ctx, Call& call) {
  const std::string& name = call.params[0];
  if (auto e = CheckServerModel(ctx, name)) {
    DrainBody(call);
    return SendError(call.res, *e);
  }
  server::ProxyRequest request;
  request.model = name;
  auto& holds = ctx.service.proxies();
  auto hold = holds.Acquire(request, ctx.live.Get()->sync_timeout_ms, ctx.stopping);
  if (!hold.ok()) {
    DrainBody(call);
    const Error& e = hold.error();
    return SendError(call.res, FromError(e, ParamForError(e)));
  }
  // Released once the answer is sent (or could not be): its stream is busy until then.
  auto release = [&holds, id = hold->id] { holds.Release(id); };
  const int timeout_s = static_cast<int>(
      std::max<int64_t>(ctx.options.write_timeout_s, ctx.live.Get()->sync_timeout_ms / 1000));
  auto relay = std::make_shared<ServerRelay>(TargetOf(call, hold->endpoint, timeout_s));
  if (call.reader && HasBody(call.req)) {
    BytePipe& body = relay->RequestBody();
    const bool ok =
        ReadRaw(call, [&body](const char* data, size_t n) { return body.Write(data, n); });
    // A server that answered without reading all of it stops the read: the connection then
    // closes after the answer (call.consumed stays false).
    call.consumed = ok;
    body.CloseWrite(ok);
  }
  if (!relay->WaitAnswer()) {
    const std::string why = relay->error();
    relay.reset();
    release();
    return SendError(call.res,
                     MakeApiError(502, "bad_gateway",
                                  "the server of model '" + name + "' did not answer: " + why));
  }
  SendAnswer(call, std::move(relay), release);
}

}  // namespace

void AddServerProxyRoutes(ApiRouter& router, Context& ctx) {
  for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
    router.Add(method, "/v1/servers/{name}/{path...}", [&ctx](Call& c) { Relay(ctx, c); });
  }
}

}  // namespace steno::api
