// The scheduler driving real `steno runner` processes on the CPU (issue 5's acceptance): 20 jobs
// over two generated models on 4 streams; every job completes once, with the segments a
// sequential run gives, and the hooks report every job's way to completed.
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "audio/decoder.h"
#include "engine/model_writer.h"
#include "engine/whisper_model.h"
#include "engine/whisper_stream.h"
#include "runners/whisper/process_backend.h"
#include "sched/clock.h"
#include "sched/estimator.h"
#include "sched/scheduler.h"
#include "support/runner_events.h"
#include "support/test_env.h"

namespace steno::sched {
namespace {

using namespace std::chrono_literals;

engine::DecodeParams Greedy() {
  engine::DecodeParams p;
  p.language = "en";
  p.beam_size = 1;
  p.temperature_inc = 0;
  p.n_threads = 1;
  return p;
}

using runner::SegmentsOf;
using runners::ProcessBackend;
using runners::ProcessBackendOptions;
using Segments = runner::SegmentTimes;

// What one model gives for one file when run alone, in this process.
Segments Sequential(const std::string& model, const std::string& media) {
  auto m = engine::WhisperModel::Load(model, {});
  EXPECT_TRUE(m.ok());
  auto stream = (*m)->NewStream();
  auto pcm = audio::Decode(test::MediaPath(media));
  auto t = (*stream)->Run(*pcm, Greedy());
  EXPECT_TRUE(t.ok());
  return t.ok() ? SegmentsOf(*t) : Segments{};
}

TEST(SchedProcessTest, JobsOverTwoModelsOnRealRunnersMatchSequentialRuns) {
  test::ScopedTempDir dir("steno-sched");
  const std::string model_b = dir.path + "/ggml-b.bin";
  auto hp = engine::ModelPreset("tiny-test");
  ASSERT_TRUE(hp.ok());
  ASSERT_TRUE(engine::WriteRandomModel(model_b, *hp, 2).ok());
  const std::map<std::string, std::string> paths = {{"a", test::TinyModel()}, {"b", model_b}};

  SchedulerConfig config;
  config.allow_cpu = true;
  config.cpu_cores = 4;  // four streams of one thread each
  config.max_threads_per_job = 1;
  config.sample_interval_ms = 0;
  config.placement.max_streams_per_runner = 4;

  ProcessBackendOptions options;
  options.exe = test::StenoBin();
  options.decode_defaults = Greedy();
  options.heartbeat_ms = 500;
  auto sink = std::make_shared<BackendSink>();
  ProcessBackend backend(options, [sink](BackendEvent e) { (*sink)(std::move(e)); });

  std::mutex mu;
  std::map<std::string, std::vector<JobState>> reported;
  SchedulerHooks hooks;
  hooks.on_job = [&](const JobUpdate& u) {
    std::lock_guard<std::mutex> lock(mu);
    if (u.kind == JobUpdate::Kind::kState) reported[u.job.id].push_back(u.job.state);
  };
  RealClock clock;
  Scheduler scheduler(
      config, clock, backend,
      [] { return Result<std::vector<gpu::DeviceSample>>(std::vector<gpu::DeviceSample>{}); },
      [&](const std::string& name) -> Result<ModelSpec> {
        auto it = paths.find(name);
        if (it == paths.end()) return Error(ErrorKind::kNotFound, "model_not_found", name);
        auto info = engine::ReadModelFile(it->second);
        if (!info) return info.error();
        return ModelSpec{it->second, EstimateModel(*info), "whisper"};
      },
      hooks);
  *sink = scheduler.Sink();

  const std::vector<std::string> media = {"speech.wav", "speech.flac"};
  std::map<std::string, std::pair<std::string, std::string>> jobs;  // id -> (model, media)
  for (int i = 0; i < 20; ++i) {
    SubmitRequest r;
    r.job.id = "job" + std::to_string(i);
    r.job.model = i % 2 ? "b" : "a";
    r.job.params.language = "en";
    r.input.path = test::MediaPath(media[i / 2 % 2]);
    jobs[r.job.id] = {r.job.model, media[i / 2 % 2]};
    ASSERT_TRUE(scheduler.Submit(std::move(r)).ok());
  }

  const auto deadline = std::chrono::steady_clock::now() + 300s;
  for (;;) {
    int final_jobs = 0;
    for (const auto& [id, _] : jobs) {
      const std::optional<JobInfo> j = scheduler.FindJob(id);
      if (j && IsFinal(j->job.state)) ++final_jobs;
    }
    if (final_jobs == static_cast<int>(jobs.size())) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "jobs did not finish";
    std::this_thread::sleep_for(50ms);
  }

  std::map<std::pair<std::string, std::string>, Segments> reference;
  for (const auto& [id, what] : jobs) {
    SCOPED_TRACE(id);
    const std::optional<JobInfo> j = scheduler.FindJob(id);
    ASSERT_TRUE(j.has_value());
    ASSERT_EQ(j->job.state, JobState::kCompleted)
        << (j->job.error ? j->job.error->message : std::string());
    EXPECT_EQ(j->job.attempt, 1);
    if (!reference.count(what)) reference[what] = Sequential(paths.at(what.first), what.second);
    EXPECT_EQ(SegmentsOf(j->result), reference[what]);
  }
  // One runner per model, sharing their streams, not one per job; never more than 4 streams.
  const SchedulerSnapshot snap = scheduler.Snapshot();
  EXPECT_LE(snap.runners.size(), 2u);
  int streams = 0;
  for (const auto& r : snap.runners) streams += r.view.streams;
  EXPECT_LE(streams, 4);
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [id, what] : jobs) {
    EXPECT_EQ(reported[id], (std::vector<JobState>{JobState::kLoading, JobState::kProcessing,
                                                   JobState::kCompleted}))
        << id;
  }
}

}  // namespace
}  // namespace steno::sched
