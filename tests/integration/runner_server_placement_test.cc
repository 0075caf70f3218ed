// Server models under the memory manager through a real `steno serve --simulate-gpus` and its
// HTTP API, with real processes: tests/helpers/fake_model_server declared in a --models-config
// file charges its memory on the simulated card steno starts it on (the server and a worker it
// forks, half each). A sampler polls GET /v1/runners, /api/memory_status and /v1/gpus all along.
//   - Two models declared at 5 GiB on one simulated 8 GiB card are never loaded together: the
//     second one's job waits while the first runs (and runs once it unloads), or evicts the
//     idle first and runs.
//   - `devices` is honoured on three cards: each model's runners start only on its allowed
//     devices, and a card no model may use stays empty in the ledger and on the card.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "api_test_server.h"
#include "support/test_env.h"

namespace steno::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int64_t kGiB = int64_t{1} << 30;

struct Declared {
  std::string name{};
  std::string vram{};     // "" for a CPU model
  std::string worker{};   // --fork-worker SIZE ("": no worker, no charge)
  std::string devices{};  // TOML array, "" for any
  std::string hold{};     // --hold-file PATH ("": answers at once)
  std::string keep_alive{};
};

std::string WriteConfig(const std::string& dir, const std::vector<Declared>& models) {
  const std::string path = dir + "/models.toml";
  std::ofstream out(path);
  for (const auto& m : models) {
    out << "[[models]]\nname = \"" << m.name << "\"\nkind = \"server\"\n"
        << "protocol = \"openai-transcription\"\nready_timeout = \"60s\"\n"
        << "command = [\"" << HelperBin("fake_model_server")
        << "\", \"--port\", \"{port}\", \"--host\", \"{host}\"";
    if (!m.worker.empty()) out << ", \"--fork-worker\", \"" << m.worker << "\"";
    if (!m.hold.empty()) out << ", \"--hold-file\", \"" << m.hold << "\"";
    out << "]\n";
    if (!m.vram.empty()) out << "vram = \"" << m.vram << "\"\n";
    out << "ram = \"64MiB\"\n";
    if (!m.devices.empty()) out << "devices = " << m.devices << "\n";
    if (!m.keep_alive.empty()) out << "keep_alive = \"" << m.keep_alive << "\"\n";
  }
  return path;
}

std::string Submit(httplib::Client& c, const std::string& model) {
  auto r = c.Post("/v1/jobs",
                  httplib::MultipartFormDataItems{FilePart("speech.wav"), Field("model", model)});
  EXPECT_EQ(StatusOf(r), 202) << (r ? r->body : "");
  return r ? JsonOf(r).value("id", "") : "";
}

std::string StateOf(httplib::Client& c, const std::string& id) {
  return JsonOf(c.Get("/v1/jobs/" + id)).value("state", "");
}

