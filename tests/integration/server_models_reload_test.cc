// A config reload's server models (Runtime::ReplaceServerModels, what SIGHUP calls through
// JobService::Reconfigure), with real server processes (tests/helpers/fake_model_server) on a
// simulated card: added models join the catalog, removed ones leave it and fail their queued
// jobs, changed ones are replaced once idle and the next job runs the new declaration.
#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>

#include "runners/server/server_model.h"
#include "server/runtime.h"
#include "support/child_process.h"
#include "support/final_jobs.h"
#include "support/test_env.h"

namespace steno {
namespace {

using namespace std::chrono_literals;
using runners::ServerModel;
using runners::ServerProtocol;

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;

// A fake server answering every transcription with `answer`.
ServerModel FakeServer(const std::string& name, const std::string& answer) {
  ServerModel m;
  m.name = name;
  m.command = {test::HelperBin("fake_model_server"), "--port", "{port}", "--answer", answer};
  m.protocol = ServerProtocol::kOpenAiTranscription;
  m.vram_bytes = 256 * kMiB;
  m.source = "models.toml";
  return m;
}

using test::FinalJobs;

struct ReloadRuntime {
  test::ScopedTempDir dir{"steno-server-reload"};
  FinalJobs jobs;
  std::unique_ptr<server::Runtime> rt;

  explicit ReloadRuntime(std::vector<ServerModel> models) {
    server::RuntimeOptions o;
    o.data_dir = dir.path;
    o.models_dir = dir.path + "/models";
    o.gpu.simulate_spec = "1x8GiB";
    o.gpu.data_dir = dir.path;
    o.server_models = std::move(models);
    auto started = server::Runtime::Start(o, jobs.Hooks());
    EXPECT_TRUE(started.ok()) << started.error().message;
    if (started.ok()) rt = std::move(started).value();
  }

  std::vector<std::string> Listed() const {
    std::vector<std::string> names;
    for (const auto& m : rt->catalog().List()) names.push_back(m.name + ":" + m.kind);
    return names;
  }

  Status Submit(const std::string& id, const std::string& model) {
    const std::string input = dir.path + "/" + id + ".wav";
    std::ofstream(input) << "not really audio";
    sched::SubmitRequest r;
    r.job.id = id;
    r.job.model = model;
    r.input = {input, "", id + ".wav"};
    return rt->scheduler().Submit(std::move(r));
  }

  size_t RunnersOf(const std::string& model) const {
    size_t n = 0;
    for (const auto& r : rt->scheduler().Snapshot().runners) n += r.view.model == model;
    return n;
  }
};

using Names = std::vector<std::string>;

TEST(ServerModelsReload, AddedRemovedAndChangedModelsShowInTheCatalog) {
  ReloadRuntime s({FakeServer("alpha", "a"), FakeServer("beta", "b")});
  ASSERT_TRUE(s.rt);
  EXPECT_EQ(s.Listed(), (Names{"alpha:server", "beta:server"}));

  ServerModel changed = FakeServer("alpha", "a2");
  changed.source = "other.toml";
  auto changes = s.rt->ReplaceServerModels({changed, FakeServer("gamma", "c")});
  ASSERT_TRUE(changes.ok()) << changes.error().message;
  EXPECT_EQ(changes->added, Names{"gamma"});
  EXPECT_EQ(changes->removed, Names{"beta"});
  EXPECT_EQ(changes->changed, Names{"alpha"});
  EXPECT_EQ(changes->Summary(), "added gamma; removed beta; changed alpha");
  EXPECT_EQ(s.Listed(), (Names{"alpha:server", "gamma:server"}));
  EXPECT_FALSE(s.rt->FindServerModel("beta").has_value());
  ASSERT_TRUE(s.rt->FindServerModel("alpha").has_value());
  EXPECT_EQ(s.rt->FindServerModel("alpha")->command.back(), "a2") << "what the next start runs";
  auto gone = s.rt->ResolveModel("beta");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, "model_not_found");

