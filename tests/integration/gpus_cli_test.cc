// `steno gpus` as users and scripts run it: a real binary, simulated GPUs whose state other
// processes change (simulate-external, a tenant process that is then killed), and bad values.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "gpu/nvml_api.h"
#include "gpu/simulated_devices.h"
#include "integration/api_test_server.h"
#include "support/child_process.h"
#include "support/process.h"
#include "support/test_env.h"

namespace steno::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
constexpr int64_t kGiB64 = int64_t{1} << 30;

ProcessResult Steno(std::vector<std::string> args, ProcessOptions options = {}) {
  args.insert(args.begin(), StenoBin());
  options.timeout_s = 60;
  return RunProcess(args, options);
}

json Devices(const std::string& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"gpus", "--json", "--data-dir", dir};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = Steno(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j.is_discarded() ? json() : j["devices"];
}

// A helper process started without waiting for it; killed (and reaped) when the test ends.
struct Tenant {
  pid_t pid = -1;
  std::string line;  // what it printed first
  ~Tenant() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

void StartTenant(Tenant& t, const std::string& dir, int device, const std::string& size) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  t.pid = fork();
  ASSERT_GE(t.pid, 0);
  if (t.pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    std::string bin = HelperBin("gpu_sim_tenant");
    std::string dev = std::to_string(device);
    execl(bin.c_str(), bin.c_str(), dir.c_str(), dev.c_str(), size.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') t.line += c;
  close(out[0]);
  ASSERT_EQ(t.line.rfind("holding ", 0), 0u) << "tenant said: '" << t.line << "'";
}

TEST(GpusCliTest, JsonListsTwoSimulatedDevicesOf24GiB) {
  ScopedTempDir dir;
  json devices = Devices(dir.path, {"--simulate-gpus", "2x24GiB"});
  ASSERT_EQ(devices.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const auto& d = devices[static_cast<size_t>(i)];
    EXPECT_EQ(d["device"], "cuda:" + std::to_string(i));
    EXPECT_EQ(d["total_bytes"].get<int64_t>(), 25769803776LL);
    EXPECT_EQ(d["free_bytes"].get<int64_t>(), 25769803776LL);
    EXPECT_EQ(d["used_bytes"].get<int64_t>(), 0);
    EXPECT_TRUE(d["simulated"].get<bool>());
  }
  EXPECT_NE(devices[0]["uuid"], devices[1]["uuid"]);
}

TEST(GpusCliTest, EnvironmentSelectsSimulationToo) {
  ScopedTempDir dir;
  ProcessOptions env;
  env.env = {{"STENO_SIMULATE_GPUS", "1x12GiB,1x16GiB"}, {"STENO_DATA_DIR", dir.path}};
  auto r = Steno({"gpus", "--json"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["backend"], "simulated");
  ASSERT_EQ(j["devices"].size(), 2u);
  EXPECT_EQ(j["devices"][1]["total_bytes"].get<int64_t>(), 16 * kGiB64);

  env.env.push_back({"STENO_DEVICE", "cuda:1"});  // the flag still wins over the environment
  r = Steno({"gpus", "--json", "--device", "cuda:0"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = json::parse(r.out);
  ASSERT_EQ(j["devices"].size(), 1u);
  EXPECT_EQ(j["devices"][0]["total_bytes"].get<int64_t>(), 12 * kGiB64);
}

TEST(GpusCliTest, ExternalTenantSetByOneProcessIsSeenByOthers) {
  ScopedTempDir dir;
  auto r = Steno({"gpus", "simulate-external", "cuda:0", "6GiB", "--simulate-gpus", "2x24GiB",
                  "--data-dir", dir.path});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // Another steno process...
  json devices = Devices(dir.path, {"--simulate-gpus", "2x24GiB"});
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0]["used_bytes"].get<int64_t>(), 6 * kGiB64);
  EXPECT_EQ(devices[0]["external_bytes"].get<int64_t>(), 6 * kGiB64);
  EXPECT_EQ(devices[0]["ours_bytes"].get<int64_t>(), 0);
  EXPECT_EQ(devices[0]["free_bytes"].get<int64_t>(), 18 * kGiB64);
  EXPECT_EQ(devices[1]["used_bytes"].get<int64_t>(), 0);

  // ...and this one, as a running server would, both see it; and charges are refused past it.
  auto sim = gpu::SimulatedDevices::Open(dir.path, "2x24GiB");
  ASSERT_TRUE(sim.ok());
  EXPECT_EQ((*sim)->Sample()->at(0).used_bytes, 6 * kGiB64);
  EXPECT_EQ((*sim)->Charge(0, 19 * kGiB64).error().kind, ErrorKind::kOutOfMemory);

  // Without a spec the command joins the simulation the data dir already has.
  r = Steno({"gpus", "simulate-external", "cuda:0", "clear", "--data-dir", dir.path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ((*sim)->Sample()->at(0).used_bytes, 0);
  ASSERT_TRUE((*sim)->Charge(0, 19 * kGiB64).ok());

  r = Steno({"gpus", "simulate-external", "cuda:1", "3GiB", "--data-dir", dir.path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Steno({"gpus", "simulate-external", "clear", "--data-dir", dir.path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ((*sim)->Sample()->at(1).used_bytes, 0);

  // More than is free: refused like an allocation on a full card.
  r = Steno({"gpus", "simulate-external", "cuda:0", "6GiB", "--data-dir", dir.path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("out of memory"), std::string::npos) << r.err;
}

TEST(GpusCliTest, KilledTenantsMemoryIsListedThenReleased) {
  ScopedTempDir dir;
  ASSERT_EQ(Devices(dir.path, {"--simulate-gpus", "2x24GiB"}).size(), 2u);
  Tenant tenant;
  StartTenant(tenant, dir.path, 1, "5GiB");
  json devices = Devices(dir.path, {"--simulate-gpus", "2x24GiB"});
  const auto& d = devices[1];
  EXPECT_EQ(d["used_bytes"].get<int64_t>(), 5 * kGiB64);
  ASSERT_EQ(d["processes"].size(), 1u);
  EXPECT_EQ(d["processes"][0]["pid"].get<int>(), tenant.pid);
  EXPECT_EQ(d["processes"][0]["used_bytes"].get<int64_t>(), 5 * kGiB64);
  EXPECT_FALSE(d["processes"][0]["ours"].get<bool>());  // not a steno process: another tenant
  EXPECT_EQ(d["external_bytes"].get<int64_t>(), 5 * kGiB64);

  Tenant greedy;  // a second tenant cannot take what is not free
  auto r = RunProcess({HelperBin("gpu_sim_tenant"), dir.path, "1", "20GiB"});
  EXPECT_EQ(r.exit_code, 4) << r.err;

  kill(tenant.pid, SIGKILL);
  waitpid(tenant.pid, nullptr, 0);
  tenant.pid = -1;
  devices = Devices(dir.path, {"--simulate-gpus", "2x24GiB"});
  EXPECT_EQ(devices[1]["used_bytes"].get<int64_t>(), 0);
  EXPECT_TRUE(devices[1]["processes"].empty());
}

TEST(GpusCliTest, TelemetryIsScriptableForScoringTests) {
  ScopedTempDir dir;
  auto r = Steno({"gpus", "simulate-telemetry", "cuda:1", "--util", "90", "--temperature", "83",
                  "--simulate-gpus", "2x24GiB", "--data-dir", dir.path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json devices = Devices(dir.path, {"--simulate-gpus", "2x24GiB"});
  EXPECT_EQ(devices[1]["gpu_utilization_percent"], 90);
  EXPECT_EQ(devices[1]["temperature_c"], 83);
  EXPECT_EQ(devices[0]["gpu_utilization_percent"], 0);

  r = Steno({"gpus", "simulate-telemetry", "cuda:1", "--util", "101", "--data-dir", dir.path});
  EXPECT_EQ(r.exit_code, 2);
}

TEST(GpusCliTest, TableShowsEveryColumn) {
  ScopedTempDir dir;
  auto r = Steno({"gpus", "simulate-external", "cuda:0", "6GiB", "--simulate-gpus", "1x24GiB",
                  "--data-dir", dir.path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Steno({"gpus", "--simulate-gpus", "1x24GiB", "--data-dir", dir.path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* column :
       {"DEVICE", "TOTAL", "USED", "OURS", "EXTERNAL", "FREE", "UTIL", "TEMP"}) {
    EXPECT_NE(r.out.find(column), std::string::npos) << column << "\n" << r.out;
  }
  EXPECT_NE(r.out.find("cuda:0"), std::string::npos);
  EXPECT_NE(r.out.find("24 GiB"), std::string::npos);
  EXPECT_NE(r.out.find("18 GiB"), std::string::npos) << r.out;  // free
  EXPECT_NE(r.out.find("6 GiB"), std::string::npos) << r.out;   // used and external
}

TEST(GpusCliTest, WatchIsBoundedByCountForScripts) {
  ScopedTempDir dir;
  auto r = Steno({"gpus", "--json", "--watch", "--count", "3", "--sample-interval", "50ms",
                  "--simulate-gpus", "1x24GiB", "--data-dir", dir.path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    json j = json::parse(line);  // one document per line
    EXPECT_EQ(j["devices"].size(), 1u);
    ++n;
  }
  EXPECT_EQ(n, 3);

  r = Steno({"gpus", "--count", "2", "--sample-interval", "50ms", "--simulate-gpus", "1x24GiB",
             "--data-dir", dir.path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t frames = 0;
  for (size_t at = r.out.find("DEVICE"); at != std::string::npos;
       at = r.out.find("DEVICE", at + 1)) {
    ++frames;
  }
  EXPECT_EQ(frames, 2u) << r.out;
}

TEST(GpusCliTest, CpuOnlyWhenAskedOrWhenThereIsNoGpu) {
  ScopedTempDir dir;
  EXPECT_TRUE(Devices(dir.path, {"--simulate-gpus", "2x24GiB", "--device", "cpu"}).empty());
  if (gpu::nvml::LoadApi().ok()) GTEST_SKIP() << "this machine has NVML";
  auto r = Steno({"gpus", "--json", "--data-dir", dir.path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["backend"], "none");
  EXPECT_TRUE(j["devices"].empty());
  r = Steno({"gpus", "--data-dir", dir.path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("CPU"), std::string::npos) << r.out;
}

TEST(GpusCliTest, BadValuesAreRefusedWithExitCode2) {
  ScopedTempDir dir;
  struct Case {
    std::vector<std::string> args;
    const char* says;
  } cases[] = {
      {{"--simulate-gpus", "2x24XB"}, "24XB"},
      {{"--simulate-gpus", "0x24GiB"}, "count"},
      {{"--simulate-gpus", "2x24GiB", "--device", "cuda:7"}, "cuda:7"},
      {{"--device", "tpu"}, "tpu"},
      {{"--reserve", "cuda:0=lots"}, "lots"},
      {{"--safety-factor", "0"}, "safety factor"},
      {{"--sample-interval", "0"}, "interval"},
      {{"--count", "-1"}, "count"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"gpus", "--data-dir", dir.path};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = Steno(args);
    EXPECT_EQ(r.exit_code, 2) << c.args.back() << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  ScopedTempDir empty;
  auto r = Steno({"gpus", "simulate-external", "cuda:0", "1GiB", "--data-dir", empty.path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--simulate-gpus"), std::string::npos) << r.err;
  r = Steno({"gpus", "simulate-external", "cuda:0", "many", "--simulate-gpus", "1x24GiB",
             "--data-dir", empty.path});
  EXPECT_EQ(r.exit_code, 2);
  r = Steno({"gpus", "simulate-external", "cuda:3", "1GiB", "--data-dir", empty.path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cuda:3"), std::string::npos) << r.err;
}

// A server's runner is the steno-runner program beside steno, which loads none of the server's
// libraries; a separate `steno gpus` still counts what that runner holds on the card as steno's.
TEST(GpusCliTest, AServersRunnerRunsStenoRunnerAndItsMemoryIsOurs) {
  ApiTestServer s({"--device", "auto", "--simulate-gpus", "1x24GiB"});
  auto c = s.Client();
  auto loaded = c.Post("/v1/models/tiny/load", "{}", "application/json");
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->status, 200) << loaded->body;
  ASSERT_TRUE(WaitUntil(  // the load answers once the runner is placed: it may not have exec'd
      [&] {
        auto r = JsonOf(c.Get("/v1/runners"));
        return !r.is_null() && r["data"].size() == 1 && r["data"][0]["state"] == "ready";
      },
      120s));
  const auto runners = ChildrenOf(s.pid());
  ASSERT_EQ(runners.size(), 1u);
  const std::string proc = "/proc/" + std::to_string(runners[0]);
  EXPECT_EQ(std::filesystem::read_symlink(proc + "/exe").filename(), "steno-runner");
  std::ifstream maps(proc + "/maps");
  std::string line;
  int own_lines = 0;
  while (std::getline(maps, line)) {
    for (const char* lib : {"libcurl", "libpq", "libsqlite3", "libcpp-httplib", "libssl"}) {
      EXPECT_EQ(line.find(lib), std::string::npos) << "the runner loaded " << line;
    }
    own_lines += line.find("steno-runner") != std::string::npos ? 1 : 0;
  }
  EXPECT_GT(own_lines, 0) << "no mapping of the runner's own program was read";

  json devices = Devices(s.data, {"--simulate-gpus", "1x24GiB"});
  ASSERT_EQ(devices.size(), 1u);
  const auto& d = devices[0];
  ASSERT_EQ(d["processes"].size(), 1u) << d.dump();
  EXPECT_EQ(d["processes"][0]["pid"].get<int>(), runners[0]);
  EXPECT_TRUE(d["processes"][0]["ours"].get<bool>()) << d.dump();
  EXPECT_GT(d["ours_bytes"].get<int64_t>(), 0) << d.dump();
  EXPECT_EQ(d["external_bytes"].get<int64_t>(), 0) << d.dump();
}

}  // namespace
}  // namespace steno::test
