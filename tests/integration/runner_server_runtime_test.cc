// Server models through the Runtime (the scheduler, the dispatcher and the server kind, as
// `steno serve` runs them), with real processes: tests/helpers/fake_model_server on a
// simulated GPU, and whisper.cpp's own whisper-server as a `whisper-server` model whose
// transcript must equal whisper-server's own answer.
#include <gtest/gtest.h>
#include <signal.h>

#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>

#include <httplib.h>

#include "runners/server/command_template.h"
#include "runners/server/server_transcript.h"
#include "server/runtime.h"
#include "support/child_process.h"
#include "support/server_events.h"
#include "support/test_env.h"

namespace steno {
namespace {

using namespace std::chrono_literals;
using runners::ServerModel;

constexpr int64_t kGiB = int64_t{1} << 30;

// Waits (on the scheduler's hook) until a job reaches a final state.
struct FinalJobs {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, sched::JobUpdate> final;

  sched::SchedulerHooks Hooks() {
    sched::SchedulerHooks h;
    h.on_job = [this](const sched::JobUpdate& u) {
      if (u.kind != sched::JobUpdate::Kind::kState || !IsFinal(u.job.state)) return;
      std::lock_guard<std::mutex> lock(mu);
      final[u.job.id] = u;
      cv.notify_all();
    };
    return h;
  }
  std::optional<sched::JobUpdate> Wait(const std::string& id, std::chrono::seconds timeout = 120s) {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, timeout, [&] { return final.count(id) > 0; })) return std::nullopt;
    return final.at(id);
  }
};

server::RuntimeOptions ServerRuntime(const test::ScopedTempDir& dir,
                                     std::vector<ServerModel> models) {
  server::RuntimeOptions o;
  o.data_dir = dir.path;
  o.models_dir = dir.path + "/models";
  o.gpu.simulate_spec = "1x8GiB";
  o.gpu.data_dir = dir.path;
  o.scheduler.retry_base_ms = 50;
  o.server_models = std::move(models);
  return o;
}

void Submit(server::Runtime& rt, const std::string& id, const std::string& model,
            const std::string& path) {
  sched::SubmitRequest r;
  r.job.id = id;
  r.job.model = model;
  r.input = {path, "", std::filesystem::path(path).filename().string()};
  ASSERT_TRUE(rt.scheduler().Submit(std::move(r)).ok());
}

std::string WriteInput(const test::ScopedTempDir& dir, const std::string& text) {
  const std::string path = dir.path + "/input.wav";
  std::ofstream(path) << text;
  return path;
}

TEST(ServerKindRuntime, AJobOnAServerModelCompletesAndTheUnloadFreesTheCard) {
  test::ScopedTempDir dir;
  const std::string record = dir.path + "/pids";
  ServerModel m = test::FakeServerModel("fake", {"--fork-worker", "1GiB", "--record", record});
  m.vram_bytes = 3 * kGiB;
  FinalJobs jobs;
  auto rt = server::Runtime::Start(ServerRuntime(dir, {m}), jobs.Hooks());
  ASSERT_TRUE(rt.ok()) << rt.error().message;

  auto spec = (*rt)->ResolveModel("fake");
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  EXPECT_EQ(spec->kind, "server");
  EXPECT_EQ(spec->estimate.weights_bytes, 3 * kGiB) << "the declared vram before a load";

  Submit(**rt, "job-1", "fake", WriteInput(dir, "12345"));
  auto done = jobs.Wait("job-1");
  ASSERT_TRUE(done) << "the job did not end";
  ASSERT_EQ(done->job.state, JobState::kCompleted)
      << (done->job.error ? done->job.error->message : "");
  EXPECT_EQ(done->payload["text"], "hello from the fake server input.wav 5 bytes");
  EXPECT_EQ(done->device, "cuda:0");

  const auto snap = (*rt)->scheduler().Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u);
  EXPECT_EQ(snap.runners[0].pids.size(), 2u) << "the server and its worker hold its memory";
  const auto pids = test::RecordedPids(record);
  ASSERT_EQ(pids.size(), 2u);

  const server::StopReport report = (*rt)->Stop();
  EXPECT_TRUE(report.clean) << report.Summary();
  EXPECT_TRUE(test::AllExited(std::vector<pid_t>(pids.begin(), pids.end()), 30s));
  auto samples = (*rt)->devices()->Sample();
  ASSERT_TRUE(samples.ok());
  EXPECT_EQ(samples->at(0).used_bytes, 0) << "the charges of the server and its worker";
}

TEST(ServerKindRuntime, KillNineMidRequestRunsTheJobAgainOnAFreshStart) {
  test::ScopedTempDir dir;
  const std::string record = dir.path + "/pids";
  ServerModel m = test::FakeServerModel(
      "fake", {"--fork-worker", "256MiB", "--slow-ms", "3000", "--record", record});
  m.vram_bytes = 1 * kGiB;
  FinalJobs jobs;
  auto rt = server::Runtime::Start(ServerRuntime(dir, {m}), jobs.Hooks());
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  Submit(**rt, "job-1", "fake", WriteInput(dir, "abc"));

  // Killed while the request is in flight: the runner is ready and the job processing.
  std::vector<int> first;
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        auto snap = (*rt)->scheduler().Snapshot();
        auto job = (*rt)->scheduler().FindJob("job-1");
        if (snap.runners.empty() || snap.runners[0].state != sched::RunnerState::kReady || !job ||
            job->job.state != JobState::kProcessing) {
          return false;
        }
        first = snap.runners[0].pids;
        return true;
      },
      60s));
  ASSERT_EQ(test::RecordedPids(record).size(), 2u);
  const int leader = test::RecordedPids(record)[0];
  ASSERT_EQ(kill(leader, SIGKILL), 0);

  auto done = jobs.Wait("job-1");
  ASSERT_TRUE(done) << "the job did not end";
  ASSERT_EQ(done->job.state, JobState::kCompleted)
      << (done->job.error ? done->job.error->message : "");
  EXPECT_EQ(done->job.attempt, 2) << "run again after the crash";
  EXPECT_EQ(done->payload["text"], "hello from the fake server input.wav 3 bytes");
  const auto all = test::RecordedPids(record);
  ASSERT_EQ(all.size(), 4u) << "a fresh server and worker";
  EXPECT_TRUE(test::AllExited(std::vector<pid_t>(first.begin(), first.end()), 30s))
      << "no orphan of the crashed server";
  (*rt)->Stop();
  EXPECT_TRUE(test::AllExited(std::vector<pid_t>(all.begin(), all.end()), 30s));
}

