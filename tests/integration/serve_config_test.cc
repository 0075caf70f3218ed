// `steno serve`'s configuration end to end, with the real binary: SIGHUP re-reads the config file
// and each setting a reload may change shows through the API afterwards (queue limits, reserves,
// timeouts, the alert rules file; keep-alive and a bad file are in shutdown_serve_test.cc), and
// the precedence flags > environment (STENO_*) > config file holds for every source. Each reload
// is waited for by its effect (or by the server's own "config reloaded" line where the effect is a
// refusal), never by a sleep.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include "api_test_server.h"
#include "support/child_process.h"
#include "support/process.h"

namespace steno {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::ApiTestServer;
using test::Field;
using test::FilePart;
using test::JsonOf;

constexpr int64_t kMiB = int64_t{1} << 20;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Rewrites `config` and sends SIGHUP; waits (up to a minute) for the server to log the reload.
void Reload(ApiTestServer& s, const std::string& config, const std::string& text) {
  const auto before = test::ReadFileText(s.log).size();
  WriteFile(config, text);
  s.Signal(SIGHUP);
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        const std::string log = test::ReadFileText(s.log);
        return log.size() > before && log.find("config reloaded", before) != std::string::npos;
      },
      60s))
      << test::ReadFileText(s.log);
}

// `minutes` of speech (speech_60s.wav repeated) submitted as a job: over a minute of work on one
// CPU thread, so it is still running while a test looks. Returns its id ("" after a failure).
std::string SubmitLongJob(ApiTestServer& s, int minutes) {
  const std::string audio = s.root.path + "/long-" + std::to_string(minutes) + ".wav";
  auto made = test::RunProcess({"ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop",
                                std::to_string(minutes - 1), "-i",
                                test::MediaPath("speech_60s.wav"), "-c", "copy", audio});
  EXPECT_EQ(made.exit_code, 0) << made.err;
  auto bytes = test::ReadFileBytes(audio);
  auto c = s.Client();
  auto r = c.Post("/v1/jobs",
                  httplib::MultipartFormDataItems{
                      {"file", std::string(bytes.begin(), bytes.end()), "long.wav", "audio/wav"},
                      Field("model", "tiny"),
                      Field("language", "en")});
  EXPECT_EQ(test::StatusOf(r), 202) << (r ? r->body : "");
  return r && r->status == 202 ? JsonOf(r).value("id", "") : "";
}

std::string StateOf(httplib::Client& c, const std::string& id) {
  auto j = JsonOf(c.Get("/v1/jobs/" + id));
  return j.is_null() ? "" : j.value("state", "");
}

// Queue limits: lowering max-queue refuses the next submission with 503 queue_full; raising
// max-running starts the job that waited.
TEST(ServeConfigTest, SighupAppliesNewQueueLimits) {
  test::ScopedTempDir dir("steno-reload");
  const std::string config = dir.path + "/steno.toml";
  WriteFile(config, "[serve]\nmax-running = 1\nmax-queue = 3\n");
  ApiTestServer s({"--config", config, "--shutdown-grace", "0s"});
  auto c = s.Client();
  const std::string first = SubmitLongJob(s, 10);
  const std::string second = SubmitLongJob(s, 10);
  ASSERT_FALSE(first.empty() || second.empty());
  ASSERT_TRUE(test::WaitUntil([&] { return StateOf(c, first) == "processing"; }, 120s));
  EXPECT_EQ(StateOf(c, second), "pending") << "max-running 1 runs one job at a time";

  // One job running, one waiting: max-queue 3 would take another, 1 takes none.
  Reload(s, config, "[serve]\nmax-running = 1\nmax-queue = 1\n");
  auto full = c.Post(
      "/v1/jobs", httplib::MultipartFormDataItems{FilePart("speech.wav"), Field("model", "tiny")});
  ASSERT_EQ(test::StatusOf(full), 503) << (full ? full->body : "");
  EXPECT_EQ(JsonOf(full)["error"]["code"], "queue_full") << full->body;

  WriteFile(config, "[serve]\nmax-running = 2\nmax-queue = 1\n");
  s.Signal(SIGHUP);
  EXPECT_TRUE(test::WaitUntil([&] { return StateOf(c, second) != "pending"; }, 120s))
      << "the job waiting for max-running did not start after it was raised";
  EXPECT_EQ(StateOf(c, first), "processing");
  for (const auto& id : {first, second}) (void)c.Delete("/v1/jobs/" + id);
}

