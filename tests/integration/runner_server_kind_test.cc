// The server kind's backend driven directly (as runner_kinds_test drives the echo kind), with
// real processes: tests/helpers/fake_model_server started from a command template, on the CPU
// and on a simulated GPU it charges. Every test checks that no process of the server is left.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "gpu/simulated_devices.h"
#include "runners/server/server_backend.h"
#include "support/child_process.h"
#include "support/server_events.h"
#include "support/test_env.h"

namespace steno::runners {
namespace {

using namespace std::chrono_literals;
using sched::BackendEvent;
using Kind = sched::BackendEvent::Kind;
using runner::RunnerErrorKind;
using test::BackendEvents;
using test::FakeServerModel;

constexpr int64_t kGiB = int64_t{1} << 30;

// One backend serving the models a test declares.
struct Fixture {
  test::ScopedTempDir dir{"steno-server-kind"};
  BackendEvents events;
  std::vector<ServerModel> models;
  KindContext context;
  std::unique_ptr<ServerBackend> backend;

  void Open() {
    context.sink = events.Sink();
    context.models_dir = dir.path + "/models";
    context.results_dir = dir.path + "/results";
    ServerBackendOptions o;
    o.find_model = [this](const std::string& name) -> std::optional<ServerModel> {
      for (const auto& m : models) {
        if (m.name == name) return m;
      }
      return std::nullopt;
    };
    backend = std::make_unique<ServerBackend>(std::move(o), context);
  }
  Status Start(int64_t id, const std::string& model, const std::string& device = "cpu") {
    sched::RunnerStartSpec spec;
    spec.runner_id = id;
    spec.model = model;
    spec.device = device;
    spec.kind = kServerKind;
    return backend->Start(spec);
  }
  sched::JobRunSpec Job(const std::string& id, const std::string& text,
                        nlohmann::json params = {{"task", "transcribe"}}) {
    const std::string path = dir.path + "/" + id + ".wav";
    std::ofstream(path) << text;
    return sched::JobRunSpec{id, {path, "", id + ".wav"}, std::move(params), 0};
  }
  std::string Record() const { return dir.path + "/pids"; }
};

bool AllGone(const std::vector<int>& pids) {
  return test::AllExited(std::vector<pid_t>(pids.begin(), pids.end()), 30s);
}

TEST(ServerKindBackend, ServesTranscriptionsAndProxyThenStopsLeavingNothing) {
  Fixture f;
  f.models = {FakeServerModel("fake", {"--record", f.Record()})};
  f.Open();
  ASSERT_TRUE(f.Start(1, "fake").ok());
  auto ready = f.events.WaitLoad(1);
  ASSERT_TRUE(ready);
  ASSERT_EQ(ready->kind, Kind::kReady) << ready->message;
  ASSERT_EQ(ready->pids.size(), 1u);
  EXPECT_EQ(ready->pids, test::RecordedPids(f.Record()));

  ASSERT_TRUE(f.backend->SendJob(1, f.Job("j1", "0123456789")).ok());
  auto done = f.events.WaitJob("j1");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->kind, Kind::kDone) << done->message;
  EXPECT_EQ(done->payload["text"], "hello from the fake server j1.wav 10 bytes");
  EXPECT_EQ(done->payload["language"], "en");
  EXPECT_EQ(done->payload["task"], "transcribe");
  ASSERT_EQ(done->payload["segments"].size(), 2u);
  EXPECT_EQ(done->payload["segments"][1]["start"], 2.0);
  EXPECT_EQ(done->payload["segments"][0]["tokens"], nlohmann::json({1, 2, 3}));

  // Proxy: the endpoint at once, held until cancelled.
  ASSERT_TRUE(f.backend->SendJob(1, f.Job("p1", "x", {{"task", "proxy"}})).ok());
  auto endpoint = f.events.WaitFor(
      [](const BackendEvent& e) { return e.job_id == "p1" && e.kind == Kind::kSegment; });
  ASSERT_TRUE(endpoint);
  EXPECT_EQ(endpoint->payload["endpoint"].get<std::string>().rfind("http://127.0.0.1:", 0), 0u);
  f.backend->Cancel(1, "p1");
  auto proxy_done = f.events.WaitJob("p1");
  ASSERT_TRUE(proxy_done);
  EXPECT_EQ(proxy_done->kind, Kind::kDone);

