// Runner kinds: the registry, the dispatcher, and a test-only kind (support/echo_kind.h) driven
// through the real scheduler and the Runtime — a kind added as one backend plus one
// registration, with no change to the scheduler, the API or the store.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>

#include "runners/dispatcher.h"
#include "runners/kind_registry.h"
#include "sched/scheduler.h"
#include "server/runtime.h"
#include "support/echo_kind.h"
#include "support/final_jobs.h"
#include "support/test_env.h"

namespace steno {
namespace {

using namespace std::chrono_literals;
using sched::BackendEvent;
using test::EchoBackend;
using test::EchoKind;
using test::EchoKindOptions;

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(RunnerKindsRegistry, RefusesDuplicateAndNamelessKinds) {
  runners::KindRegistry kinds;
  ASSERT_TRUE(kinds.Add("echo", EchoKind({})).ok());
  auto twice = kinds.Add("echo", EchoKind({}));
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, "duplicate_runner_kind");
  auto nameless = kinds.Add("", EchoKind({}));
  ASSERT_FALSE(nameless.ok());
  EXPECT_EQ(nameless.error().code, "bad_runner_kind");
  EXPECT_NE(kinds.Find("echo"), nullptr);
  EXPECT_EQ(kinds.Find("whisper"), nullptr);
  EXPECT_EQ(kinds.Names(), std::vector<std::string>{"echo"});
}

TEST(RunnerKindsDispatcher, RoutesEachRunnerToItsKindAndDeliversOneExit) {
  EchoBackend* a = nullptr;
  EchoBackend* b = nullptr;
  EchoKindOptions careless;
  careless.exit_twice = true;  // its Stop reports kExited twice
  runners::KindRegistry kinds;
  ASSERT_TRUE(kinds.Add("a", EchoKind({}, &a)).ok());
  ASSERT_TRUE(kinds.Add("b", EchoKind(careless, &b)).ok());
  std::vector<BackendEvent> seen;  // the dispatcher calls its sink on the caller's thread here
  runners::KindContext context;
  context.sink = [&seen](BackendEvent e) { seen.push_back(std::move(e)); };
  auto d = runners::Dispatcher::Create(kinds, context);
  ASSERT_TRUE(d.ok());
  runners::Dispatcher& dispatcher = **d;

  sched::RunnerStartSpec spec;
  spec.runner_id = 1;
  spec.device = "cpu";
  spec.kind = "a";
  ASSERT_TRUE(dispatcher.Start(spec).ok());
  spec.runner_id = 2;
  spec.kind = "b";
  ASSERT_TRUE(dispatcher.Start(spec).ok());
  spec.runner_id = 3;
  spec.kind = "nope";
  auto unknown = dispatcher.Start(spec);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, "unknown_runner_kind");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->starts(), 1);
  EXPECT_EQ(b->starts(), 1);
  EXPECT_EQ(dispatcher.live_runners(), 2u);

  sched::JobRunSpec job;
  job.job_id = "j";
  job.input.digest = "abc";
  job.input.name = "x.wav";
  ASSERT_TRUE(dispatcher.SendJob(2, job).ok());
  EXPECT_FALSE(dispatcher.SendJob(3, job).ok()) << "runner 3 never started";

  dispatcher.Stop(2);
  EXPECT_EQ(b->exits_reported(), 2);
  int exits_of_2 = 0;
  for (const auto& e : seen)
    exits_of_2 += e.runner_id == 2 && e.kind == BackendEvent::Kind::kExited;
  EXPECT_EQ(exits_of_2, 1) << "the second kExited of a runner must not reach the scheduler";
  EXPECT_EQ(dispatcher.live_runners(), 1u);
  EXPECT_FALSE(dispatcher.SendJob(2, job).ok()) << "an exited runner takes no work";

  auto done = std::find_if(seen.begin(), seen.end(), [](const BackendEvent& e) {
    return e.kind == BackendEvent::Kind::kDone;
  });
  ASSERT_NE(done, seen.end());
  EXPECT_EQ(done->runner_id, 2);
  EXPECT_EQ(done->payload["text"], "echo x.wav: blob abc");
}

// One simulated card of 8.5 GiB on which another tenant (pid 77) holds 3 GiB. Each echo runner
// is a process tree of two: the first process holds the weights, the second the streams.
struct EchoCard {
  EchoBackend* echo = nullptr;
  int64_t total = 8 * kGiB + kGiB / 2;

  gpu::DevicesFn Devices() {
    return [this]() -> Result<std::vector<gpu::DeviceSample>> {
      gpu::DeviceSample s;
      s.name = "Echo GPU";
      s.total_bytes = total;
      s.processes_known = true;
      s.processes = {{77, 3 * kGiB}};
      s.used_bytes = 3 * kGiB;
      for (const auto& r : echo ? echo->live() : std::vector<EchoBackend::Runner>{}) {
        s.processes.push_back({r.pids.at(0), r.weights_bytes});
        s.processes.push_back({r.pids.at(1), r.streams * r.stream_bytes});
        s.used_bytes += r.bytes();
      }
      s.free_bytes = s.total_bytes - s.used_bytes;
      return std::vector<gpu::DeviceSample>{s};
    };
  }
};