// A queue at its bound with running jobs only (none waiting) refuses a submission before its
// upload is stored: nothing is written (nor fsynced, nor probed) for a job that cannot be taken.
TEST(ServeConfigTest, QueueFullRefusesBeforeStoringTheUpload) {
  ApiTestServer s({"--max-running", "1", "--max-queue", "1", "--shutdown-grace", "0s"});
  auto c = s.Client();
  const std::string running = SubmitLongJob(s, 10);
  ASSERT_FALSE(running.empty());
  ASSERT_TRUE(test::WaitUntil([&] { return StateOf(c, running) == "processing"; }, 120s));
  // A stored upload, even one dropped afterwards, changes both directories (its temp file is
  // created in blobs/tmp, renamed into blobs/, then removed).
  auto touched = [&] {
    namespace fs = std::filesystem;
    return std::make_pair(fs::last_write_time(s.data + "/blobs"),
                          fs::last_write_time(s.data + "/blobs/tmp"));
  };
  const auto before = touched();
  auto full = c.Post(
      "/v1/jobs", httplib::MultipartFormDataItems{FilePart("speech.wav"), Field("model", "tiny")});
  ASSERT_EQ(test::StatusOf(full), 503) << (full ? full->body : "");
  EXPECT_EQ(JsonOf(full)["error"]["code"], "queue_full") << full->body;
  EXPECT_FALSE(full->get_header_value("Retry-After").empty());
  EXPECT_TRUE(touched() == before) << "the refused upload was written to the blob store";
  (void)c.Delete("/v1/jobs/" + running);
}

// A connection that sent the start of a `POST /v1/jobs` upload (headers announcing a large body,
// the file part begun) and then waits: a submission still sending its audio. -1 on failure.
int StartUpload(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  const std::string part =
      "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
      "Content-Type: audio/wav\r\n\r\nRIFF";
  const std::string request =
      "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n" +
      part;
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 ||
      send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(request.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

// Upload temp files in the data dir's blob store (one per upload being received).
int UploadsBeingReceived(const std::string& data) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(data + "/blobs/tmp", ec)) {
    n += e.path().extension() == ".part";
  }
  return n;
}

// Submissions still sending their upload hold their place in the queue: with --max-queue 2 and
// two uploads under way, a third submission is refused at once (503 queue_full) rather than
// stored, fsynced and probed alongside them (and then accepted past the bound, or refused only
// after all that work). Once the two connections go, their places are free again.
TEST(ServeConfigTest, UploadsUnderWayHoldTheirPlaceInTheQueue) {
  ApiTestServer s({"--max-queue", "2"});
  auto c = s.Client();
  std::vector<int> uploads;
  for (int i = 0; i < 2; ++i) {
    uploads.push_back(StartUpload(s.port));
    ASSERT_GE(uploads.back(), 0);
  }
  ASSERT_TRUE(test::WaitUntil([&] { return UploadsBeingReceived(s.data) == 2; }, 60s))
      << UploadsBeingReceived(s.data) << " uploads under way";
  auto third = c.Post(
      "/v1/jobs", httplib::MultipartFormDataItems{FilePart("speech.wav"), Field("model", "tiny")});
  ASSERT_EQ(test::StatusOf(third), 503) << (third ? third->body : "");
  EXPECT_EQ(JsonOf(third)["error"]["code"], "queue_full") << third->body;
  EXPECT_FALSE(third->get_header_value("Retry-After").empty());

  for (int fd : uploads) close(fd);
  ASSERT_TRUE(test::WaitUntil([&] { return UploadsBeingReceived(s.data) == 0; }, 60s));
  int status = 0;
  std::string body;
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        auto r = c.Post("/v1/jobs", httplib::MultipartFormDataItems{FilePart("speech.wav"),
                                                                    Field("model", "tiny")});
        status = test::StatusOf(r);
        body = r ? r->body : "";
        return status != 503;
      },
      60s))
      << "the places of the uploads that went away were not given back";
  EXPECT_EQ(status, 202) << body;
}

// A server on one simulated 8 GiB card whose config file says `reserve = "512MiB"`.
struct ReserveServer {
  test::ScopedTempDir dir{"steno-reload"};
  std::string config = dir.path + "/steno.toml";
  std::unique_ptr<ApiTestServer> s;
  ReserveServer() {
    WriteFile(config, "[serve]\nreserve = \"512MiB\"\n");
    s = std::make_unique<ApiTestServer>(std::vector<std::string>{
        "--config", config, "--device", "auto", "--simulate-gpus", "1x8GiB"});
  }
  // The reserve the scheduler's ledger plans with (GET /api/memory_status), -1 if unknown.
  int64_t LedgerReserved() {
    auto c = s->Client();
    auto j = JsonOf(c.Get("/api/memory_status"));
    return j.is_null() || j["devices"].empty() ? -1 : j["devices"][0].value("reserved", -1LL);
  }
  // The reserve the device list reports (GET /v1/gpus), -1 if unknown.
  int64_t ListedReserved() {
    auto c = s->Client();
    auto j = JsonOf(c.Get("/v1/gpus"));
    return j.is_null() || j["data"].empty() ? -1 : j["data"][0].value("reserved_bytes", -1LL);
  }
};

