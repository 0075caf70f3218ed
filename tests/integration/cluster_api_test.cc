// GET /v1/cluster and the dashboard's "nodes" against real `steno serve` processes: two nodes on
// one private PostgreSQL list each other (one "self" each, the URL each listens on, the devices
// each published) and a node that stops gracefully drops out of the list; a killed node is
// removed on request (DELETE /v1/cluster/nodes/{id}), a live one is not; a single node (SQLite)
// lists itself alone; the /v1/events snapshot carries "nodes" only on a node sharing its store;
// a nodes table that cannot be read answers 503 (and "nodes_error" in the snapshot).
#include <signal.h>

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "api_test_server.h"
#include "support/child_process.h"
#include "support/pg_server.h"

namespace steno::test {
namespace {

using nlohmann::json;

constexpr int64_t k8GiB = int64_t{8} << 30;

std::vector<std::string> Flags(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::vector<std::string> kSimulatedGpu = {"--device", "auto", "--simulate-gpus", "1x8GiB"};

json Cluster(const ApiTestServer& s, const httplib::Headers& headers = {}) {
  auto c = s.Client();
  auto r = c.Get("/v1/cluster", headers);
  if (!r || r->status != 200) {
    ADD_FAILURE() << "GET /v1/cluster: " << (r ? std::to_string(r->status) + " " + r->body : "");
    return nullptr;
  }
  return JsonOf(r);
}

std::vector<std::string> Ids(const json& cluster) {
  std::vector<std::string> ids;
  if (!cluster.is_object() || !cluster["nodes"].is_array()) return ids;
  for (const auto& n : cluster["nodes"]) ids.push_back(n.value("id", ""));
  return ids;
}

// Every node has published its description (a node publishes its name alone until its HTTP
// server listens).
bool AllDescribed(const json& cluster) {
  for (const auto& n : cluster["nodes"]) {
    if (n.value("url", "").empty()) return false;
  }
  return true;
}

// GET /v1/cluster until its node ids are `want` (in id order), each described, or `timeout`
// passes; the last answer.
json ClusterListing(const ApiTestServer& s, const std::vector<std::string>& want,
                    std::chrono::milliseconds timeout) {
  json last;
  WaitUntil(
      [&] {
        last = Cluster(s);
        return Ids(last) == want && AllDescribed(last);
      },
      timeout);
  return last;
}

const json* NodeById(const json& cluster, const std::string& id) {
  for (const auto& n : cluster["nodes"]) {
    if (n.value("id", "") == id) return &n;
  }
  return nullptr;
}

bool HasDeviceOfTotal(const json& node, int64_t total) {
  for (const auto& d : node["devices"]) {
    if (d.value("total_bytes", int64_t{-1}) == total) return true;
  }
  return false;
}

// Reads GET /v1/events until a snapshot satisfies `done` (or `timeout_s` passes); the last
// snapshot read.
json SnapshotWhere(const ApiTestServer& s, const std::function<bool(const json&)>& done,
                   int timeout_s = 20) {
  auto c = s.Client();
  c.set_read_timeout(timeout_s, 0);
  json last;
  bool found = false;
  std::string buf;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  c.Get("/v1/events", [&](const char* data, size_t n) {
    buf.append(data, n);
    for (size_t end; !found && (end = buf.find("\n\n")) != std::string::npos;) {
      const std::string block = buf.substr(0, end);
      buf.erase(0, end + 2);
      if (block.find("event: snapshot\n") == std::string::npos) continue;
      const size_t at = block.find("data: ");
      if (at == std::string::npos) continue;
      last = json::parse(block.substr(at + 6), nullptr, false);
      EXPECT_FALSE(last.is_discarded()) << block;
      found = !last.is_discarded() && done(last);
    }
    return !found && std::chrono::steady_clock::now() < deadline;
  });
  EXPECT_TRUE(found) << "no such snapshot; the last: " << last.dump().substr(0, 2000);
  return last;
}

// The database name of a postgres:// URL (its path).
std::string DbName(const std::string& url) {
  return url.substr(url.rfind('/') + 1);
}

TEST(ClusterApiTest, TwoNodesListEachOtherAndANodeThatLeavesDropsOut) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  ApiTestServer a(NodeFlags(url, "node-a", kSimulatedGpu));
  auto b = std::make_unique<ApiTestServer>(NodeFlags(url, "node-b"));
  ASSERT_GT(a.port, 0);
  ASSERT_GT(b->port, 0);

  const std::vector<std::string> both = {"node-a", "node-b"};
  for (const ApiTestServer* s : {&a, b.get()}) {
    const json cluster = ClusterListing(*s, both, std::chrono::seconds(60));
    ASSERT_EQ(Ids(cluster), both) << cluster.dump();
    const std::string self_id = s == &a ? "node-a" : "node-b";
    EXPECT_EQ(cluster["store"], "postgres");
    EXPECT_EQ(cluster["node"], self_id);
    int selves = 0;
    for (const auto& n : cluster["nodes"]) {
      selves += n["self"].get<bool>() ? 1 : 0;
      EXPECT_EQ(n["self"], n["id"] == self_id) << n.dump();
      EXPECT_EQ(n["live"], true) << n.dump();
      EXPECT_GE(n["age_ms"].get<int64_t>(), 0) << n.dump();
      EXPECT_LT(n["age_ms"].get<int64_t>(), 60'000) << n.dump();  // within the lease: live
      EXPECT_GT(n["heartbeat_ms"].get<int64_t>(), 0) << n.dump();
      EXPECT_TRUE(n["devices"].is_array()) << n.dump();
      EXPECT_TRUE(n["runners"].is_array()) << n.dump();
      const auto& ledger = n["ledger"];
      EXPECT_TRUE(ledger["devices"].is_array()) << n.dump();
      EXPECT_EQ(ledger["running"], 0) << n.dump();
      EXPECT_EQ(ledger["queued"], 0) << n.dump();
      EXPECT_EQ(ledger["admitting"], true) << n.dump();
    }
    EXPECT_EQ(selves, 1) << cluster.dump();
    // Each node published the URL it listens on, and its own devices.
    const json* na = NodeById(cluster, "node-a");
    const json* nb = NodeById(cluster, "node-b");
    ASSERT_TRUE(na && nb);
    EXPECT_EQ((*na)["url"], a.Url());
    EXPECT_EQ((*nb)["url"], b->Url());
    EXPECT_TRUE(HasDeviceOfTotal(*na, k8GiB)) << na->dump();
    EXPECT_FALSE(HasDeviceOfTotal(*nb, k8GiB)) << nb->dump();
    for (const auto& d : (*na)["devices"]) {
      // The same objects as GET /v1/gpus.
      for (const char* key :
           {"device", "index", "name", "simulated", "total_bytes", "free_bytes"}) {
        EXPECT_TRUE(d.contains(key)) << key << " missing in " << d.dump();
      }
    }
  }
  // The device objects are node-a's GET /v1/gpus (its memory figures move; the rest does not).
  auto ca = a.Client();
  const json gpus = JsonOf(ca.Get("/v1/gpus"));
  const json now = Cluster(a);
  const json* na = NodeById(now, "node-a");
  ASSERT_TRUE(na);
  ASSERT_EQ(gpus["data"].size(), (*na)["devices"].size()) << gpus.dump();
  for (size_t i = 0; i < gpus["data"].size(); ++i) {
    for (const char* key : {"device", "index", "uuid", "name", "simulated", "total_bytes"}) {
      EXPECT_EQ(gpus["data"][i][key], (*na)["devices"][i][key]) << key;
    }
  }

  // node-b leaves gracefully: it removes itself, and node-a lists itself alone.
  EXPECT_EQ(b->Stop(), 0);
  b.reset();
  const json after = ClusterListing(a, {"node-a"}, std::chrono::seconds(60));
  ASSERT_EQ(Ids(after), std::vector<std::string>{"node-a"}) << after.dump();
  EXPECT_EQ(after["nodes"][0]["self"], true);
}

// A killed node stays listed, not live; DELETE /v1/cluster/nodes/{id} removes it at once, and
// refuses a node that still publishes, this node, and a node that is not there.
TEST(ClusterApiTest, ASilentNodeIsRemovedOnRequestButNotALiveOne) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  // A short lease: node-a counts a node silent for 6 s (3 publish periods) as not live.
  ApiTestServer a(NodeFlags(url, "node-a", {"--lease", "3s"}));
  auto b = std::make_unique<ApiTestServer>(NodeFlags(url, "node-b"));
  ASSERT_GT(a.port, 0);
  ASSERT_GT(b->port, 0);
  const std::vector<std::string> both = {"node-a", "node-b"};
  ASSERT_EQ(Ids(ClusterListing(a, both, std::chrono::seconds(60))), both);
  auto ca = a.Client();
  auto Delete = [&](const std::string& id, int status, const std::string& code) {
    auto r = ca.Delete("/v1/cluster/nodes/" + id);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << id << ": " << r->body;
    const json body = JsonOf(r);
    if (code.empty()) {
      EXPECT_EQ(body["id"], id) << r->body;
      EXPECT_EQ(body["deleted"], true) << r->body;
    } else {
      EXPECT_EQ(body["error"]["code"], code) << r->body;
    }
  };
  Delete("node-b", 409, "node_live");
  Delete("node-a", 409, "node_is_self");
  Delete("node-x", 404, "node_not_found");
  EXPECT_EQ(Ids(Cluster(a)), both) << "a refused removal changed the list";

  b->Signal(SIGKILL);
  b->Stop();
  b.reset();
  ASSERT_TRUE(WaitUntil(
      [&] {
        const json cluster = Cluster(a);
        const json* nb = NodeById(cluster, "node-b");
        return nb && (*nb)["live"] == false;
      },
      std::chrono::seconds(20)))
      << Cluster(a).dump();
  Delete("node-b", 200, "");
  EXPECT_EQ(Ids(Cluster(a)), std::vector<std::string>{"node-a"});
  Delete("node-b", 404, "node_not_found");
}

TEST(ClusterApiTest, ASingleNodeListsItselfAloneAndNeedsTheKey) {
  ApiTestServer s(Flags({"--api-key", "sk-cluster-test"}, kSimulatedGpu));
  ASSERT_GT(s.port, 0);
  auto c = s.Client();
  auto refused = c.Get("/v1/cluster");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_EQ(JsonOf(refused)["error"]["code"], "missing_api_key");

  const httplib::Headers key = {{"Authorization", "Bearer sk-cluster-test"}};
  const json cluster = Cluster(s, key);
  ASSERT_TRUE(cluster.is_object());
  EXPECT_EQ(cluster["store"], "sqlite");
  ASSERT_EQ(cluster["nodes"].size(), 1u) << cluster.dump();
  const auto& n = cluster["nodes"][0];
  EXPECT_FALSE(cluster["node"].get<std::string>().empty());
  EXPECT_EQ(n["id"], cluster["node"]);
  EXPECT_EQ(n["self"], true);
  EXPECT_EQ(n["live"], true);
  EXPECT_EQ(n["age_ms"], 0);
  EXPECT_EQ(n["url"], s.Url());
  EXPECT_TRUE(HasDeviceOfTotal(n, k8GiB)) << n.dump();
  EXPECT_TRUE(n["runners"].is_array());
  // There is no other node to remove.
  auto removal = c.Delete("/v1/cluster/nodes/other", key);
  ASSERT_TRUE(removal);
  EXPECT_EQ(removal->status, 400) << removal->body;
  EXPECT_EQ(JsonOf(removal)["error"]["code"], "not_shared");
  EXPECT_EQ(n["ledger"]["running"], 0);
  EXPECT_EQ(n["ledger"]["queued"], 0);
  EXPECT_EQ(n["ledger"]["admitting"], true);
  // The ledger is GET /api/memory_status's, once the scheduler has seen the GPU.
  ASSERT_TRUE(WaitUntil(
      [&] {
        const json ledger = Cluster(s, key)["nodes"][0]["ledger"];
        return ledger["devices"].size() == 1 && ledger["devices"][0]["total"] == k8GiB;
      },
      std::chrono::seconds(10)))
      << Cluster(s, key).dump();
}

TEST(ClusterApiTest, DashboardSnapshotHasNodesOnlyOnASharedNode) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  ApiTestServer shared(NodeFlags(url, "node-a", kSimulatedGpu));
  ApiTestServer single(kSimulatedGpu);
  ASSERT_GT(shared.port, 0);
  ASSERT_GT(single.port, 0);