TEST(ServerKindRuntime, ANeverHealthyServerFailsItsJobAfterReadyTimeout) {
  test::ScopedTempDir dir;
  const std::string record = dir.path + "/pids";
  ServerModel m = test::FakeServerModel("stuck", {"--never-healthy", "--record", record});
  m.ready_timeout = 2s;
  FinalJobs jobs;
  auto rt = server::Runtime::Start(ServerRuntime(dir, {m}), jobs.Hooks());
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  Submit(**rt, "job-1", "stuck", WriteInput(dir, "abc"));
  auto done = jobs.Wait("job-1");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->job.state, JobState::kFailed);
  ASSERT_TRUE(done->job.error);
  EXPECT_NE(done->job.error->message.find("stuck did not turn healthy within 2 s"),
            std::string::npos)
      << done->job.error->message;
  EXPECT_TRUE(test::WaitUntil([&] { return (*rt)->scheduler().Snapshot().runners.empty(); }, 30s));
  const auto pids = test::RecordedPids(record);
  EXPECT_TRUE(test::AllExited(std::vector<pid_t>(pids.begin(), pids.end()), 30s));
}

// whisper.cpp's whisper-server, next to whisper-cli in the whisper.cpp build this links.
std::string WhisperServerBin() {
  return std::filesystem::path(test::WhisperCliBin()).parent_path().string() + "/whisper-server";
}

// The flags both servers get: the same decode as steno's defaults would not matter here, only
// that both sides decode alike (beam 5, best of 5, no temperature fallback: deterministic).
std::vector<std::string> WhisperServerCommand(const std::string& port, const std::string& host) {
  return {WhisperServerBin(), "-m", test::TinyModel(), "-t", "1", "-bs", "5", "-bo", "5", "-nf",
          "--port",           port, "--host",          host};
}

// whisper-server's own answer for `input`, asked as the server kind asks it.
nlohmann::json AskWhisperServerDirectly(const std::string& input) {
  auto port = runners::PickFreePort("127.0.0.1");
  EXPECT_TRUE(port.ok());
  test::ScopedTempDir logs;
  test::ChildProcess server(WhisperServerCommand(std::to_string(*port), "127.0.0.1"),
                            logs.path + "/out", logs.path + "/err");
  httplib::Client client("127.0.0.1", *port);
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        auto r = client.Get("/health");
        return r && r->status == 200;
      },
      60s));
  client.set_read_timeout(120s);
  const auto data = test::ReadFileBytes(input);
  httplib::MultipartFormDataItems form = {
      {"file", std::string(data.begin(), data.end()), "speech.wav", "application/octet-stream"},
      {"response_format", "verbose_json", "", ""},
      {"language", "auto", "", ""},
      {"temperature", "0", "", ""},
      {"translate", "false", "", ""}};
  auto r = client.Post("/inference", form);
  EXPECT_TRUE(r && r->status == 200);
  server.Signal(SIGTERM);
  server.Wait(30s);
  return r ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json();
}

TEST(ServerKindWhisperServer, TheTranscriptEqualsWhisperServersOwnAnswer) {
  if (access(WhisperServerBin().c_str(), X_OK) != 0) {
    GTEST_SKIP() << "no whisper-server at " << WhisperServerBin();
  }
  const std::string input = test::MediaPath("speech.wav");
  const nlohmann::json direct = AskWhisperServerDirectly(input);
  ASSERT_TRUE(direct.is_object() && direct.contains("segments")) << direct.dump();
  auto expected = runners::TranscriptFromServerAnswer(direct, {"transcribe", false});
  ASSERT_TRUE(expected.ok()) << expected.error().message;

  test::ScopedTempDir dir;
  ServerModel m;
  m.name = "whisper-upstream";
  m.protocol = runners::ServerProtocol::kWhisperServer;
  m.command = WhisperServerCommand("{port}", "{host}");
  m.ready_timeout = 120s;
  server::RuntimeOptions o = ServerRuntime(dir, {m});
  o.gpu.simulate_spec.clear();
  o.gpu.device.mode = gpu::DeviceSelection::Mode::kCpu;
  FinalJobs jobs;
  auto rt = server::Runtime::Start(o, jobs.Hooks());
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  Submit(**rt, "job-1", "whisper-upstream", input);
  auto done = jobs.Wait("job-1", 300s);
  ASSERT_TRUE(done) << "the job did not end";
  ASSERT_EQ(done->job.state, JobState::kCompleted)
      << (done->job.error ? done->job.error->message : "");
  EXPECT_EQ(done->payload, *expected);
  ASSERT_EQ(done->payload["segments"].size(), direct["segments"].size());
  for (size_t i = 0; i < direct["segments"].size(); ++i) {
    EXPECT_EQ(done->payload["segments"][i]["text"], direct["segments"][i]["text"]) << i;
  }
  (*rt)->Stop();
}

}  // namespace
}  // namespace steno