// Polls until `done` holds (at most `limit`); false if it never did.
template <typename Fn>
bool WaitUntil(Fn done, std::chrono::seconds limit = 120s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// Samples the API on a thread of its own until destroyed: each model's runners and devices, the
// ledger's and the cards' largest figures per device.
class Sampler {
 public:
  explicit Sampler(const ApiTestServer& s) : thread_([this, port = s.port] { Run(port); }) {}
  ~Sampler() {
    stop_ = true;
    thread_.join();
  }

  struct Seen {
    int samples = 0;
    int most_loaded = 0;                                  // server runners listed at once
    std::vector<std::set<std::string>> loaded;            // models listed, at each change
    std::map<std::string, std::set<std::string>> placed;  // model → devices of its runners
    std::map<std::string, int64_t> most_allocated;        // device → ledger's largest "allocated"
    std::map<std::string, int64_t> most_used;             // device → the card's largest use
  };
  Seen seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  // Waits until `n` more samples were taken (at most 120 s).
  void WaitSamples(int n) {
    const int until = seen().samples + n;
    EXPECT_TRUE(WaitUntil([&] { return seen().samples >= until; }));
  }

 private:
  void Run(int port) {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    while (!stop_) {
      auto runners = c.Get("/v1/runners");
      auto memory = c.Get("/api/memory_status");
      auto gpus = c.Get("/v1/gpus");
      if (runners && memory && gpus && runners->status == 200) Record(*runners, *memory, *gpus);
      std::this_thread::sleep_for(5ms);
    }
  }

  void Record(const httplib::Response& runners, const httplib::Response& memory,
              const httplib::Response& gpus) {
    const json r = json::parse(runners.body, nullptr, false);
    const json m = json::parse(memory.body, nullptr, false);
    const json g = json::parse(gpus.body, nullptr, false);
    if (r.is_discarded() || m.is_discarded() || g.is_discarded()) return;
    std::lock_guard<std::mutex> lock(mu_);
    std::set<std::string> loaded;
    for (const auto& runner : r["data"]) {
      if (runner["kind"] != "server") continue;
      loaded.insert(runner["model"].get<std::string>());
      seen_.placed[runner["model"]].insert(runner["device"].get<std::string>());
    }
    seen_.most_loaded = std::max(seen_.most_loaded, static_cast<int>(loaded.size()));
    if (seen_.loaded.empty() || seen_.loaded.back() != loaded) seen_.loaded.push_back(loaded);
    for (const auto& d : m["devices"]) {
      int64_t& most = seen_.most_allocated[d["device"]];
      most = std::max(most, d["allocated"].get<int64_t>());
    }
    for (const auto& d : g["data"]) {
      int64_t& most = seen_.most_used[d["device"]];
      most = std::max(most, d["used_bytes"].get<int64_t>());
    }
    ++seen_.samples;
  }

  std::mutex mu_;
  Seen seen_;
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts once everything above exists
};

TEST(ServerModelsOnSimulatedCards, TwoModelsOf5GiBOnAn8GiBCardAreNeverLoadedTogether) {
  ScopedTempDir dir{"steno-server-8gib"};
  const std::string release_a = dir.path + "/release-a";
  // Each server holds 2.5 GiB and forks a worker holding 2.5 GiB more: 5 GiB, as declared.
  // a unloads as soon as it is idle; b stays loaded (the default keep-alive) until evicted.
  const std::string config = WriteConfig(
      dir.path,
      {{.name = "a", .vram = "5GiB", .worker = "2560MiB", .hold = release_a, .keep_alive = "0"},
       {.name = "b", .vram = "5GiB", .worker = "2560MiB"}});
  ApiTestServer s({"--device", "auto", "--simulate-gpus", "1x8GiB", "--models-config", config});
  auto c = s.Client();
  Sampler sampler(s);

  // Round 1: b's job waits while a's runs (held by its server), then runs once a unloads.
  const std::string a1 = Submit(c, "a");
  ASSERT_TRUE(WaitUntil([&] { return StateOf(c, a1) == "processing"; })) << StateOf(c, a1);
  const std::string b1 = Submit(c, "b");
  ASSERT_TRUE(WaitUntil([&] {  // the scheduler has b's job queued ...
    return JsonOf(c.Get("/v1/cluster"))["nodes"][0]["ledger"].value("queued", -1) == 1;
  })) << JsonOf(c.Get("/v1/cluster")).dump();
  sampler.WaitSamples(20);
  EXPECT_EQ(StateOf(c, b1), "pending");  // ... and it waits
  EXPECT_EQ(sampler.seen().placed.count("b"), 0u) << "b started while a ran";
  std::ofstream(release_a) << "go";
  ASSERT_TRUE(WaitUntil([&] { return StateOf(c, b1) == "completed"; })) << StateOf(c, b1);
  EXPECT_EQ(StateOf(c, a1), "completed");

  // Round 2: b is idle and loaded; a's job waits until the scheduler evicts b (once b has been
  // loaded for its minimum residency, 60 s), then runs.
  const std::string a2 = Submit(c, "a");
  ASSERT_TRUE(WaitUntil([&] { return StateOf(c, a2) == "completed"; }, 300s)) << StateOf(c, a2);
  EXPECT_TRUE(WaitUntil([&] { return JsonOf(c.Get("/v1/runners"))["data"].empty(); }))
      << "a did not unload once idle (keep_alive 0)";

  sampler.WaitSamples(5);
  const Sampler::Seen seen = sampler.seen();
  EXPECT_EQ(seen.most_loaded, 1) << "a and b were listed together";
  std::vector<std::set<std::string>> order;  // the runners listed, one model at a time
  for (const auto& set : seen.loaded) {
    if (!set.empty()) order.push_back(set);
  }
  const std::vector<std::set<std::string>> expected = {{"a"}, {"b"}, {"a"}};
  EXPECT_EQ(order, expected) << "a, then b once a unloaded, then a once b was evicted";
  EXPECT_EQ(seen.placed.at("a"), std::set<std::string>{"cuda:0"});
  EXPECT_EQ(seen.placed.at("b"), std::set<std::string>{"cuda:0"});
  EXPECT_LE(seen.most_allocated.at("cuda:0"), 8 * kGiB);
  EXPECT_GE(seen.most_used.at("cuda:0"), 5 * kGiB) << "the servers charged the card";
  EXPECT_LT(seen.most_used.at("cuda:0"), 10 * kGiB) << "both held their memory at once";
}

TEST(ServerModelsOnSimulatedCards, DevicesIsHonouredOnThreeCards) {
  ScopedTempDir dir{"steno-server-3cards"};
  const std::string config = WriteConfig(
      dir.path,
      {{.name = "only2", .vram = "1GiB", .worker = "512MiB", .devices = R"(["cuda:2"])"},
       {.name = "not0", .vram = "1GiB", .worker = "512MiB", .devices = R"(["cuda:1", "cuda:2"])"},
       {.name = "cpuonly", .devices = R"(["cpu"])"}});
  ApiTestServer s({"--device", "auto", "--simulate-gpus", "3x8GiB", "--models-config", config});
  auto c = s.Client();
  Sampler sampler(s);
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    for (const char* model : {"only2", "not0", "cpuonly"}) ids.push_back(Submit(c, model));
  }
  for (const auto& id : ids) {
    ASSERT_TRUE(WaitUntil([&] { return StateOf(c, id) == "completed"; }))
        << id << ": " << JsonOf(c.Get("/v1/jobs/" + id)).dump();
  }
  sampler.WaitSamples(5);
  const Sampler::Seen seen = sampler.seen();
  EXPECT_EQ(seen.placed.at("only2"), std::set<std::string>{"cuda:2"});
  for (const auto& device : seen.placed.at("not0")) {
    EXPECT_TRUE(device == "cuda:1" || device == "cuda:2") << "not0 ran on " << device;
  }
  EXPECT_EQ(seen.placed.at("cpuonly"), std::set<std::string>{"cpu"});
  EXPECT_EQ(seen.most_allocated.at("cuda:0"), 0) << "no model may use cuda:0";
  EXPECT_EQ(seen.most_used.at("cuda:0"), 0) << "a server charged cuda:0";
  EXPECT_GE(seen.most_used.at("cuda:2"), kGiB) << "only2's server and worker charge cuda:2";
  // The runners are still loaded (keep-alive): the ledger charges each allowed card.
  const json memory = JsonOf(c.Get("/api/memory_status"));
  for (const auto& d : memory["devices"]) {
    if (d["device"] == "cuda:0") {
      EXPECT_EQ(d["allocated"], 0) << memory.dump();
    }
    if (d["device"] == "cuda:2") {
      EXPECT_GE(d["allocated"].get<int64_t>(), kGiB) << memory.dump();
    }
  }
}

}  // namespace
}  // namespace steno::test
