// JobService against real runner processes, a real SQLite store and blob store: jobs are durable
// before Submit returns, results come back in every format, a refused submission leaves nothing
// behind, and a service stopped mid-run hands its jobs to the next start, which completes each
// exactly once.
#include "server/job_service.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "store/data_dir.h"
#include "support/child_process.h"
#include "support/test_env.h"

namespace steno::server {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct ServiceDirs {
  test::ScopedTempDir root{"steno-service"};
  std::string data = root.path + "/data";
  std::string models = root.path + "/models";
  ServiceDirs() {
    fs::create_directories(models);
    fs::copy_file(test::TinyModel(), models + "/ggml-tiny.bin");
  }
};

ServiceOptions OptionsFor(const ServiceDirs& dirs) {
  ServiceOptions o;
  o.data_dir = dirs.data;
  o.node = "test-node";
  o.runtime.models_dir = dirs.models;
  o.runtime.runner_exe = test::StenoBin();
  o.runtime.gpu.device.mode = gpu::DeviceSelection::Mode::kCpu;
  o.runtime.decode_defaults.n_threads = 1;
  o.runtime.decode_defaults.beam_size = 1;
  o.runtime.decode_defaults.temperature_inc = 0;
  o.runtime.scheduler.cpu_cores = 2;
  return o;
}

SubmitJob SpeechJob(const std::string& media = "speech.wav") {
  SubmitJob j;
  j.model = "tiny";
  j.params.language = "en";
  j.server_path = test::MediaPath(media);
  return j;
}

size_t BlobCount(const std::string& data_dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(data_dir + "/blobs")) n += e.is_regular_file();
  return n;
}

TEST(JobServiceTest, SubmittedJobCompletesWithResultInEveryFormat) {
  ServiceDirs dirs;
  auto service = JobService::Open(OptionsFor(dirs));
  ASSERT_TRUE(service.ok()) << service.error().message;
  auto inserted = (*service)->jobs().Submit(SpeechJob());
  ASSERT_TRUE(inserted.ok()) << inserted.error().message;
  const std::string id = inserted->job.id;

  std::vector<JobEvent> events;
  std::mutex mu;
  auto sub = (*service)->events().Subscribe(id, [&](const JobEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
    return true;
  });
  ASSERT_TRUE(sub.ok());

  auto job = (*service)->jobs().Wait(id, 120'000);
  ASSERT_TRUE(job.ok());
  ASSERT_EQ(job->state, JobState::kCompleted) << (job->error ? job->error->message : "");
  for (const char* format : {"json", "text", "srt", "vtt", "verbose_json"}) {
    auto text = (*service)->jobs().ResultText(id, format);
    ASSERT_TRUE(text.ok()) << format << ": " << text.error().message;
    EXPECT_FALSE(text->empty()) << format;
  }
  auto verbose_text = (*service)->jobs().ResultText(id, "verbose_json");
  ASSERT_TRUE(verbose_text.ok());
  auto verbose = nlohmann::json::parse(*verbose_text);
  ASSERT_TRUE(verbose["segments"].is_array());
  EXPECT_FALSE(verbose["segments"].empty());

  // The subscriber saw the states in order, ending completed, and every segment. Its events
  // may trail Wait's answer: waited for until the final state arrives.
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return std::any_of(events.begin(), events.end(), [](const JobEvent& e) {
          return e.kind == JobEvent::Kind::kState && e.job.state == JobState::kCompleted;
        });
      },
      60s));
  std::lock_guard<std::mutex> lock(mu);
  std::vector<JobState> states;
  size_t segments = 0;
  for (const auto& e : events) {
    if (e.kind == JobEvent::Kind::kState) states.push_back(e.job.state);
    if (e.kind == JobEvent::Kind::kSegment) ++segments;
  }
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.back(), JobState::kCompleted);
  EXPECT_TRUE(std::is_sorted(states.begin(), states.end())) << "states went backwards";
  EXPECT_EQ(segments, verbose["segments"].size());

  // The measured footprint of the model on the CPU is in the store for the next start.
  (*service).reset();
  auto stores = store::OpenDataDir(dirs.data);
  ASSERT_TRUE(stores.ok());
  auto fp = stores->jobs->GetFootprint("tiny", "cpu");
  ASSERT_TRUE(fp.ok());
  ASSERT_TRUE(fp->has_value());
  EXPECT_GT((*fp)->weights_bytes, 0);
  EXPECT_GT((*fp)->stream_bytes, 0);
}

