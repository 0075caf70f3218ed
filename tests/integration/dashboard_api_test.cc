// The dashboard's server side against a real `steno serve`: the page and its files (embedded,
// public, cacheable), and GET /v1/events, the page's one live stream: hello with the memory
// history, snapshots every second with GPUs, runners, queue, jobs (progress, real-time factor),
// counts and alerts, and with ?job=ID that job's state/progress/segment events in order.
#include <fstream>
#include <map>

#include "api_test_server.h"
#include "support/child_process.h"

namespace steno {
namespace {

using test::ApiTestServer;
using test::JsonOf;

struct SseEvent {
  std::string event;
  nlohmann::json data;
};

// Reads GET `path` as Server-Sent Events until `enough` says so (or `timeout_s` passes).
std::vector<SseEvent> ReadEvents(const ApiTestServer& s, const std::string& path,
                                 const std::function<bool(const std::vector<SseEvent>&)>& enough,
                                 int timeout_s = 60, httplib::Headers headers = {}) {
  auto c = s.Client();
  c.set_read_timeout(timeout_s, 0);
  std::vector<SseEvent> events;
  std::string buf;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  auto r = c.Get(path, headers, [&](const char* data, size_t n) {
    buf.append(data, n);
    size_t end;
    while ((end = buf.find("\n\n")) != std::string::npos) {
      const std::string block = buf.substr(0, end);
      buf.erase(0, end + 2);
      SseEvent e;
      std::string payload;
      size_t pos = 0;
      while (pos < block.size()) {
        size_t nl = block.find('\n', pos);
        if (nl == std::string::npos) nl = block.size();
        const std::string line = block.substr(pos, nl - pos);
        if (line.rfind("event: ", 0) == 0) e.event = line.substr(7);
        if (line.rfind("data: ", 0) == 0) payload += line.substr(6);
        pos = nl + 1;
      }
      if (e.event.empty()) continue;  // a keep-alive comment
      e.data = nlohmann::json::parse(payload, nullptr, false);
      EXPECT_FALSE(e.data.is_discarded()) << "bad data in " << block;
      events.push_back(std::move(e));
    }
    return !enough(events) && std::chrono::steady_clock::now() < deadline;
  });
  return events;
}

std::vector<std::string> Names(const std::vector<SseEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.event);
  return out;
}

TEST(DashboardApiTest, ServesThePageAndItsFilesWithoutAKey) {
  ApiTestServer s({"--api-key", "sk-dashboard-test"});
  auto c = s.Client();
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<html"), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'self'"),
            std::string::npos);
  const std::string etag = page->get_header_value("ETag");
  ASSERT_FALSE(etag.empty());
  auto again = c.Get("/", {{"If-None-Match", etag}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 304);

  // Every file the page names is served with its type.
  for (const std::string name : {"app.js", "style.css"}) {
    EXPECT_NE(page->body.find(name), std::string::npos) << "index.html does not load " << name;
    auto f = c.Get("/dashboard/" + name);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, 200) << name;
    EXPECT_FALSE(f->body.empty()) << name;
    const std::string type = f->get_header_value("Content-Type");
    EXPECT_EQ(type.substr(0, type.find(';')),
              name.ends_with(".js") ? "text/javascript" : "text/css");
  }
  for (const std::string bad :
       {"/dashboard/nope.js", "/dashboard/.hidden", "/dashboard/..%2f..%2fetc%2fpasswd"}) {
    auto r = c.Get(bad);
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 404) << bad;
    const std::string code = JsonOf(r)["error"].value("code", "");
    EXPECT_TRUE(code == "not_found" || code == "route_not_found") << bad << ": " << code;
  }
  // The data is not public.
  auto events = c.Get("/v1/events");
  ASSERT_TRUE(events);
  EXPECT_EQ(events->status, 401);
}