  // A task the protocol cannot serve, and bad input the server refuses.
  ASSERT_TRUE(f.backend->SendJob(1, f.Job("s1", "x", {{"task", "speech"}})).ok());
  auto speech = f.events.WaitJob("s1");
  ASSERT_TRUE(speech);
  EXPECT_EQ(speech->error_kind, RunnerErrorKind::kBadInput);
  ASSERT_TRUE(f.backend->SendJob(1, f.Job("e1", "")).ok());
  auto empty = f.events.WaitJob("e1");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->kind, Kind::kError);
  EXPECT_EQ(empty->error_kind, RunnerErrorKind::kBadInput);
  EXPECT_NE(empty->message.find("the audio file is empty"), std::string::npos) << empty->message;

  f.backend->Stop(1);
  ASSERT_TRUE(f.events.WaitExited(1));
  EXPECT_TRUE(AllGone(test::RecordedPids(f.Record())));
  int exits = 0;
  for (const auto& e : f.events.All()) exits += e.kind == Kind::kExited;
  EXPECT_EQ(exits, 1);
}

TEST(ServerKindBackend, FallsBackToJsonWhenTheServerRefusesVerboseJson) {
  Fixture f;
  f.models = {FakeServerModel("plain", {"--json-only"})};
  f.Open();
  ASSERT_TRUE(f.Start(1, "plain").ok());
  ASSERT_EQ(f.events.WaitLoad(1)->kind, Kind::kReady);
  ASSERT_TRUE(f.backend->SendJob(1, f.Job("j", "abc")).ok());
  auto done = f.events.WaitJob("j");
  ASSERT_TRUE(done);
  ASSERT_EQ(done->kind, Kind::kDone) << done->message;
  EXPECT_EQ(done->payload["text"], "hello from the fake server j.wav 3 bytes");
  EXPECT_EQ(done->payload["segments"].size(), 1u);
}

TEST(ServerKindBackend, ANeverHealthyServerFailsTheLoadAndLeavesNothing) {
  Fixture f;
  ServerModel m = FakeServerModel("stuck", {"--never-healthy", "--record", f.Record()});
  m.ready_timeout = 2s;
  f.models = {m};
  f.Open();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(f.Start(4, "stuck").ok());
  auto load = f.events.WaitLoad(4);
  ASSERT_TRUE(load);
  ASSERT_EQ(load->kind, Kind::kError);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 2s) << "not before ready_timeout";
  EXPECT_NE(load->message.find("stuck"), std::string::npos) << load->message;
  EXPECT_NE(load->message.find("503"), std::string::npos) << load->message;
  EXPECT_NE(load->message.find("loading model"), std::string::npos) << load->message;
  ASSERT_TRUE(f.events.WaitExited(4));
  const auto pids = test::RecordedPids(f.Record());
  ASSERT_EQ(pids.size(), 1u);
  EXPECT_FALSE(test::ProcessAlive(pids[0])) << "gone before kExited";
}

TEST(ServerKindBackend, AServerThatCannotStartFailsTheLoadWithItsOutput) {
  Fixture f;
  ServerModel m = FakeServerModel("broken", {"--no-such-flag"});
  f.models = {m};
  f.Open();
  ASSERT_TRUE(f.Start(1, "broken").ok());
  auto load = f.events.WaitLoad(1);
  ASSERT_TRUE(load);
  ASSERT_EQ(load->kind, Kind::kError);
  EXPECT_NE(load->message.find("exited with code 2"), std::string::npos) << load->message;
  EXPECT_NE(load->message.find("unknown flag --no-such-flag"), std::string::npos) << load->message;
  ASSERT_TRUE(f.events.WaitExited(1));

  EXPECT_EQ(f.Start(2, "undeclared").error().code, "server_model_not_found");
  m.name = "typo";
  m.command.push_back("{gpu}");
  f.models.push_back(m);
  EXPECT_EQ(f.Start(3, "typo").error().code, "bad_placeholder");
}