// Reserves: the ledger plans with the new per-device reserve.
TEST(ServeConfigTest, SighupAppliesNewReserves) {
  ReserveServer r;
  ASSERT_TRUE(test::WaitUntil([&] { return r.LedgerReserved() == 512 * kMiB; }, 60s));
  WriteFile(r.config, "[serve]\nreserve = \"2GiB\"\n");
  r.s->Signal(SIGHUP);
  EXPECT_TRUE(test::WaitUntil([&] { return r.LedgerReserved() == 2048 * kMiB; }, 60s))
      << r.LedgerReserved();
}

// ... and GET /v1/gpus reports it (the API once kept the reserve it was started with).
TEST(ServeConfigTest, SighupAppliedReservesShowInTheDeviceList) {
  ReserveServer r;
  ASSERT_TRUE(test::WaitUntil([&] { return r.ListedReserved() == 512 * kMiB; }, 60s));
  WriteFile(r.config, "[serve]\nreserve = \"2GiB\"\n");
  r.s->Signal(SIGHUP);
  ASSERT_TRUE(test::WaitUntil([&] { return r.LedgerReserved() == 2048 * kMiB; }, 60s));
  EXPECT_TRUE(test::WaitUntil([&] { return r.ListedReserved() == 2048 * kMiB; }, 60s))
      << r.ListedReserved();
}

// Timeouts: a synchronous request waits at most the reloaded --sync-timeout (504 timeout), here
// behind a job that runs for over a minute (the reload once left it at the start's hour).
TEST(ServeConfigTest, SighupAppliesANewSyncTimeout) {
  test::ScopedTempDir dir("steno-reload");
  const std::string config = dir.path + "/steno.toml";
  WriteFile(config, "[serve]\nmax-running = 1\nsync-timeout = \"1h\"\n");
  ApiTestServer s({"--config", config, "--shutdown-grace", "0s"});
  auto c = s.Client();
  const std::string ahead = SubmitLongJob(s, 10);
  ASSERT_FALSE(ahead.empty());
  ASSERT_TRUE(test::WaitUntil([&] { return StateOf(c, ahead) == "processing"; }, 120s));

  Reload(s, config, "[serve]\nmax-running = 1\nsync-timeout = \"2s\"\n");
  const auto asked = std::chrono::steady_clock::now();
  auto r = c.Post("/v1/audio/transcriptions",
                  httplib::MultipartFormDataItems{FilePart("speech.wav"), Field("model", "tiny")});
  ASSERT_EQ(test::StatusOf(r), 504) << (r ? r->body : "");
  EXPECT_EQ(JsonOf(r)["error"]["code"], "timeout") << r->body;
  // The job ahead runs for over a minute: an hour's timeout would have outwaited this bound.
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 60s);
  EXPECT_EQ(StateOf(c, ahead), "processing");
  (void)c.Delete("/v1/jobs/" + ahead);
}

// The alert rules file: after the reload the new file's rules are evaluated and the old ones are
// gone (GET /v1/alerts), whether the config names another file or the same file changed.
TEST(ServeConfigTest, SighupReloadsTheAlertRulesFile) {
  test::ScopedTempDir dir("steno-reload");
  const std::string config = dir.path + "/steno.toml";
  const std::string first_rules = dir.path + "/first.json";
  const std::string second_rules = dir.path + "/second.json";
  auto rule = [](const std::string& name) {
    return R"([{"name": ")" + name +
           R"(", "kind": "memory_usage_percent", "threshold": 50, "for_ms": 0}])";
  };
  WriteFile(first_rules, rule("first"));
  WriteFile(second_rules, rule("second"));
  WriteFile(config, "[serve]\nalert-rules = \"" + first_rules + "\"\n");
  // Another tenant holds 6 of the simulated card's 8 GiB: every rule here fires at once.
  const std::string data = dir.path + "/data";
  auto tenant = test::RunProcess({test::StenoBin(), "gpus", "simulate-external", "cuda:0", "6GiB",
                                  "--simulate-gpus", "1x8GiB", "--data-dir", data});
  ASSERT_EQ(tenant.exit_code, 0) << tenant.err;
  ApiTestServer s({"--config", config, "--alert-interval", "50ms", "--data-dir", data, "--device",
                   "auto", "--simulate-gpus", "1x8GiB"});
  auto c = s.Client();
  auto firing = [&] {
    std::set<std::string> names;
    auto j = JsonOf(c.Get("/v1/alerts"));
    if (j.is_null()) return names;
    for (const auto& a : j["alerts"]) names.insert(a.value("name", ""));
    return names;
  };
  using Names = std::set<std::string>;
  ASSERT_TRUE(test::WaitUntil([&] { return firing() == Names{"first"}; }, 60s))
      << JsonOf(c.Get("/v1/alerts")).dump();

  WriteFile(config, "[serve]\nalert-rules = \"" + second_rules + "\"\n");
  s.Signal(SIGHUP);
  EXPECT_TRUE(test::WaitUntil([&] { return firing() == Names{"second"}; }, 60s))
      << JsonOf(c.Get("/v1/alerts")).dump();

  WriteFile(second_rules, rule("third"));
  s.Signal(SIGHUP);
  EXPECT_TRUE(test::WaitUntil([&] { return firing() == Names{"third"}; }, 60s))
      << JsonOf(c.Get("/v1/alerts")).dump();
}

