#include "sim/sim_cluster.h"

namespace steno::sched::sim {

const std::vector<SimModel>& ReferenceModels() {
  static const std::vector<SimModel> models = {
      {"tiny", 256 * kMiB, 256 * kMiB, 2'000},   {"base", 512 * kMiB, 512 * kMiB, 4'000},
      {"small", 1536 * kMiB, 768 * kMiB, 8'000}, {"medium", 4 * kGiB, 1536 * kMiB, 15'000},
      {"large", 8 * kGiB, 3 * kGiB, 25'000},
  };
  return models;
}

std::vector<SimCard> ReferenceCards() {
  return {SimCard{"cuda:0", 24 * kGiB}, SimCard{"cuda:1", 24 * kGiB}, SimCard{"cuda:2", 12 * kGiB}};
}

uint64_t SplitMix::Next() {
  uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::vector<Arrival> MakeArrivals(const std::vector<SimModel>& models, int n, int64_t mean_gap_ms,
                                  uint64_t seed) {
  SplitMix rng(seed);
  std::vector<Arrival> out;
  out.reserve(static_cast<size_t>(n));
  int64_t t = 0;
  for (int i = 0; i < n; ++i) {
    const SimModel& m = models[rng.Below(models.size())];
    const uint64_t p = rng.Below(10);
    const Priority prio = p < 2 ? Priority::kHigh : p < 7 ? Priority::kNormal : Priority::kLow;
    out.push_back({m.name + "/" + std::to_string(i), m.name, prio, t});
    t += static_cast<int64_t>(rng.Below(static_cast<uint64_t>(2 * mean_gap_ms) + 1));
  }
  return out;
}

SimCluster::SimCluster(SimClusterOptions options) : backend(clock, options.cards, options.load_ms) {
  for (const auto& m : options.models) {
    specs[m.name] =
        ModelSpec{"/m/" + m.name + ".bin", MemoryEstimate{m.weights, m.stream, false}, "sim"};
    job_ms_[m.name] = m.job_ms;
  }
  if (options.wrap_backend) wrapper = options.wrap_backend(backend);
  RunnerBackend& used = wrapper ? *wrapper : static_cast<RunnerBackend&>(backend);
  scheduler = std::make_unique<Scheduler>(
      options.config, clock, used, backend.Devices(),
      [this](const std::string& m) -> Result<ModelSpec> {
        auto it = specs.find(m);
        if (it == specs.end()) return Error(ErrorKind::kNotFound, "model_not_found", m);
        return it->second;
      },
      std::move(options.hooks));
  backend.SetSink(scheduler->Sink());
  backend.SetJobPlan([this](const JobRunSpec& job, int) {
    SimJobPlan p;
    p.duration_ms = JobMs(job.job_id.substr(0, job.job_id.find('/')));
    return p;
  });
}

SimCluster::~SimCluster() {
  scheduler.reset();
}

int64_t SimCluster::JobMs(const std::string& model) const {
  auto it = job_ms_.find(model);
  return it == job_ms_.end() ? 1000 : it->second;
}

Status SimCluster::Submit(const std::string& id, const std::string& model, Priority priority,
                          std::optional<int> keep_alive_s, const std::string& device) {
  SubmitRequest r;
  r.job.id = id;
  r.job.model = model;
  r.job.priority = priority;
  r.job.params.keep_alive_s = keep_alive_s;
  r.job.params.device = device;
  r.input.path = "/audio/" + id + ".wav";
  return scheduler->Submit(std::move(r));
}

void SimCluster::AdvanceTo(int64_t ms) {
  steno::sched::AdvanceTo(*scheduler, clock, ms);
}

JobInfo SimCluster::Job(const std::string& id) const {
  auto j = scheduler->FindJob(id);
  return j ? *j : JobInfo{};
}

}  // namespace steno::sched::sim
