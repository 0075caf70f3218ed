// Server models through the Runtime (the scheduler, the dispatcher and the server kind, as
// `steno serve` runs them), with real processes: tests/helpers/fake_model_server on a
// simulated GPU, and whisper.cpp's own whisper-server as a `whisper-server` model whose
// transcript must equal whisper-server's own answer.
#include <gtest/gtest.h>
#include <signal.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "runners/server/server_transcript.h"
#include "server/runtime.h"
#include "support/child_process.h"
#include "support/final_jobs.h"
#include "support/server_events.h"
#include "support/test_env.h"

namespace steno {
namespace {

using namespace std::chrono_literals;
using runners::ServerModel;

constexpr int64_t kGiB = int64_t{1} << 30;

using test::FinalJobs;

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

TEST(ServerKindWhisperServer, TheTranscriptEqualsWhisperServersOwnAnswer) {
  if (access(test::WhisperServerBin().c_str(), X_OK) != 0) {
    GTEST_SKIP() << "no whisper-server at " << test::WhisperServerBin();
  }
  const std::string input = test::MediaPath("speech.wav");
  const nlohmann::json direct = test::AskWhisperServerDirectly(input);
  ASSERT_TRUE(direct.is_object() && direct.contains("segments")) << direct.dump();
  auto expected = runners::TranscriptFromServerAnswer(direct, {"transcribe", false});
  ASSERT_TRUE(expected.ok()) << expected.error().message;

  test::ScopedTempDir dir;
  ServerModel m;
  m.name = "whisper-upstream";
  m.protocol = runners::ServerProtocol::kWhisperServer;
  m.command = test::WhisperServerCommand("{port}", "{host}");
  m.ready_timeout = 120s;
  server::RuntimeOptions o = ServerRuntime(dir, {m});
  o.gpu.simulate_spec.clear();
  o.gpu.device.mode = gpu::DeviceSelection::Mode::kCpu;
  // The built-in runner on the same file, decoding as whisper-server was told to.
  std::filesystem::create_directories(o.models_dir);
  std::filesystem::copy_file(test::TinyModel(), o.models_dir + "/ggml-tiny.bin");
  o.decode_defaults.n_threads = 1;  // the CPU ledger's threads per stream (whisper-server: -t 1)
  o.decode_defaults.beam_size = 5;
  o.decode_defaults.best_of = 5;
  o.decode_defaults.temperature_inc = 0;
  o.warmup = false;
  o.runner_exe = test::StenoBin();
  FinalJobs jobs;
  auto rt = server::Runtime::Start(o, jobs.Hooks());
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  Submit(**rt, "job-1", "whisper-upstream", input);
  Submit(**rt, "job-2", "tiny", input);
  auto done = jobs.Wait("job-1", 300s);
  ASSERT_TRUE(done) << "the job did not end";
  ASSERT_EQ(done->job.state, JobState::kCompleted)
      << (done->job.error ? done->job.error->message : "");
  EXPECT_EQ(done->payload, *expected);
  ASSERT_GE(direct["segments"].size(), 1u);
  ASSERT_FALSE(direct["text"].get<std::string>().empty());
  ASSERT_EQ(done->payload["segments"].size(), direct["segments"].size());
  for (size_t i = 0; i < direct["segments"].size(); ++i) {
    EXPECT_EQ(done->payload["segments"][i]["text"], direct["segments"][i]["text"]) << i;
  }
  auto builtin = jobs.Wait("job-2", 300s);
  ASSERT_TRUE(builtin) << "the built-in runner's job did not end";
  ASSERT_EQ(builtin->job.state, JobState::kCompleted);
  EXPECT_EQ(builtin->payload["text"], done->payload["text"]) << "the built-in runner's transcript";
  (*rt)->Stop();
}

}  // namespace
}  // namespace steno