TEST(JobServiceTest, RefusedSubmissionsLeaveNoJobOrBlob) {
  ServiceDirs dirs;
  auto service = JobService::Open(OptionsFor(dirs));
  ASSERT_TRUE(service.ok()) << service.error().message;
  const std::string not_media = dirs.root.path + "/notes.txt";
  { std::ofstream(not_media) << "this is not audio"; }
  auto upload = (*service)->blobs().Put("this is not audio either");
  ASSERT_TRUE(upload.ok());

  struct Case {
    std::string name;
    SubmitJob job;
    std::string code;
  };
  std::vector<Case> cases;
  auto add = [&](std::string name, std::function<void(SubmitJob&)> edit, std::string code) {
    SubmitJob j = SpeechJob();
    edit(j);
    cases.push_back({std::move(name), j, std::move(code)});
  };
  add(
      "unknown model", [](SubmitJob& j) { j.model = "nope"; }, "model_not_found");
  add(
      "model as a path", [](SubmitJob& j) { j.model = "/etc/passwd"; }, "bad_model_name");
  add(
      "bad language", [](SubmitJob& j) { j.params.language = "xx"; }, "bad_language");
  add(
      "bad task", [](SubmitJob& j) { j.params.task = "summarise"; }, "bad_task");
  add(
      "bad format", [](SubmitJob& j) { j.params.response_format = "pdf"; }, "bad_response_format");
  add(
      "hot temperature", [](SubmitJob& j) { j.params.temperature = 3; }, "bad_temperature");
  add(
      "bad device", [](SubmitJob& j) { j.params.device = "tpu:0"; }, "bad_device");
  add(
      "bad keep-alive", [](SubmitJob& j) { j.params.keep_alive_s = -5; }, "bad_keep_alive");
  add(
      "zero timeout", [](SubmitJob& j) { j.params.timeout_s = 0; }, "bad_timeout");
  add(
      "long prompt", [](SubmitJob& j) { j.params.prompt.assign(16 * 1024 + 1, 'x'); },
      "bad_prompt");
  add(
      "text file", [&](SubmitJob& j) { j.server_path = not_media; }, "not_media");
  add(
      "missing file", [&](SubmitJob& j) { j.server_path = dirs.root.path + "/x.wav"; },
      "file_not_found");
  add(
      "non-audio upload",
      [&](SubmitJob& j) {
        j.server_path.clear();
        j.blob_digest = upload->digest;
      },
      "not_media");
  for (const auto& c : cases) {
    auto r = (*service)->jobs().Submit(c.job);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.error().code, c.code) << c.name << ": " << r.error().message;
  }
  auto page = (*service)->jobs().List({});
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->jobs.empty());
  EXPECT_EQ(BlobCount(dirs.data), 0u) << "a refused upload was kept";
}

// A model file is not read again for every submission once it resolved, but a file replaced
// since is: a model overwritten with something that is not a model is refused, not taken for
// the one that resolved before.
TEST(JobServiceTest, AModelFileReplacedAfterItResolvedIsResolvedAgain) {
  ServiceDirs dirs;
  auto service = JobService::Open(OptionsFor(dirs));
  ASSERT_TRUE(service.ok()) << service.error().message;
  auto first = (*service)->jobs().Submit(SpeechJob());
  ASSERT_TRUE(first.ok()) << first.error().message;
  (void)(*service)->jobs().Cancel(first->job.id);
  { std::ofstream(dirs.models + "/ggml-tiny.bin", std::ios::trunc) << "not a model any more"; }
  auto second = (*service)->jobs().Submit(SpeechJob());
  ASSERT_FALSE(second.ok()) << "a job was accepted for a model file that is no model";
  EXPECT_EQ(second.error().code, "not_a_model") << second.error().message;
}

