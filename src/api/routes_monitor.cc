// Monitoring: GET /api/memory_status (the scheduler's ledger per device, with the original
// memory-manager design's field names), GET /v1/gpus (device samples, the schema of
// `steno gpus --json`), GET /metrics (Prometheus, with the data dir's free disk space and the
// upload margin), GET /healthz and GET /readyz. The health probes need no API key
// (orchestrators call them without one).

#include <fmt/format.h>

#include "api/routes.h"
#include "gpu/owner_process.h"
#include "gpu/sample_json.h"
#include "store/disk_space.h"

namespace steno::api {
namespace {

void MemoryStatus(Context& ctx, Call& call) {
  const auto snap = ctx.service.runners().Snapshot();
  ojson gpus = ojson::array();
  for (const auto& d : snap.devices) {
    if (!d.cpu) gpus.push_back(LedgerJson(d));
  }
  SendJson(call.res, 200,
           {{"devices", std::move(gpus)}, {"cpu", CpuJson(snap)}, {"timestamp_ms", UnixMillis()}});
}

void Gpus(Context& ctx, Call& call) {
  auto devices = ctx.service.runners().Devices();
  if (!devices.ok()) return SendError(call.res, FromError(devices.error()));
  ojson data = ojson::array();
  const auto live = ctx.live.Get();
  const auto snap = ctx.service.runners().Snapshot();
  for (const auto& s : *devices) {
    ojson d = DeviceJson(s, *live);
    for (const auto& l : snap.devices) {
      if (!l.cpu && l.name == gpu::DeviceName(s)) d["compute"] = ComputeJson(l.compute);
    }
    data.push_back(std::move(d));
  }
  SendJson(call.res, 200, {{"object", "list"}, {"data", std::move(data)}});
}

void Metrics(Context& ctx, Call& call) {
  const auto snap = ctx.service.runners().Snapshot();
  auto devices = ctx.service.runners().Devices();
  auto counts = ctx.service.jobs().Counts();
  const auto live = ctx.live.Get();
  const auto& o = *live;
  std::string text = ctx.service.metrics().RenderPrometheus(
      snap, devices.ok() ? *devices : std::vector<gpu::DeviceSample>{},
      counts.ok() ? *counts : store::JobCounts{}, o.reserve, o.safety_factor);
  if (auto space = store::DiskSpaceOf(ctx.service.blobs().dir()); space.ok()) {
    text += fmt::format(
        "# HELP steno_disk_free_bytes Free space on the filesystem of the data dir's uploads.\n"
        "# TYPE steno_disk_free_bytes gauge\nsteno_disk_free_bytes {}\n"
        "# HELP steno_disk_total_bytes Size of that filesystem.\n"
        "# TYPE steno_disk_total_bytes gauge\nsteno_disk_total_bytes {}\n",
        space->free_bytes, space->total_bytes);
  }
  text += fmt::format(
      "# HELP steno_disk_min_free_bytes Uploads are refused (507) below this free space "
      "(--min-free-disk; 0: only when full).\n"
      "# TYPE steno_disk_min_free_bytes gauge\nsteno_disk_min_free_bytes {}\n",
      o.min_free_disk_bytes);
  text += ctx.service.sessions().RenderPrometheus();
  if (o.alerts_metrics) text += o.alerts_metrics();
  call.res.status = 200;
  call.res.set_content(text, "text/plain; version=0.0.4; charset=utf-8");
}

void Alerts(Context& ctx, Call& call) {
  const auto& o = ctx.options;
  call.res.status = 200;
  call.res.set_content(o.alerts_json ? o.alerts_json() : std::string("{\"alerts\":[]}"),
                       "application/json");
}

void Health(Context&, Call& call) {
  SendJson(call.res, 200, {{"status", "ok"}});
}

void Ready(Context& ctx, Call& call) {
  if (ctx.stopping || !ctx.service.jobs().admitting()) {
    return SendError(call.res,
                     MakeApiError(503, "shutting_down", "the server is not accepting jobs"));
  }
  SendJson(call.res, 200, {{"status", "ready"}});
}

}  // namespace

ojson DeviceJson(const gpu::DeviceSample& sample, const HttpOptions& options) {
  return gpu::SampleJson(sample, gpu::IsStenoProcess, options.reserve, options.safety_factor);
}

ojson LedgerJson(const sched::DeviceLedger& d) {
  const auto& m = d.memory;
  return {{"device", d.name},
          {"index", m.device_index},
          {"total", m.total},
          {"reserved", m.reserved},
          {"allocatable", m.allocatable},
          {"allocated", m.allocated},
          {"external", m.external},
          {"available", m.available},
          {"usage_percent", m.usage_percent},
          {"compute", ComputeJson(d.compute)}};
}

ojson ComputeJson(const sched::ConcurrencyView& c) {
  return {{"mode", c.mode},
          {"limit", c.limit > 0 ? ojson(c.limit) : ojson(nullptr)},
          {"running", c.running},
          {"throughput_audio_s_per_s", c.throughput},
          {"real_time_factor", c.real_time_factor},
          {"mean_running", c.mean_running},
          {"windows", c.windows}};
}

ojson CpuJson(const sched::SchedulerSnapshot& snap) {
  for (const auto& d : snap.devices) {
    if (!d.cpu) continue;
    return {{"device", d.name},
            {"cores", d.cores.cores},
            {"used_threads", d.cores.used_threads},
            {"available_threads", d.cores.available_threads},
            {"computing_threads", d.cores.busy_threads},
            {"compute", ComputeJson(d.compute)}};
  }
  return nullptr;
}

void AddMonitorRoutes(ApiRouter& router, Context& ctx) {
  router.Add("GET", "/api/memory_status", [&ctx](Call& c) { MemoryStatus(ctx, c); });
  router.Add("GET", "/v1/gpus", [&ctx](Call& c) { Gpus(ctx, c); });
  router.Add("GET", "/metrics", [&ctx](Call& c) { Metrics(ctx, c); });
  router.Add("GET", "/v1/alerts", [&ctx](Call& c) { Alerts(ctx, c); });
  router.Add(
      "GET", "/healthz", [&ctx](Call& c) { Health(ctx, c); }, /*is_public=*/true);
  router.Add(
      "GET", "/readyz", [&ctx](Call& c) { Ready(ctx, c); }, /*is_public=*/true);
}

}  // namespace steno::api