TEST(DashboardApiTest, EventsStartWithHelloAndSnapshotsOfEverything) {
  test::ScopedTempDir dir("steno-dash");
  ApiTestServer s(
      {"--device", "auto", "--simulate-gpus", "1x8GiB", "--data-dir", dir.path + "/data"});
  // The scheduler's first look at the devices comes just after the server starts listening.
  auto c = s.Client();
  ASSERT_TRUE(
      test::WaitUntil([&] { return JsonOf(c.Get("/api/memory_status"))["devices"].size() == 1; },
                      std::chrono::seconds(10)));
  auto events =
      ReadEvents(s, "/v1/events", [](const std::vector<SseEvent>& e) { return e.size() >= 3; });
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(Names(events)[0], "hello");
  EXPECT_EQ(Names(events)[1], "snapshot");
  EXPECT_EQ(Names(events)[2], "snapshot");  // one a second, without asking
  const auto& hello = events[0].data;
  EXPECT_EQ(hello["snapshot_interval_ms"], 1000);
  EXPECT_EQ(hello["history"]["window_s"], 900);
  ASSERT_TRUE(hello["history"]["devices"].contains("cuda:0")) << hello.dump();
  EXPECT_EQ(hello["history"]["devices"]["cuda:0"][0]["total"], int64_t{8} << 30);

  const auto& snap = events[1].data;
  ASSERT_EQ(snap["gpus"].size(), 1u) << snap.dump();
  const auto& g = snap["gpus"][0];
  EXPECT_EQ(g["device"], "cuda:0");
  EXPECT_EQ(g["total"], int64_t{8} << 30);
  EXPECT_EQ(g["steno"], 0);
  EXPECT_EQ(g["present"], true);
  // The stacked bar (reserved / steno / other / available) fits in the card.
  EXPECT_LE(g["reserved"].get<int64_t>() + g["steno"].get<int64_t>() + g["other"].get<int64_t>() +
                g["available"].get<int64_t>(),
            g["total"].get<int64_t>())
      << g.dump();
  EXPECT_GT(g["available"].get<int64_t>(), 0) << g.dump();
  EXPECT_TRUE(snap["runners"].empty());
  EXPECT_TRUE(snap["jobs"].empty());
  EXPECT_EQ(snap["queue"]["queued"], 0);
  EXPECT_EQ(snap["counts"]["completed"], 0);
  EXPECT_TRUE(snap["alerts"].is_array());
}

TEST(DashboardApiTest, EventsForAJobCarryItsSegmentsAndTheSnapshotsShowIt) {
  test::ScopedTempDir dir("steno-dash");
  ApiTestServer s(
      {"--device", "auto", "--simulate-gpus", "1x8GiB", "--data-dir", dir.path + "/data"});
  auto c = s.Client();
  auto posted = c.Post("/v1/jobs", httplib::MultipartFormDataItems{test::FilePart("speech.wav"),
                                                                   test::Field("model", "tiny")});
  ASSERT_TRUE(posted);
  ASSERT_EQ(posted->status, 202) << posted->body;
  const std::string id = JsonOf(posted)["id"];

  bool completed = false;
  auto events = ReadEvents(
      s, "/v1/events?job=" + id,
      [&](const std::vector<SseEvent>& e) {
        // Until the job completed and a snapshot after that shows it completed.
        for (const auto& ev : e) {
          if (ev.event == "state" && ev.data["state"] == "completed") completed = true;
          if (completed && ev.event == "snapshot") {
            for (const auto& j : ev.data["jobs"]) {
              if (j["id"] == id && j["state"] == "completed") return true;
            }
          }
        }
        return false;
      },
      120);
  ASSERT_TRUE(completed) << testing::PrintToString(Names(events));
  EXPECT_EQ(events[0].event, "hello");  // the stream starts as without ?job

  std::vector<std::string> states;
  int segments = 0;
  double last_start = -1;
  nlohmann::json final_job;
  for (const auto& e : events) {
    if (e.event == "state") {
      EXPECT_EQ(e.data["id"], id);
      states.push_back(e.data["state"]);
    } else if (e.event == "segment") {
      EXPECT_EQ(e.data["job_id"], id);
      EXPECT_EQ(states.back(), "processing") << "segments arrive while it runs";
      const double start = e.data["segment"]["start"];
      EXPECT_GE(start, last_start) << "segments in order";
      last_start = start;
      ++segments;
    } else if (e.event == "snapshot") {
      for (const auto& j : e.data["jobs"]) {
        if (j["id"] != id) continue;
        if (j["state"] == "completed") final_job = j;
      }
    }
  }
  EXPECT_GT(segments, 0);
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.back(), "completed");
  ASSERT_FALSE(final_job.is_null());
  EXPECT_EQ(final_job["progress"], 100);
  EXPECT_GT(final_job["audio_seconds"].get<double>(), 1.0) << final_job.dump();
  EXPECT_GT(final_job["rtf"].get<double>(), 0.0) << final_job.dump();
  EXPECT_GT(final_job["processing_s"].get<double>(), 0.0) << final_job.dump();
  // The runner stays loaded (keep-alive) and holds memory on the simulated card.
  const auto& last = events.back().data;
  ASSERT_EQ(last["runners"].size(), 1u) << last.dump();
  EXPECT_EQ(last["runners"][0]["model"], "tiny");
  EXPECT_EQ(last["runners"][0]["device"], "cuda:0");
  EXPECT_GT(last["gpus"][0]["steno"].get<int64_t>(), 0) << last.dump();
  EXPECT_EQ(last["counts"]["completed"], 1);
}

TEST(DashboardApiTest, EventsForAnUnknownJobAre404) {
  ApiTestServer s;
  auto c = s.Client();
  auto r = c.Get("/v1/events?job=01HZZZZZZZZZZZZZZZZZZZZZZZ");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  auto j = JsonOf(r);
  EXPECT_EQ(j["error"]["code"], "job_not_found") << j.dump();
  EXPECT_EQ(j["error"]["param"], "job") << j.dump();
}

}  // namespace
}  // namespace steno