  // Only the file it came from differs: no change.
  auto same = s.rt->ReplaceServerModels({FakeServer("alpha", "a2"), FakeServer("gamma", "c")});
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->empty()) << same->Summary();

  // A name given twice is refused and nothing changes.
  auto twice = s.rt->ReplaceServerModels({FakeServer("delta", "d"), FakeServer("delta", "e")});
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, "bad_models_config");
  EXPECT_EQ(s.Listed(), (Names{"alpha:server", "gamma:server"}));
}

TEST(ServerModelsReload, ARemovedModelsQueuedJobsFailAndItsNameIsUnknown) {
  ServerModel huge = FakeServer("huge", "never runs");
  huge.vram_bytes = 100 * kGiB;  // never fits the 8 GiB card: its job stays queued
  ReloadRuntime s({huge});
  ASSERT_TRUE(s.rt);
  ASSERT_TRUE(s.Submit("waiting", "huge").ok());
  s.rt->scheduler().WaitIdle();
  ASSERT_EQ(s.rt->scheduler().FindJob("waiting")->job.state, JobState::kPending);

  auto changes = s.rt->ReplaceServerModels({});
  ASSERT_TRUE(changes.ok()) << changes.error().message;
  EXPECT_EQ(changes->removed, Names{"huge"});
  auto ended = s.jobs.Wait("waiting");
  ASSERT_TRUE(ended) << "the removed model's queued job did not end";
  EXPECT_EQ(ended->job.state, JobState::kFailed);
  ASSERT_TRUE(ended->job.error.has_value());
  EXPECT_EQ(ended->job.error->code, "model_removed");
  // The scheduler forgot it too: a new job for it is refused at once.
  auto refused = s.Submit("late", "huge");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "model_not_found");
}

TEST(ServerModelsReload, AChangedModelIsReplacedOnceIdleAndTheNextJobRunsTheNewOne) {
  ReloadRuntime s({FakeServer("alpha", "first answer")});
  ASSERT_TRUE(s.rt);
  ASSERT_TRUE(s.Submit("one", "alpha").ok());
  auto one = s.jobs.Wait("one");
  ASSERT_TRUE(one);
  ASSERT_EQ(one->job.state, JobState::kCompleted)
      << (one->job.error ? one->job.error->message : "");
  EXPECT_NE(one->payload.dump().find("first answer"), std::string::npos) << one->payload.dump();
  ASSERT_EQ(s.RunnersOf("alpha"), 1u) << "idle, kept alive";

  auto changes = s.rt->ReplaceServerModels({FakeServer("alpha", "second answer")});
  ASSERT_TRUE(changes.ok()) << changes.error().message;
  EXPECT_EQ(changes->changed, Names{"alpha"});
  EXPECT_TRUE(test::WaitUntil([&] { return s.RunnersOf("alpha") == 0; }, 60s))
      << "the idle runner of the old declaration was not stopped";

  ASSERT_TRUE(s.Submit("two", "alpha").ok());
  auto two = s.jobs.Wait("two");
  ASSERT_TRUE(two);
  ASSERT_EQ(two->job.state, JobState::kCompleted)
      << (two->job.error ? two->job.error->message : "");
  EXPECT_NE(two->payload.dump().find("second answer"), std::string::npos) << two->payload.dump();
}

TEST(ServerModelsReload, AnAddedPreloadModelIsLoadedAtOnce) {
  ReloadRuntime s({});
  ASSERT_TRUE(s.rt);
  ServerModel eager = FakeServer("eager", "x");
  eager.preload = true;
  auto changes = s.rt->ReplaceServerModels({eager});
  ASSERT_TRUE(changes.ok()) << changes.error().message;
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        for (const auto& r : s.rt->scheduler().Snapshot().runners) {
          if (r.view.model == "eager" && r.state == sched::RunnerState::kReady) return true;
        }
        return false;
      },
      60s))
      << "the preload model was not loaded";
}

}  // namespace
}  // namespace steno
