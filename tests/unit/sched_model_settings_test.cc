// What a model declares for itself (ModelSpec: allowed devices, a cap on streams, a keep-alive),
// honoured by placement and the scheduler on simulated cards and a virtual clock.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "sched/placement.h"
#include "sched/scheduler.h"
#include "sim/sim_cluster.h"

namespace steno::sched {
namespace {

using sim::kGiB;
using sim::kMiB;
using sim::SimCluster;
using sim::SimClusterOptions;

// Where each runner was loaded, by model (RunnerUpdate kLoaded).
struct Loads {
  std::map<std::string, std::multiset<std::string>> devices;
  SchedulerHooks Hooks() {
    SchedulerHooks h;
    h.on_runner = [this](const RunnerUpdate& u) {
      if (u.kind == RunnerUpdate::Kind::kLoaded) devices[u.model].insert(u.device);
    };
    return h;
  }
};

SimClusterOptions ThreeCards(Loads& loads) {
  SimClusterOptions o;  // cuda:0 24 GiB, cuda:1 24 GiB, cuda:2 12 GiB
  o.models = {{"pinned", 1 * kGiB, kGiB / 2, 20'000},
              {"pair", 1 * kGiB, kGiB / 2, 20'000},
              {"free", 1 * kGiB, kGiB / 2, 20'000}};
  o.config.sample_interval_ms = 0;
  o.config.placement.max_streams_per_runner = 1;  // concurrent jobs need runners: they spread
  o.config.placement.min_residency_ms = 0;
  o.config.default_keep_alive_s = 5;
  o.hooks = loads.Hooks();
  return o;
}

TEST(SchedModelSettings, AllowedDevicesHoldOnThreeCardsOverManyJobs) {
  Loads loads;
  SimCluster sim(ThreeCards(loads));
  // The 12 GiB card: ranked last among idle cards, so only the model's own list puts it there.
  sim.specs["pinned"].allowed_devices = {"cuda:2"};
  sim.specs["pair"].allowed_devices = {"cuda:1", "cuda:2"};
  const auto arrivals = sim::MakeArrivals(
      {{"pinned", 0, 0, 0}, {"pair", 0, 0, 0}, {"free", 0, 0, 0}}, 300, 1'500, 17);
  for (const auto& a : arrivals) {
    sim.AdvanceTo(a.at_ms);
    ASSERT_TRUE(sim.Submit(a).ok()) << a.id;
  }
  sim.Advance(3'600'000);
  for (const auto& a : arrivals) ASSERT_EQ(sim.State(a.id), JobState::kCompleted) << a.id;

  for (const auto& d : loads.devices["pinned"]) EXPECT_EQ(d, "cuda:2") << "pinned only there";
  for (const auto& d : loads.devices["pair"]) EXPECT_NE(d, "cuda:0") << "pair never on cuda:0";
  EXPECT_GT(loads.devices["pinned"].size(), 1u) << "several runners over the run";
  EXPECT_GT(loads.devices["pair"].count("cuda:1"), 0u);
  EXPECT_GT(loads.devices["free"].count("cuda:0"), 0u) << "an unrestricted model goes anywhere";
  EXPECT_EQ(sim.backend.oom_refusals(), 0);
}

TEST(SchedModelSettings, ADeviceTheModelDoesNotAllowOrNoAllowedDeviceFailsAtOnce) {
  Loads loads;
  SimCluster sim(ThreeCards(loads));
  sim.specs["pinned"].allowed_devices = {"cuda:2"};
  sim.specs["pair"].allowed_devices = {"cuda:7", "cuda:9"};  // not on this machine

  auto named = sim.Submit("pinned/0", "pinned", Priority::kNormal, {}, "cuda:0");
  ASSERT_FALSE(named.ok());
  EXPECT_EQ(named.error().kind, ErrorKind::kBadInput);
  EXPECT_EQ(named.error().code, "device_not_allowed");
  EXPECT_NE(named.error().message.find("cuda:0"), std::string::npos) << named.error().message;
  EXPECT_NE(named.error().message.find("cuda:2"), std::string::npos) << named.error().message;
  EXPECT_TRUE(sim.Submit("pinned/1", "pinned", Priority::kNormal, {}, "cuda:2").ok());
  EXPECT_TRUE(sim.Submit("pinned/2", "pinned", Priority::kNormal, {}, "auto").ok());

  auto nowhere = sim.Submit("pair/0", "pair");
  ASSERT_FALSE(nowhere.ok());
  EXPECT_EQ(nowhere.error().code, "no_allowed_device");
  EXPECT_NE(nowhere.error().message.find("cuda:7"), std::string::npos) << nowhere.error().message;
  EXPECT_EQ(sim.scheduler->Load({"pair", "", {}}).error().code, "no_allowed_device");
  EXPECT_EQ(sim.scheduler->Load({"pinned", "cuda:1", {}}).error().code, "device_not_allowed");
  EXPECT_FALSE(sim.scheduler->FindJob("pair/0")) << "never queued";

  sim.Advance(60'000);
  EXPECT_EQ(sim.State("pinned/1"), JobState::kCompleted);
  EXPECT_EQ(sim.State("pinned/2"), JobState::kCompleted);
  EXPECT_EQ(loads.devices["pinned"], (std::multiset<std::string>{"cuda:2", "cuda:2"}));
}

TEST(SchedModelSettings, AModelThatListsTheCpuRunsThereBesideGpusWithoutAllowCpu) {
  Loads loads;
  SimClusterOptions o = ThreeCards(loads);
  o.config.allow_cpu = false;
  o.config.cpu_cores = 4;
  SimCluster sim(std::move(o));
  sim.specs["pinned"].allowed_devices = {"cpu"};
  ASSERT_TRUE(sim.Submit("pinned/0", "pinned").ok());
  ASSERT_TRUE(sim.Submit("free/0", "free").ok());
  sim.Advance(60'000);
  EXPECT_EQ(sim.State("pinned/0"), JobState::kCompleted);
  EXPECT_EQ(sim.State("free/0"), JobState::kCompleted);
  EXPECT_EQ(loads.devices["pinned"], std::multiset<std::string>{"cpu"});
  EXPECT_EQ(loads.devices["free"].count("cpu"), 0u) << "the CPU is not everyone's device";
}

TEST(SchedModelSettings, MaxStreamsCapsARunnerWhereTheMemoryAllowsMore) {
  Loads loads;
  SimClusterOptions o = ThreeCards(loads);
  o.cards = {SimCard{"cuda:0", 80 * kGiB}};
  o.config.placement.max_streams_per_runner = 4;
  SimCluster sim(std::move(o));
  sim.specs["pinned"].max_streams = 2;
  sim.specs["free"].max_streams = 6;  // above the server-wide 4: the model's own figure
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(sim.Submit("pinned/" + std::to_string(i), "pinned").ok());
    ASSERT_TRUE(sim.Submit("free/" + std::to_string(i), "free").ok());
  }
  sim.Advance(0);
  sim.Advance(5'000);  // loaded, every job running
  const SchedulerSnapshot snap = sim.scheduler->Snapshot();
  EXPECT_EQ(snap.running, 12u);
  std::map<std::string, std::vector<int>> streams;
  for (const auto& r : snap.runners) streams[r.view.model].push_back(r.view.streams);
  EXPECT_EQ(streams["pinned"], (std::vector<int>{2, 2, 2})) << "three runners of two streams";
  EXPECT_EQ(streams["free"], (std::vector<int>{6})) << "one runner of six";
  sim.Advance(600'000);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(sim.State("pinned/" + std::to_string(i)), JobState::kCompleted);
  }
}

TEST(SchedModelSettings, TheModelsKeepAliveIsTheDefaultAndAJobsOwnWins) {
  Loads loads;
  SimClusterOptions o = ThreeCards(loads);
  o.config.default_keep_alive_s = 600;
  SimCluster sim(std::move(o));
  sim.specs["pinned"].keep_alive_s = 30;
  auto runners_of = [&](const std::string& model) {
    int n = 0;
    for (const auto& r : sim.scheduler->Snapshot().runners) n += r.view.model == model;
    return n;
  };
  ASSERT_TRUE(sim.Submit("pinned/0", "pinned").ok());
  ASSERT_TRUE(sim.Submit("free/0", "free").ok());
  sim.Advance(22'000);  // loaded at 2 s, done at 22 s
  ASSERT_EQ(sim.State("pinned/0"), JobState::kCompleted);
  sim.AdvanceTo(22'000 + 29'000);
  EXPECT_EQ(runners_of("pinned"), 1);
  sim.AdvanceTo(22'000 + 31'000);
  EXPECT_EQ(runners_of("pinned"), 0) << "unloaded 30 s after its job, the model's keep-alive";
  EXPECT_EQ(runners_of("free"), 1) << "the server's 600 s for a model that declares none";

  // A job's own keep-alive still wins, and so does a load's.
  ASSERT_TRUE(sim.Submit("pinned/1", "pinned", Priority::kNormal, 120).ok());
  sim.Advance(22'000);
  ASSERT_EQ(sim.State("pinned/1"), JobState::kCompleted);
  sim.Advance(60'000);
  EXPECT_EQ(runners_of("pinned"), 1) << "the job asked for 120 s";
  sim.Advance(61'000);
  EXPECT_EQ(runners_of("pinned"), 0);
  ASSERT_TRUE(sim.scheduler->Load({"pinned", "", {}}).ok());
  sim.Advance(2'000);
  const auto snap = sim.scheduler->Snapshot();
  for (const auto& r : snap.runners) {
    if (r.view.model == "pinned") {
      EXPECT_EQ(r.keep_alive_s, 30) << "a load without keep-alive";
    }
  }
}

TEST(SchedModelSettings, PlacementUsesOnlyAllowedDevicesAndTheModelsStreamCap) {
  auto gpu = [](const std::string& name) {
    DeviceView d;
    d.name = name;
    d.memory.allocatable = d.memory.available = 20 * kGiB;
    return d;
  };
  DeviceView cpu;
  cpu.name = "cpu";
  cpu.cpu = true;
  cpu.cores.cores = cpu.cores.available_threads = 8;
  cpu.only_if_allowed = true;
  const std::vector<DeviceView> devices{gpu("cuda:0"), gpu("cuda:1"), cpu};
  PlacementRequest req;
  req.model = "m";
  req.weights_bytes = kGiB;
  req.stream_bytes = 256 * kMiB;
  EXPECT_EQ(Place(req, devices, {}, {}, 0).device, "cuda:0");
  req.allowed_devices = {"cuda:1"};
  EXPECT_EQ(Place(req, devices, {}, {}, 0).device, "cuda:1");
  req.allowed_devices = {"cpu"};
  EXPECT_EQ(Place(req, devices, {}, {}, 0).device, "cpu");
  req.allowed_devices = {"cuda:5"};
  EXPECT_EQ(Place(req, devices, {}, {}, 0).action, PlacementAction::kWait);
  req.allowed_devices = {};
  EXPECT_FALSE(DeviceAllowed(req, cpu)) << "the CPU only for models that list it";

  // A runner of the model with all its streams busy: a stream more, unless the model caps it.
  RunnerView busy;
  busy.id = 4;
  busy.model = "m";
  busy.device = "cuda:0";
  busy.streams = busy.busy_streams = 2;
  busy.weights_bytes = kGiB;
  busy.stream_bytes = 256 * kMiB;
  EXPECT_EQ(Place(req, devices, {busy}, {}, 0).action, PlacementAction::kAddStream);
  req.max_streams = 2;
  EXPECT_EQ(Place(req, devices, {busy}, {}, 0).action, PlacementAction::kNewRunner);
}

}  // namespace
}  // namespace steno::sched