  const json snap = SnapshotWhere(shared, [](const json& s) {
    return s.contains("nodes") && s["nodes"].is_array() && !s["nodes"].empty() && AllDescribed(s);
  });
  ASSERT_TRUE(snap.contains("nodes")) << snap.dump();
  ASSERT_EQ(snap["nodes"].size(), 1u) << snap.dump();
  const auto& n = snap["nodes"][0];
  EXPECT_EQ(n["id"], "node-a");
  EXPECT_EQ(n["self"], true);
  EXPECT_EQ(n["live"], true);
  EXPECT_EQ(n["url"], shared.Url());
  EXPECT_TRUE(HasDeviceOfTotal(n, k8GiB)) << n.dump();
  EXPECT_FALSE(snap.contains("nodes_error"));
  // The same fields as GET /v1/cluster.
  const json cluster = Cluster(shared);
  ASSERT_EQ(cluster["nodes"].size(), 1u);
  for (const auto& [key, value] : cluster["nodes"][0].items()) {
    EXPECT_TRUE(n.contains(key)) << key << " missing in the snapshot's node";
  }

  const json plain = SnapshotWhere(single, [](const json&) { return true; });
  EXPECT_TRUE(plain.contains("gpus")) << plain.dump();
  EXPECT_FALSE(plain.contains("nodes")) << plain.dump();
}

TEST(ClusterApiTest, ANodesTableThatCannotBeReadIs503) {
  const std::string url = FreshPgDatabase();
  ASSERT_FALSE(url.empty());
  ApiTestServer s(NodeFlags(url, "node-a"));
  ASSERT_GT(s.port, 0);
  auto c = s.Client();
  ASSERT_EQ(Ids(ClusterListing(s, {"node-a"}, std::chrono::seconds(60))),
            std::vector<std::string>{"node-a"});

  PgServer& pg = SharedPgServer();
  ASSERT_EQ(pg.Exec(DbName(url), "ALTER TABLE nodes RENAME TO nodes_away"), "");
  auto r = c.Get("/v1/cluster");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  const json error = JsonOf(r)["error"];
  EXPECT_EQ(error["type"], "server_error") << r->body;
  EXPECT_FALSE(error.value("code", "").empty()) << r->body;
  EXPECT_EQ(r->body.find(PgServer::kPassword), std::string::npos) << r->body;
  const json snap = SnapshotWhere(s, [](const json& s) { return s.contains("nodes_error"); });
  EXPECT_EQ(snap["nodes"], json::array()) << snap.dump();

  ASSERT_EQ(pg.Exec(DbName(url), "ALTER TABLE nodes_away RENAME TO nodes"), "");
  EXPECT_EQ(Ids(ClusterListing(s, {"node-a"}, std::chrono::seconds(60))),
            std::vector<std::string>{"node-a"});
}

}  // namespace
}  // namespace steno::test