// A server started by hand (not ApiTestServer, whose own flags would win over every source):
// its URL from the listening line, its /metrics, then SIGTERM.
struct Started {
  std::string url;
  std::string metrics;
  std::string err;
};

Started StartAndRead(const std::vector<std::string>& flags,
                     const std::vector<std::pair<std::string, std::string>>& env,
                     const test::ScopedTempDir& dir, const std::string& name) {
  std::vector<std::string> argv = {
      test::StenoBin(), "serve", "--port",     "0",
      "--device",       "cpu",   "--data-dir", dir.path + "/data-" + name};
  argv.insert(argv.end(), flags.begin(), flags.end());
  const std::string out = dir.path + "/" + name + ".out", err = dir.path + "/" + name + ".err";
  test::ChildProcess serve(argv, out, err, env);
  Started got;
  const std::string marker = "steno: listening on ";
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        const std::string text = test::ReadFileText(out);
        const auto at = text.find(marker);
        if (at == std::string::npos || text.find('\n', at) == std::string::npos) return false;
        got.url = text.substr(at + marker.size(), text.find('\n', at) - at - marker.size());
        return true;
      },
      120s))
      << test::ReadFileText(err);
  if (!got.url.empty()) {
    httplib::Client c(got.url);
    c.set_read_timeout(60, 0);
    auto m = c.Get("/metrics");
    if (test::StatusOf(m) == 200) got.metrics = m->body;
  }
  serve.Signal(SIGTERM);
  EXPECT_EQ(serve.Wait(120s), std::optional<int>(0)) << test::ReadFileText(err);
  got.err = test::ReadFileText(err);
  return got;
}

std::string MinFreeLine(int64_t bytes) {
  return "\nsteno_disk_min_free_bytes " + std::to_string(bytes) + "\n";
}

// Two settings, each from the file, the environment and a flag: host (the listening line) and
// min-free-disk (GET /metrics). Each level wins over the ones below it and only over those.
TEST(ServeConfigTest, FlagsWinOverEnvironmentWhichWinsOverTheConfigFile) {
  test::ScopedTempDir dir("steno-precedence");
  const std::string config = dir.path + "/steno.toml";
  WriteFile(config, "[serve]\nhost = \"127.0.0.2\"\nmin-free-disk = \"1MiB\"\n");
  const std::vector<std::pair<std::string, std::string>> env = {{"STENO_HOST", "127.0.0.3"},
                                                                {"STENO_MIN_FREE_DISK", "2MiB"}};

  auto file_only = StartAndRead({"--config", config}, {}, dir, "file");
  EXPECT_EQ(file_only.url.rfind("http://127.0.0.2:", 0), 0u) << file_only.url << file_only.err;
  EXPECT_NE(file_only.metrics.find(MinFreeLine(1 * kMiB)), std::string::npos) << file_only.err;

  auto with_env = StartAndRead({"--config", config}, env, dir, "env");
  EXPECT_EQ(with_env.url.rfind("http://127.0.0.3:", 0), 0u) << with_env.url << with_env.err;
  EXPECT_NE(with_env.metrics.find(MinFreeLine(2 * kMiB)), std::string::npos) << with_env.err;

  auto with_flags = StartAndRead(
      {"--config", config, "--host", "127.0.0.4", "--min-free-disk", "3MiB"}, env, dir, "flags");
  EXPECT_EQ(with_flags.url.rfind("http://127.0.0.4:", 0), 0u) << with_flags.url << with_flags.err;
  EXPECT_NE(with_flags.metrics.find(MinFreeLine(3 * kMiB)), std::string::npos) << with_flags.err;

  // Control: with nothing set the defaults show, so the lines above were really read.
  auto defaults = StartAndRead({}, {}, dir, "defaults");
  EXPECT_EQ(defaults.url.rfind("http://127.0.0.1:", 0), 0u) << defaults.url << defaults.err;
  EXPECT_EQ(defaults.metrics.find(MinFreeLine(1 * kMiB)), std::string::npos);
  EXPECT_NE(defaults.metrics.find("\nsteno_disk_min_free_bytes "), std::string::npos)
      << defaults.metrics;
}

}  // namespace
}  // namespace steno