TEST(RunnerKindsEcho, TheSchedulerPlacesAdmitsAndChargesAnotherKind) {
  EchoKindOptions options;
  options.weights_bytes = 2 * kGiB;
  options.stream_bytes = 1 * kGiB;
  options.hold_jobs = true;
  options.exit_twice = true;
  EchoCard card;
  runners::KindRegistry kinds;
  ASSERT_TRUE(kinds.Add(test::kEchoKind, EchoKind(options, &card.echo)).ok());
  auto sink = std::make_shared<sched::BackendSink>();
  runners::KindContext context;
  context.sink = [sink](BackendEvent e) { (*sink)(std::move(e)); };
  auto dispatcher = runners::Dispatcher::Create(kinds, context);
  ASSERT_TRUE(dispatcher.ok());

  sched::SchedulerConfig config;
  config.sample_interval_ms = 0;
  config.cuda_context_bytes = 0;
  config.reserve.default_bytes = 0;
  config.safety_factor = 1.0;
  config.placement.min_residency_ms = 0;
  std::vector<sched::RunnerUpdate> runner_updates;  // written on the worker, read once idle
  sched::SchedulerHooks hooks;
  hooks.on_runner = [&](const sched::RunnerUpdate& u) { runner_updates.push_back(u); };
  sched::VirtualClock clock;
  // The declared footprint is exactly what its runners measure: 2 GiB + 1 GiB per stream.
  sched::Scheduler scheduler(
      config, clock, **dispatcher, card.Devices(),
      [](const std::string& model) -> Result<sched::ModelSpec> {
        if (model != "echo-model") return Error(ErrorKind::kNotFound, "model_not_found", model);
        return sched::ModelSpec{"", sched::MemoryEstimate{2 * kGiB, 1 * kGiB, false},
                                test::kEchoKind};
      },
      hooks);
  *sink = scheduler.Sink();

  test::ScopedTempDir dir;
  auto submit = [&](const std::string& id, sched::BlobRef input) {
    sched::SubmitRequest r;
    r.job.id = id;
    r.job.model = "echo-model";
    r.input = std::move(input);
    ASSERT_TRUE(scheduler.Submit(std::move(r)).ok());
    scheduler.WaitIdle();
  };
  submit("j1", {WriteFile(dir.path, "one.txt", "hello from a blob\n"), "d1", "one.wav"});
  for (const char* id : {"j2", "j3", "j4", "j5"}) submit(id, {"", std::string("d-") + id, id});

  // Placement: one runner on the card. Admission: 8.5 GiB − 3 (tenant) − 2 (weights) leaves room
  // for three 1 GiB streams, so two jobs wait. That holds only if the memory of both processes
  // of its tree is credited to the runner: crediting one pid would count the streams' process
  // as another tenant's and admit fewer.
  sched::SchedulerSnapshot snap = scheduler.Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u);
  EXPECT_EQ(snap.runners[0].view.device, "cuda:0");
  EXPECT_EQ(snap.runners[0].pids, (std::vector<int>{test::EchoPid(1, 0), test::EchoPid(1, 1)}));
  EXPECT_EQ(snap.runners[0].view.streams, 3);
  EXPECT_EQ(snap.running, 3u);
  EXPECT_EQ(snap.queued, 2u);
  ASSERT_EQ(snap.devices.size(), 1u);
  EXPECT_EQ(snap.devices[0].memory.allocated, 2 * kGiB + 3 * kGiB);
  EXPECT_EQ(snap.devices[0].memory.external, 3 * kGiB) << "only the tenant is external";

  card.echo->FinishHeld();  // j1..j3 end; j4, j5 take their streams
  scheduler.WaitIdle();
  EXPECT_EQ(scheduler.Snapshot().running, 2u);
  card.echo->FinishHeld();
  scheduler.WaitIdle();
  for (const char* id : {"j1", "j2", "j3", "j4", "j5"}) {
    auto j = scheduler.FindJob(id);
    ASSERT_TRUE(j);
    EXPECT_EQ(j->job.state, JobState::kCompleted) << id;
  }
  EXPECT_EQ(scheduler.FindJob("j1")->result["text"], "echo one.wav: hello from a blob");
  EXPECT_EQ(scheduler.FindJob("j4")->result["text"], "echo j4: blob d-j4");
  EXPECT_EQ(card.echo->starts(), 1) << "every job ran on the one runner";

  ASSERT_TRUE(scheduler.Unload("echo-model").ok());
  scheduler.WaitIdle();
  EXPECT_TRUE(scheduler.Snapshot().runners.empty());
  EXPECT_EQ(card.echo->exits_reported(), 2);
  int unloaded = 0;
  for (const auto& u : runner_updates) unloaded += u.kind == sched::RunnerUpdate::Kind::kUnloaded;
  EXPECT_EQ(unloaded, 1) << "exited exactly once";
  EXPECT_EQ(runner_updates.back().reason, "unload requested");
  EXPECT_FALSE(runner_updates.back().crashed);
}