TEST(JobServiceTest, StopMidRunRequeuesAndNextStartCompletesEachJobOnce) {
  ServiceDirs dirs;
  std::vector<std::string> ids;
  {
    auto service = JobService::Open(OptionsFor(dirs));
    ASSERT_TRUE(service.ok()) << service.error().message;
    for (int i = 0; i < 3; ++i) {
      auto inserted = (*service)->jobs().Submit(SpeechJob("speech_60s.wav"));
      ASSERT_TRUE(inserted.ok()) << inserted.error().message;
      ids.push_back(inserted->job.id);
    }
    // Stop while the first job is being processed.
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while ((*service)->jobs().Get(ids[0])->state != JobState::kProcessing) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline);
      std::this_thread::sleep_for(20ms);
    }
  }
  {
    auto stores = store::OpenDataDir(dirs.data);
    ASSERT_TRUE(stores.ok());
    for (const auto& id : ids) {
      auto job = stores->jobs->Get(id);
      ASSERT_TRUE(job.ok());
      EXPECT_EQ(job->state, JobState::kPending) << id;
    }
  }
  auto service = JobService::Open(OptionsFor(dirs));
  ASSERT_TRUE(service.ok()) << service.error().message;
  for (const auto& id : ids) {
    auto job = (*service)->jobs().Wait(id, 180'000);
    ASSERT_TRUE(job.ok());
    EXPECT_EQ(job->state, JobState::kCompleted) << id;
    auto attempts = (*service)->jobs().List({});
    ASSERT_TRUE(attempts.ok());
  }
  // Exactly one completed attempt per job.
  (*service).reset();
  auto stores = store::OpenDataDir(dirs.data);
  ASSERT_TRUE(stores.ok());
  for (const auto& id : ids) {
    auto attempts = stores->jobs->Attempts(id);
    ASSERT_TRUE(attempts.ok());
    int completed = 0;
    for (const auto& a : *attempts) completed += a.outcome == "completed";
    EXPECT_EQ(completed, 1) << id;
  }
}

// Whether some process waits for the flock on `path` (/proc/locks lists waiters with "->").
bool SomeoneWaitsForFlock(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return false;
  std::ifstream locks("/proc/locks");
  const std::string inode = ":" + std::to_string(st.st_ino) + " ";
  std::string line;
  while (std::getline(locks, line)) {
    if (line.find("->") != std::string::npos && line.find("FLOCK") != std::string::npos &&
        line.find(inode) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// A shutdown whose stop of the runtime waits on the driver (here: the simulated GPUs' lock,
// held by the test, as a slow NVML call would) holds no lock readers need: the scheduler's
// snapshot, device samples and the job counts answer while it waits.
TEST(JobServiceTest, SnapshotsAndDevicesAnswerWhileShutdownWaitsForTheDriver) {
  ServiceDirs dirs;
  ServiceOptions o = OptionsFor(dirs);
  o.runtime.gpu.device = {};  // auto: the simulated GPU
  o.runtime.gpu.simulate_spec = "1x8GiB";
  o.runtime.gpu.sample_interval = std::chrono::milliseconds(0);  // no periodic samples
  auto service = JobService::Open(o);
  ASSERT_TRUE(service.ok()) << service.error().message;
  JobService& s = **service;
  auto devices = s.runners().Devices();
  ASSERT_TRUE(devices.ok()) << devices.error().message;
  ASSERT_EQ(devices->size(), 1u);
  const size_t ledgers_before = s.runners().Snapshot().devices.size();
  ASSERT_GE(ledgers_before, 1u);

  const std::string lock_path = dirs.data + "/simulated-gpus.lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0) << lock_path;
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  auto shutdown = std::async(std::launch::async, [&] { return s.Shutdown(0ms); });
  bool stop_waits = false;
  for (int i = 0; i < 6000 && !stop_waits; ++i) {
    stop_waits = SomeoneWaitsForFlock(lock_path);
    if (!stop_waits) std::this_thread::sleep_for(10ms);
  }
  auto reads = std::async(std::launch::async, [&] {
    const size_t ledgers = s.runners().Snapshot().devices.size();
    auto samples = s.runners().Devices();
    auto counts = s.jobs().Counts();
    return std::make_tuple(ledgers, samples.ok() ? samples->size() : 0, counts.ok());
  });
  const bool answered = reads.wait_for(60s) == std::future_status::ready;
  const bool still_stopping = shutdown.wait_for(0s) != std::future_status::ready;
  ::flock(fd, LOCK_UN);  // in every case: the old behaviour must fail, not hang
  ::close(fd);
  ASSERT_TRUE(stop_waits) << "the shutdown never sampled the devices";
  EXPECT_TRUE(answered) << "a read waited for the runtime to stop";
  EXPECT_TRUE(still_stopping);
  auto [ledgers, samples, counted] = reads.get();
  EXPECT_EQ(ledgers, ledgers_before) << "the snapshot while stopping shows what was there";
  EXPECT_EQ(samples, 1u) << "the last device samples while stopping";
  EXPECT_TRUE(counted);
  auto report = shutdown.get();
  EXPECT_TRUE(report.runners.clean);
  // Stopped: nothing is left to show.
  EXPECT_TRUE(s.runners().Snapshot().devices.empty());
}

}  // namespace
}  // namespace steno::server