TEST(ServerKindBackend, PlaceholdersAreExpandedPerStart) {
  Fixture f;
  const std::string seen = f.dir.path + "/seen";
  std::filesystem::create_directories(f.dir.path + "/models");
  ServerModel m;
  m.name = "shell";
  m.protocol = ServerProtocol::kHttp;
  m.command = {"/bin/sh", "-c",
               "echo \"{name} {device} {models_dir} [{cuda_index}] [{gpu_uuid}] {host} {{x}}\" > " +
                   seen + "; echo \"$FAKE_ENV $(pwd)\" >> " + seen + "; exec " +
                   test::HelperBin("fake_model_server") + " --port {port}"};
  m.env = {{"FAKE_ENV", "{name}:{port}"}};
  m.workdir = "{models_dir}";
  f.models = {m};
  f.Open();
  ASSERT_TRUE(f.Start(1, "shell").ok());
  auto ready = f.events.WaitLoad(1);
  ASSERT_EQ(ready->kind, Kind::kReady) << ready->message;
  auto endpoint = [&] {
    EXPECT_TRUE(f.backend->SendJob(1, f.Job("p", "x", {{"task", "proxy"}})).ok());
    auto e = f.events.WaitFor(
        [](const BackendEvent& e) { return e.job_id == "p" && e.kind == Kind::kSegment; });
    return e ? e->payload["endpoint"].get<std::string>() : "";
  }();
  const std::string port = endpoint.substr(endpoint.rfind(':') + 1);
  EXPECT_EQ(test::ReadFileText(seen), "shell cpu " + f.dir.path + "/models [] [] 127.0.0.1 {x}\n" +
                                          "shell:" + port + " " + f.dir.path + "/models\n");
  f.backend->Cancel(1, "p");
  // The http protocol serves only proxy requests.
  ASSERT_TRUE(f.backend->SendJob(1, f.Job("t", "x")).ok());
  EXPECT_EQ(f.events.WaitJob("t")->error_kind, RunnerErrorKind::kBadInput);
  f.backend->Stop(1);
  ASSERT_TRUE(f.events.WaitExited(1));
}

TEST(ServerKindBackend, KillNineMidRequestFailsItAsACrashAndKillsTheWorker) {
  Fixture f;
  auto sim = gpu::SimulatedDevices::Open(f.dir.path, "1x8GiB");
  ASSERT_TRUE(sim.ok()) << sim.error().message;
  f.context.devices = gpu::AsDevicesFn(std::shared_ptr<gpu::Devices>(std::move(*sim)));
  f.context.sim_data_dir = f.dir.path;
  f.models = {FakeServerModel(
      "slow", {"--fork-worker", "1GiB", "--slow-ms", "60000", "--record", f.Record()})};
  f.Open();
  ASSERT_TRUE(f.Start(1, "slow", "cuda:0").ok());
  auto ready = f.events.WaitLoad(1);
  ASSERT_EQ(ready->kind, Kind::kReady) << ready->message;
  ASSERT_EQ(ready->pids.size(), 2u) << "the server and its worker";
  ASSERT_TRUE(f.backend->SendJob(1, f.Job("j", "abc")).ok());
  kill(test::RecordedPids(f.Record()).at(0), SIGKILL);
  auto failed = f.events.WaitJob("j");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->kind, Kind::kError);
  EXPECT_EQ(failed->error_kind, RunnerErrorKind::kCrash) << failed->message;
  auto exited = f.events.WaitExited(1);
  ASSERT_TRUE(exited);
  EXPECT_NE(exited->message.find("SIGKILL"), std::string::npos) << exited->message;
  EXPECT_TRUE(AllGone(test::RecordedPids(f.Record()))) << "no orphaned worker";
  auto samples = f.context.devices();
  ASSERT_TRUE(samples.ok());
  EXPECT_EQ(samples->at(0).used_bytes, 0);
}