using test::FinalJobs;

server::RuntimeOptions EchoRuntime(const test::ScopedTempDir& dir, EchoBackend** echo) {
  server::RuntimeOptions o;
  o.data_dir = dir.path;
  o.models_dir = dir.path + "/models";  // holds no ggml file: the echo model needs none
  o.gpu.simulate_spec = "1x8GiB";
  o.gpu.data_dir = dir.path;
  EchoKindOptions echo_options;
  echo_options.weights_bytes = 512 * kMiB;
  echo_options.stream_bytes = 128 * kMiB;
  o.extra_kinds.emplace_back(test::kEchoKind, EchoKind(echo_options, echo));
  models::DeclaredModel m;
  m.name = "echo-small";
  m.kind = test::kEchoKind;
  m.weights_bytes = 512 * kMiB;
  m.stream_bytes = 128 * kMiB;
  m.capabilities = {models::Capability::kTranscribe};
  o.declared_models.push_back(m);
  return o;
}

TEST(RunnerKindsEcho, TheRuntimeRunsADeclaredModelOfARegisteredKind) {
  test::ScopedTempDir dir;
  EchoBackend* echo = nullptr;
  FinalJobs jobs;
  auto rt = server::Runtime::Start(EchoRuntime(dir, &echo), jobs.Hooks());
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  ASSERT_NE(echo, nullptr);

  // The catalog names it with its kind; resolving it reads no file.
  auto spec = (*rt)->ResolveModel("echo-small");
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  EXPECT_EQ(spec->kind, test::kEchoKind);
  EXPECT_EQ(spec->path, "");
  EXPECT_EQ(spec->estimate.weights_bytes, 512 * kMiB);
  EXPECT_EQ(spec->estimate.stream_bytes, 128 * kMiB);
  const auto listed = (*rt)->catalog().List();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].footprint, models::FootprintSource::kDeclared);

  sched::SubmitRequest r;
  r.job.id = "echo-job";
  r.job.model = "echo-small";
  r.input = {WriteFile(dir.path, "in.txt", "spoken words\n"), "", "in.wav"};
  ASSERT_TRUE((*rt)->scheduler().Submit(std::move(r)).ok());
  auto done = jobs.Wait("echo-job");
  ASSERT_TRUE(done) << "the job did not end";
  EXPECT_EQ(done->job.state, JobState::kCompleted);
  EXPECT_EQ(done->payload["text"], "echo in.wav: spoken words");
  EXPECT_EQ(done->device, "cuda:0") << "placed on the simulated card like any runner";

  const auto snap = (*rt)->scheduler().Snapshot();
  ASSERT_EQ(snap.runners.size(), 1u);
  const int64_t context = snap.runners[0].view.weights_bytes - 512 * kMiB;
  EXPECT_EQ(context, sched::SchedulerConfig{}.cuda_context_bytes) << "a GPU runner's context";
  for (const auto& d : snap.devices) {
    if (d.name == "cuda:0") {
      EXPECT_EQ(d.memory.allocated, 512 * kMiB + context + 128 * kMiB);
    }
  }

  const server::StopReport report = (*rt)->Stop();
  EXPECT_TRUE(report.clean);
  ASSERT_EQ(report.devices.size(), 1u);
  EXPECT_EQ(report.devices[0].runners, 1);
}

TEST(RunnerKindsEcho, TheRuntimeRefusesAModelOfAnUnregisteredKind) {
  test::ScopedTempDir dir;
  server::RuntimeOptions o = EchoRuntime(dir, nullptr);
  o.extra_kinds.clear();
  auto rt = server::Runtime::Start(o, {});
  ASSERT_FALSE(rt.ok());
  EXPECT_EQ(rt.error().code, "unknown_runner_kind");
}

TEST(RunnerErrorKinds, NamesAreTheWireProtocolsAndUnknownIsInternal) {
  using runner::RunnerErrorKind;
  for (auto k : {RunnerErrorKind::kOom, RunnerErrorKind::kBadInput, RunnerErrorKind::kCancelled,
                 RunnerErrorKind::kTimeout, RunnerErrorKind::kInternal, RunnerErrorKind::kCrash}) {
    EXPECT_EQ(runner::ParseErrorKind(runner::ErrorKindName(k)), k);
  }
  EXPECT_STREQ(runner::ErrorKindName(RunnerErrorKind::kBadInput), "bad_input");
  EXPECT_EQ(runner::ParseErrorKind("no such kind"), RunnerErrorKind::kInternal);
  EXPECT_EQ(runner::ErrorMessage("j", RunnerErrorKind::kOom, "m")["kind"], "oom");
}

}  // namespace
}  // namespace steno
