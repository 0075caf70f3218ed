// GET /v1/events: the dashboard's one live stream (Server-Sent Events). `hello` first (the last
// 15 minutes of GPU memory, from MemoryHistory), then a `snapshot` right away and every second
// (GPUs with their ledger, runners, queue, recent jobs with progress and real-time factor — this
// node's synchronous requests among them —, job counts (the store's), active alerts; on a node
// sharing its store, "nodes" as GET /v1/cluster lists them, with "nodes_error" when they could not
// be read). With ?job=ID the same stream also carries that job's state, progress and segment
// events, as GET /v1/jobs/{id}/events does, so a page that submitted a job follows it without a
// second stream. web/dashboard/ is its client; the field names are its contract.
#include <algorithm>
#include <map>
#include <set>

#include "api/memory_history.h"
#include "api/routes.h"
#include "api/sse.h"

namespace steno::api {
namespace {

constexpr int kJobsShown = 50;

ojson GpusJson(Context& ctx, const sched::SchedulerSnapshot& snap) {
  std::map<int, const gpu::DeviceSample*> by_index;
  auto samples = ctx.service.runners().Devices();
  if (samples.ok()) {
    for (const auto& s : *samples) by_index[s.index] = &s;
  }
  ojson gpus = ojson::array();
  for (const auto& d : snap.devices) {
    if (d.cpu) continue;
    const auto& m = d.memory;
    auto it = by_index.find(m.device_index);
    const bool present = it != by_index.end();
    ojson g = LedgerJson(d);
    g["name"] = present ? it->second->name : d.name;
    g["simulated"] = present && it->second->simulated;
    g["steno"] = m.allocated;
    g["other"] = m.external;
    g["present"] = present;
    gpus.push_back(std::move(g));
  }
  return gpus;
}

// Jobs not final first (in queue order: priority, then oldest), then the newest finished ones;
// the stored jobs and this node's synchronous requests' runs (kept in memory only) together.
std::vector<Job> RecentJobs(Context& ctx) {
  std::vector<Job> active, ended;
  for (Job& j : ctx.service.sync().List()) (IsFinal(j.state) ? ended : active).push_back(j);
  store::JobFilter pending;
  pending.states = {JobState::kPending, JobState::kLoading, JobState::kProcessing};
  pending.order = store::ListOrder::kQueueOrder;
  pending.limit = kJobsShown;
  if (auto page = ctx.service.jobs().List(pending); page.ok()) {
    for (auto& j : page->jobs) active.push_back(std::move(j));
  }
  std::stable_sort(active.begin(), active.end(), [](const Job& a, const Job& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.created_ms < b.created_ms;
  });
  std::set<std::string> seen;
  std::vector<Job> out;
  for (auto& j : active) {
    if (out.size() >= static_cast<size_t>(kJobsShown)) break;
    seen.insert(j.id);
    out.push_back(std::move(j));
  }
  store::JobFilter recent;
  recent.limit = kJobsShown;
  if (auto page = ctx.service.jobs().List(recent); page.ok()) {
    for (auto& j : page->jobs) ended.push_back(std::move(j));
  }
  std::stable_sort(ended.begin(), ended.end(),
                   [](const Job& a, const Job& b) { return a.created_ms > b.created_ms; });
  for (auto& j : ended) {
    if (out.size() >= static_cast<size_t>(kJobsShown)) break;
    if (seen.insert(j.id).second) out.push_back(std::move(j));
  }
  return out;
}

ojson JobsJson(Context& ctx, int64_t now) {
  const auto jobs = RecentJobs(ctx);
  std::vector<std::string> ids;
  for (const auto& j : jobs) ids.push_back(j.id);
  const auto live = ctx.service.events().Live(ids);
  ojson out = ojson::array();
  for (const auto& j : jobs) {
    ojson o = JobJson(j);
    const auto it = live.find(j.id);
    const server::JobService::LiveInfo info =
        it != live.end() ? it->second : server::JobService::LiveInfo{};
    ojson progress = nullptr;
    if (j.state == JobState::kCompleted) {
      progress = 100;
    } else if (j.state == JobState::kProcessing) {
      progress = info.percent.value_or(0);
    } else if (j.state == JobState::kPending || j.state == JobState::kLoading) {
      progress = 0;
    }
    o["progress"] = progress;
    o["audio_seconds"] = info.audio_seconds ? ojson(*info.audio_seconds) : ojson(nullptr);
    const bool ran = j.started_ms > 0 && (j.state == JobState::kProcessing || IsFinal(j.state));
    const int64_t end = IsFinal(j.state) && j.finished_ms > 0 ? j.finished_ms : now;
    const double processing_s = ran ? static_cast<double>(end - j.started_ms) / 1000.0 : -1;
    o["processing_s"] = processing_s >= 0 ? ojson(processing_s) : ojson(nullptr);
    o["rtf"] = processing_s >= 0 && j.state == JobState::kCompleted && info.audio_seconds &&
                       *info.audio_seconds > 0
                   ? ojson(processing_s / *info.audio_seconds)
                   : ojson(nullptr);
    out.push_back(std::move(o));
  }
  return out;
}

ojson CountsJson(Context& ctx) {
  ojson counts = ojson::object();
  auto c = ctx.service.jobs().Counts();
  for (JobState s : {JobState::kPending, JobState::kLoading, JobState::kProcessing,
                     JobState::kCompleted, JobState::kFailed, JobState::kCancelled}) {
    counts[JobStateName(s)] = c.ok() ? (*c)[s] : 0;
  }
  return counts;
}

ojson AlertsJson(Context& ctx) {
  if (!ctx.options.alerts_json) return ojson::array();
  auto parsed = ojson::parse(ctx.options.alerts_json(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.contains("alerts")) return ojson::array();
  return parsed["alerts"];
}

// The history, with the snapshot's point for a GPU it has none of yet (a page opened in the
// first seconds of a start): every GPU's chart starts with at least one point.
ojson HistoryWithNow(ojson history, const ojson& snapshot) {
  auto& devices = history["devices"];
  for (const auto& g : snapshot["gpus"]) {
    const std::string name = g["device"];
    if (devices.contains(name)) continue;
    devices[name] = ojson::array({{{"t", snapshot["time_ms"]},
                                   {"total", g["total"]},
                                   {"reserved", g["reserved"]},
                                   {"steno", g["steno"]},
                                   {"other", g["other"]},
                                   {"available", g["available"]}}});
  }
  return history;
}

ojson ComputeSnapshot(Context& ctx) {
  const int64_t now = UnixMillis();
  const auto snap = ctx.service.runners().Snapshot();
  ojson runners = ojson::array();
  for (const auto& r : snap.runners) runners.push_back(RunnerJson(r, snap, now));
  AddLiveSessionCounts(ctx, runners);
  ojson by_priority = ojson::object();
  for (int p = 0; p < 3; ++p) {
    by_priority[PriorityName(static_cast<Priority>(p))] = snap.queued_by_priority[p];
  }
  ojson out = {
      {"time_ms", now},
      {"gpus", GpusJson(ctx, snap)},
      {"cpu", CpuJson(snap)},
      {"runners", std::move(runners)},
      {"queue", {{"queued", snap.queued}, {"running", snap.running}, {"by_priority", by_priority}}},
      {"jobs", JobsJson(ctx, now)},
      {"counts", CountsJson(ctx)},
      {"alerts", AlertsJson(ctx)},
      {"live_sessions", LiveSessionsJson(ctx)}};
  // Only a node sharing its store shows the cluster (one read of the nodes table per snapshot).
  if (ctx.service.cluster()) {
    auto nodes = ClusterNodesJson(ctx);
    out["nodes"] = nodes.ok() ? std::move(*nodes) : ojson::array();
    if (!nodes.ok()) {
      out["nodes_error"] = {{"code", nodes.error().code}, {"message", nodes.error().message}};
    }
  }
  return out;
}

}  // namespace

ojson DashboardSnapshot(Context& ctx) {
  auto& cache = ctx.snapshots;
  const int64_t now = SteadyMillis();
  // Held while computing: streams ticking together wait for one computation.
  std::lock_guard<std::mutex> lock(cache.mu);
  if (cache.at_ms == 0 || now - cache.at_ms >= SnapshotCache::kMaxAgeMs) {
    cache.value = ComputeSnapshot(ctx);
    cache.at_ms = now;
  }
  return cache.value;
}

namespace {

void Events(Context& ctx, Call& call) {
  auto stream = std::make_shared<SseStream>();
  if (call.req.has_param("job")) {
    const std::string id = call.req.get_param_value("job");
    if (auto st = SubscribeJob(ctx.service, id, stream); !st) {
      ApiError e = FromError(st.error());
      e.param = "job";
      return SendError(call.res, e);
    }
  }
  SseOptions options;
  options.keepalive = std::chrono::milliseconds(ctx.options.sse_keepalive_ms);
  options.end_with_job = false;
  options.tick = std::chrono::milliseconds(1'000);
  // The first tick sends hello (before any job frame the subscription queued is written, the
  // hello goes out with them) and the first snapshot; later ticks send snapshots.
  auto said_hello = std::make_shared<bool>(false);
  Context* c = &ctx;
  options.tick_frame = [c, said_hello](uint64_t id) {
    ojson snapshot = DashboardSnapshot(*c);
    std::string out;
    if (!*said_hello) {
      *said_hello = true;
      out = SseFrame("hello", id,
                     {{"time_ms", snapshot["time_ms"]},
                      {"snapshot_interval_ms", 1000},
                      {"history", HistoryWithNow(c->history.Json(), snapshot)}});
    }
    return out + SseFrame("snapshot", id, snapshot);
  };
  ServeSse(call, std::move(stream), ctx.stopping, std::move(options));
}

}  // namespace

void AddEventRoutes(ApiRouter& router, Context& ctx) {
  router.Add("GET", "/v1/events", [&ctx](Call& c) { Events(ctx, c); });
}

}  // namespace steno::api
