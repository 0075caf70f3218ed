// GET /v1/cluster: the nodes that share this server's job queue, as each last published itself.
//
//   {"store": "postgres" | "sqlite", "node": "<this node>",
//    "nodes": [{"id", "url", "self", "live", "age_ms", "heartbeat_ms",
//               "devices": [<as GET /v1/gpus>], "runners": [<as GET /v1/runners>],
//               "ledger": {"devices": [<as /api/memory_status>], "cpu", "running", "queued",
//                          "admitting"}}, ...]}
//
// On a shared (PostgreSQL) store the nodes come from its nodes table, which every node rewrites
// every publish period (ClusterMember::SetNodeDescriber, set by the HTTP server with DescribeNode);
// age_ms is on the store's clock, and a node that stopped publishing stays listed, live false,
// for an hour.
// On the single-node SQLite store the list is this node alone, described now. A store that
// cannot be read answers 503.
//
// DELETE /v1/cluster/nodes/{id}: removes a node that stopped publishing (live false) now rather
// than after the hour: 200 {"id", "object": "cluster.node", "deleted": true}; 404 node_not_found;
// 409 node_live (still publishing) or node_is_self; 400 not_shared on the SQLite store.
#include "api/routes.h"

namespace steno::api {

store::NodeInfo DescribeNode(server::JobService& service, const HttpOptions& options,
                             const std::string& url) {
  const auto snap = service.runners().Snapshot();
  const int64_t now = UnixMillis();
  ojson devices = ojson::array();
  if (auto samples = service.runners().Devices(); samples.ok()) {
    for (const auto& s : *samples) devices.push_back(DeviceJson(s, options));
  }
  ojson runners = ojson::array();
  for (const auto& r : snap.runners) runners.push_back(RunnerJson(r, snap, now));
  ojson ledgers = ojson::array();
  for (const auto& d : snap.devices) {
    if (!d.cpu) ledgers.push_back(LedgerJson(d));
  }
  const ojson ledger = {{"devices", std::move(ledgers)},
                        {"cpu", CpuJson(snap)},
                        {"running", snap.running},
                        {"queued", snap.queued},
                        {"admitting", snap.admitting}};
  store::NodeInfo info;
  info.id = service.node();
  info.url = url;
  info.heartbeat_ms = now;
  info.devices_json = devices.dump();
  info.runners_json = runners.dump();
  info.ledger_json = ledger.dump();
  return info;
}

namespace {

// A published document, or `fallback` when it is not valid JSON of the expected kind (a node of
// another version, a row written by hand).
ojson ParsedOr(const std::string& text, ojson fallback) {
  auto j = ojson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || j.type() != fallback.type()) return fallback;
  return j;
}

ojson NodeJson(const store::NodeInfo& info, bool self, bool live, int64_t age_ms) {
  return {{"id", info.id},
          {"url", info.url},
          {"self", self},
          {"live", live},
          {"age_ms", age_ms},
          {"heartbeat_ms", info.heartbeat_ms},
          {"devices", ParsedOr(info.devices_json, ojson::array())},
          {"runners", ParsedOr(info.runners_json, ojson::array())},
          {"ledger", ParsedOr(info.ledger_json, ojson::object())}};
}

void Cluster(Context& ctx, Call& call) {
  auto nodes = ClusterNodesJson(ctx);
  if (!nodes.ok()) {
    ApiError e = FromError(nodes.error());
    // The node list is a view of a store this server could not read: the cluster is unavailable
    // for now, whatever the store's failure was.
    if (e.status >= 500) e.status = 503;
    e.message = "cannot read the cluster's nodes: " + e.message;
    return SendError(call.res, e);
  }
  SendJson(call.res, 200,
           {{"store", ctx.service.cluster() ? "postgres" : "sqlite"},
            {"node", ctx.service.node()},
            {"nodes", std::move(*nodes)}});
}

void ForgetNode(Context& ctx, Call& call) {
  const std::string& id = call.params[0];
  server::ClusterMember* cluster = ctx.service.cluster();
  if (!cluster) {
    return SendError(call.res,
                     FromError(Error(ErrorKind::kBadInput, "not_shared",
                                     "this server does not share its store with other nodes "
                                     "(see serve --store)")));
  }
  if (auto st = cluster->ForgetNode(id); !st) return SendError(call.res, FromError(st.error()));
  SendJson(call.res, 200, {{"id", id}, {"object", "cluster.node"}, {"deleted", true}});
}

}  // namespace

Result<ojson> ClusterNodesJson(Context& ctx) {
  ojson out = ojson::array();
  server::ClusterMember* cluster = ctx.service.cluster();
  if (!cluster) {
    out.push_back(NodeJson(DescribeNode(ctx.service, *ctx.live.Get(), ctx.url), /*self=*/true,
                           /*live=*/true, /*age_ms=*/0));
    return out;
  }
  auto nodes = cluster->Nodes();
  if (!nodes.ok()) return nodes.error();
  for (const auto& n : *nodes) out.push_back(NodeJson(n.info, n.self, n.live, n.age_ms));
  return out;
}

void AddClusterRoutes(ApiRouter& router, Context& ctx) {
  router.Add("GET", "/v1/cluster", [&ctx](Call& c) { Cluster(ctx, c); });
  router.Add("DELETE", "/v1/cluster/nodes/{id}", [&ctx](Call& c) { ForgetNode(ctx, c); });
}

}  // namespace steno::api