TEST(ServerKindBackend, UnloadFreesTheChargeOfTheServerAndItsForkedWorker) {
  Fixture f;
  auto sim = gpu::SimulatedDevices::Open(f.dir.path, "1x8GiB");
  ASSERT_TRUE(sim.ok()) << sim.error().message;
  f.context.devices = gpu::AsDevicesFn(std::shared_ptr<gpu::Devices>(std::move(*sim)));
  f.context.sim_data_dir = f.dir.path;
  int unreleased = 0;
  f.context.on_unreleased = [&](const std::string&, const std::string&,
                                const runner::ReleaseReport&) { ++unreleased; };
  ServerModel m = FakeServerModel(
      "forking", {"--fork-worker", "1GiB", "--ignore-term", "--record", f.Record()});
  m.stop_timeout = 1s;  // it ignores SIGTERM: SIGKILL after this
  f.models = {m};
  f.Open();
  ASSERT_TRUE(f.Start(7, "forking", "cuda:0").ok());
  auto ready = f.events.WaitLoad(7);
  ASSERT_EQ(ready->kind, Kind::kReady) << ready->message;
  EXPECT_EQ(ready->weights_bytes, 2 * kGiB) << "the whole tree's charge";
  auto pids = ready->pids;
  std::sort(pids.begin(), pids.end());
  auto recorded = test::RecordedPids(f.Record());
  std::sort(recorded.begin(), recorded.end());
  EXPECT_EQ(pids, recorded);
  EXPECT_EQ(f.context.devices()->at(0).used_bytes, 2 * kGiB);

  const auto stop = std::chrono::steady_clock::now();
  f.backend->Stop(7);
  ASSERT_TRUE(f.events.WaitExited(7));
  EXPECT_GE(std::chrono::steady_clock::now() - stop, 1s) << "SIGKILL only after stop_timeout";
  EXPECT_TRUE(AllGone(recorded));
  EXPECT_EQ(f.context.devices()->at(0).used_bytes, 0);
  EXPECT_EQ(unreleased, 0);
}

TEST(ServerKindBackend, AChangeOfTheProcessTreeWhileLoadedIsReported) {
  Fixture f;
  auto sim = gpu::SimulatedDevices::Open(f.dir.path, "1x8GiB");
  ASSERT_TRUE(sim.ok()) << sim.error().message;
  f.context.devices = gpu::AsDevicesFn(std::shared_ptr<gpu::Devices>(std::move(*sim)));
  f.context.sim_data_dir = f.dir.path;
  f.models = {FakeServerModel("forking", {"--fork-worker", "1GiB", "--record", f.Record()})};
  f.Open();
  ASSERT_TRUE(f.Start(1, "forking", "cuda:0").ok());
  auto ready = f.events.WaitLoad(1);
  ASSERT_EQ(ready->kind, Kind::kReady) << ready->message;
  ASSERT_EQ(ready->pids.size(), 2u);
  const auto recorded = test::RecordedPids(f.Record());  // the server, then its worker
  ASSERT_EQ(recorded.size(), 2u);
  kill(recorded[1], SIGKILL);
  auto changed = f.events.WaitFor(
      [](const BackendEvent& e) { return e.kind == Kind::kProcesses && e.pids.size() == 1; });
  ASSERT_TRUE(changed) << "no kProcesses after the worker died";
  EXPECT_EQ(changed->pids, std::vector<int>{recorded[0]});
  f.backend->Stop(1);
  ASSERT_TRUE(f.events.WaitExited(1));
}

TEST(ServerKindBackend, CancelAbortsARequestInFlight) {
  Fixture f;
  f.models = {FakeServerModel("slow", {"--slow-ms", "60000"})};
  f.Open();
  ASSERT_TRUE(f.Start(1, "slow").ok());
  ASSERT_EQ(f.events.WaitLoad(1)->kind, Kind::kReady);
  ASSERT_TRUE(f.backend->SendJob(1, f.Job("j", "abc")).ok());
  f.backend->Cancel(1, "j");
  auto cancelled = f.events.WaitFor(
      [](const BackendEvent& e) { return e.job_id == "j" && e.kind == Kind::kError; }, 30s);
  ASSERT_TRUE(cancelled) << "the 60 s request was not aborted";
  EXPECT_EQ(cancelled->error_kind, RunnerErrorKind::kCancelled);
  EXPECT_FALSE(f.backend->SetStreams(1, 3).ok()) << "the model takes 2 requests at once";
  EXPECT_TRUE(f.backend->SetStreams(1, 2).ok());

  // A request past the work item's timeout is aborted as a timeout.
  sched::JobRunSpec late = f.Job("late", "abc");
  late.timeout_s = 1;
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(f.backend->SendJob(1, late).ok());
  auto timed_out = f.events.WaitJob("late");
  ASSERT_TRUE(timed_out) << "the 60 s request outlived its 1 s timeout";
  EXPECT_EQ(timed_out->error_kind, RunnerErrorKind::kTimeout) << timed_out->message;
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 1s);
  f.backend->Stop(1);
  ASSERT_TRUE(f.events.WaitExited(1));
}

}  // namespace
}  // namespace steno::runners
