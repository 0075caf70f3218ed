#include "server/job_service.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "core/log.h"
#include "core/paths.h"
#include "server/chunked_jobs.h"
#include "server/held_jobs.h"
#include "server/job_end_signal.h"
#include "server/job_writer.h"
#include "server/lease_keeper.h"
#include "server/queue_stats.h"
#include "server/runtime_config.h"
#include "server/runtime_slot.h"
#include "store/data_dir.h"
#include "store/open_job_store.h"

namespace steno::server {
namespace {

// Shared store: how often the claim loop looks at the queue when no notification woke it.
constexpr int64_t kClaimPollMs = 500;

// The runtime options a service runs with: the service bounds the queue itself (max_queue, see
// JobRequests); the scheduler must not refuse what the store already holds, such as the pending
// jobs of a restart.
RuntimeOptions ServiceRuntime(RuntimeOptions runtime) {
  runtime.scheduler.queue.max_length = sched::kUnboundedQueue;
  return runtime;
}

std::string DefaultNode() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = 0;
  return std::string(host[0] ? host : "steno") + ":" + std::to_string(getpid());
}

}  // namespace

// The parts, in the order they are built; ~Impl takes them down in the order that is safe
// (runtime first: its hooks feed the writer; then the threads; then the rest).
struct JobService::Impl {
  ServiceOptions options;
  std::shared_ptr<store::JobStore> jobs;
  std::shared_ptr<store::ClusterStore> cluster_store;  // null: single-node store
  std::optional<store::BlobStore> blobs;
  ServiceMetrics metrics;
  QueueStats stats;
  JobEndSignal ended;
  HeldJobs held;
  RuntimeSlot runtime;
  std::unique_ptr<LiveEvents> live;
  std::unique_ptr<ChunkedJobs> chunked;
  std::unique_ptr<SyncRuns> sync;          // synchronous requests' runs (in memory only)
  std::unique_ptr<LiveSessions> sessions;  // live transcription sessions (in memory only)
  std::unique_ptr<ClusterLink> link;       // with cluster_store
  std::unique_ptr<JobRequests> requests;
  std::unique_ptr<JobWriter> writer;
  std::unique_ptr<RunnerControl> runners;
  std::unique_ptr<ProxyHolds> proxies;
  std::unique_ptr<LeaseKeeper> leases;
  std::unique_ptr<ClusterMember> member;  // with cluster_store
  std::atomic<bool> shut_down{false};

  ~Impl() {
    (void)runtime.Take();  // stopped here if Shutdown did not run
    if (chunked) chunked->Stop();
    if (link) link->Stop();
    if (leases) leases->Stop();
    if (writer) writer->Stop();
  }

  // Builds every part around the open store; starts nothing.
  void Assemble(size_t queue_bound, const sched::QueueConfig& queue);
  // Hands every pending job to the scheduler again, in queue order (single-node store).
  Status ResubmitPending();
};

void JobService::Impl::Assemble(size_t queue_bound, const sched::QueueConfig& queue) {
  // The lookup runs only once `sync` exists (after Assemble, with the first subscription).
  live =
      std::make_unique<LiveEvents>(*jobs, [this](const std::string& id) { return sync->Get(id); });
  ChunkedJobsOptions co;
  co.cap = options.chunk_streams;
  co.work_dir = options.data_dir + "/chunks";
  co.default_timeout_s = options.runtime.scheduler.default_timeout_s;
  // A chunked job's own changes go where the scheduler's changes of a job go (hooks.on_job).
  chunked =
      std::make_unique<ChunkedJobs>(std::move(co), runtime, [this](const sched::JobUpdate& u) {
        metrics.OnJob(u);
        if (sync->OnJob(u)) return;  // a synchronous request run as chunks
        writer->Enqueue(u);
      });
  sync = std::make_unique<SyncRuns>(options.node, runtime, *live, stats, *chunked);
  sessions = std::make_unique<LiveSessions>(options.node, runtime, stats);
  if (cluster_store) {
    link = std::make_unique<ClusterLink>(options.node, options.publish_ms, kClaimPollMs,
                                         *cluster_store);
  }
  JobRequestParts rp;
  rp.jobs = jobs.get();
  rp.blobs = &*blobs;
  rp.cluster = cluster_store.get();
  rp.link = link.get();
  rp.runtime = &runtime;
  rp.live = live.get();
  rp.sync = sync.get();
  rp.stats = &stats;
  rp.ended = &ended;
  rp.queue_bound = queue_bound;
  rp.queue = queue;
  rp.limits = options.limits;
  rp.vad = options.vad;
  rp.chunked = chunked.get();
  rp.results_dir = store::ResultsDir(options.data_dir);
  requests = std::make_unique<JobRequests>(std::move(rp));
  writer = std::make_unique<JobWriter>(JobWriterParts{options.node, options.lease_ms, jobs.get(),
                                                      &held, live.get(), &stats, &ended, &runtime,
                                                      link.get(), chunked.get()});
  JobRequests* req = requests.get();
  proxies = std::make_unique<ProxyHolds>(runtime);
  runners = std::make_unique<RunnerControl>(runtime, metrics, [req] { return req->admitting(); });
  leases = std::make_unique<LeaseKeeper>(options.node, options.lease_ms, *jobs, held, *writer,
                                         link.get());
  if (link) {
    ClusterMemberParts mp;
    mp.node = options.node;
    mp.lease_ms = options.lease_ms;
    mp.publish_ms = options.publish_ms;
    mp.jobs = jobs.get();
    mp.cluster = cluster_store.get();
    mp.link = link.get();
    mp.runtime = &runtime;
    mp.live = live.get();
    mp.held = &held;
    mp.writer = writer.get();
    mp.requests = requests.get();
    member = std::make_unique<ClusterMember>(std::move(mp));
  }
}

Status JobService::Impl::ResubmitPending() {
  store::JobFilter filter;
  filter.states = {JobState::kPending};
  filter.order = store::ListOrder::kQueueOrder;
  filter.limit = 1000;
  int resubmitted = 0;
  while (true) {
    auto page = jobs->List(filter);
    if (!page.ok()) return page.error();
    for (const Job& j : page->jobs) {
      if (auto st = requests->Schedule(j); !st) {
        spdlog::warn("job {} could not be queued again: {}", j.id, st.error().message);
        if (st.error().kind != ErrorKind::kUnavailable) {
          // Its model is gone, or its params no longer valid: it can never run.
          (void)jobs->Claim({options.node, options.lease_ms, j.id, {}});
          (void)jobs->Fail(j.id, options.node, st.error());
        }
      } else {
        ++resubmitted;
      }
    }
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
  }
  if (resubmitted > 0) spdlog::info("{} pending jobs queued from the store", resubmitted);
  return {};
}

JobService::JobService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<JobService>> JobService::Open(ServiceOptions options) {
  auto impl = std::make_unique<Impl>();
  if (options.data_dir.empty()) options.data_dir = DataDir();
  if (options.node.empty()) options.node = DefaultNode();
  if (options.runtime.data_dir.empty()) options.runtime.data_dir = options.data_dir;
  auto opened = store::OpenJobStore(options.store, options.data_dir);
  if (!opened.ok()) return opened.error();
  impl->jobs = std::move(opened->jobs);
  impl->cluster_store = std::move(opened->cluster);
  impl->blobs.emplace(std::move(opened->blobs));
  if (opened->recovered > 0) {
    spdlog::info("requeued {} jobs a previous run left unfinished", opened->recovered);
  }
  if (impl->cluster_store) {
    spdlog::info("shared job store (this node: {})", options.node);
  }
  // What runners measured before: the estimates of the next loads.
  if (auto footprints = impl->jobs->ListFootprints(); footprints.ok()) {
    for (const auto& f : *footprints) {
      options.runtime.scheduler.known_footprints[{f.model, f.device_name}] =
          sched::MemoryEstimate{f.weights_bytes, f.stream_bytes, true};
    }
  }
  options.runtime = ServiceRuntime(std::move(options.runtime));
  impl->options = options;
  impl->Assemble(options.max_queue, options.runtime.scheduler.queue);

  Impl* raw = impl.get();
  // Before the runtime: claims find no room until it exists.
  if (impl->link) {
    if (auto st = impl->link->Start(impl->member->Hooks()); !st) return st.error();
  }
  impl->writer->Start();
  options.runtime.on_unreleased = [raw](const std::string& model, const std::string& device,
                                        const runner::ReleaseReport& report) {
    raw->runners->OnUnreleased(model, device, report);
  };
  sched::SchedulerHooks hooks;
  hooks.on_job = [raw](const sched::JobUpdate& u) {
    if (u.kind == sched::JobUpdate::Kind::kState && u.job.state == JobState::kLoading) {
      // In the scheduler's order (its thread), sub-jobs of chunked jobs included.
      spdlog::debug("job {} placed on runner {} ({}), attempt {}", u.job.id, u.runner_id, u.device,
                    u.job.attempt);
    }
    if (raw->chunked->OnJob(u)) return;  // a chunked job's sub-job: never stored
    if (raw->proxies->OnJob(u)) return;  // a relayed request's hold: never stored
    raw->metrics.OnJob(u);
    if (raw->sync->OnJob(u)) return;      // a synchronous request's run: kept in memory only
    if (raw->sessions->OnJob(u)) return;  // a live session's job: kept in memory only
    raw->writer->Enqueue(u);
  };
  hooks.on_footprint = [raw](const sched::FootprintUpdate& f) { raw->writer->Enqueue(f); };
  hooks.on_runner = [raw](const sched::RunnerUpdate& r) { raw->runners->OnRunner(r); };
  auto runtime = Runtime::Start(options.runtime, std::move(hooks));
  if (!runtime.ok()) return runtime.error();  // ~Impl stops the writer and the link
  impl->runtime.Fill(std::move(runtime).value());
  impl->leases->Start();

  if (impl->link) {
    // Shared store: the claim loop takes pending jobs as this node has room for them.
    impl->link->WakeClaims();
  } else if (auto st = impl->ResubmitPending(); !st) {
    return st.error();
  }
  return std::unique_ptr<JobService>(new JobService(std::move(impl)));
}

JobService::~JobService() {
  Shutdown(std::chrono::milliseconds(0));
}

JobRequests& JobService::jobs() {
  return *impl_->requests;
}

LiveEvents& JobService::events() {
  return *impl_->live;
}

RunnerControl& JobService::runners() {
  return *impl_->runners;
}

ProxyHolds& JobService::proxies() {
  return *impl_->proxies;
}

LiveSessions& JobService::sessions() {
  return *impl_->sessions;
}

SyncRuns& JobService::sync() {
  return *impl_->sync;
}

ClusterMember* JobService::cluster() {
  return impl_->member.get();
}

ServiceMetrics& JobService::metrics() {
  return impl_->metrics;
}

store::BlobStore& JobService::blobs() {
  return *impl_->blobs;
}

const std::string& JobService::node() const {
  return impl_->options.node;
}

void JobService::StopAdmitting() {
  impl_->requests->StopAdmitting();
  impl_->runtime.With(
      [](Runtime& rt) {
        rt.scheduler().StopAdmitting();
        return 0;
      },
      0);
}

Result<ServerModelChanges> JobService::Reconfigure(const ServiceOptions& options) {
  const sched::SchedulerConfig scheduler = SchedulerConfigFor(ServiceRuntime(options.runtime));
  auto changes = impl_->runtime.With(
      [&](Runtime& rt) { return rt.ReplaceServerModels(options.runtime.server_models); },
      Result<ServerModelChanges>(
          Error(ErrorKind::kUnavailable, "shutting_down", "the service is shutting down")));
  if (!changes.ok()) return changes;
  impl_->requests->Reconfigure(options.max_queue, scheduler.queue, options.limits);
  impl_->runtime.With(
      [&](Runtime& rt) {
        rt.scheduler().Reconfigure(scheduler);
        return 0;
      },
      0);
  return changes;
}

JobService::ShutdownReport JobService::Shutdown(std::chrono::milliseconds grace) {
  Impl& s = *impl_;
  ShutdownReport report;
  if (s.shut_down.exchange(true)) return report;  // done before
  StopAdmitting();
  // Live sessions end now (their clients get a close frame), not after the grace: they would
  // run for as long as their clients keep them.
  s.sessions->StopAdmitting();
  // Runs in progress: the scheduler's count, or the jobs this node holds (the store may already
  // show a run as processing while the scheduler's published snapshot does not yet).
  auto running_now = [&s] {
    const size_t scheduled =
        s.runtime.With([](Runtime& rt) { return rt.scheduler().Snapshot().running; }, size_t{0});
    return std::max(scheduled, s.held.Count());
  };
  const size_t running_at_start = running_now();
  const auto deadline = std::chrono::steady_clock::now() + grace;
  size_t running = running_at_start;
  while (running > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    running = running_now();
  }
  report.finished_in_grace =
      static_cast<int>(running_at_start - std::min(running, running_at_start));
  // Runners stop; what they report while dying is not written (JobWriter::Discard). Readers are
  // answered meanwhile from the parked snapshot: no lock is held while the runtime stops.
  s.writer->Discard();
  s.runners->Park();
  if (auto runtime = s.runtime.Take()) report.runners = runtime->Stop();
  s.chunked->Stop();  // the jobs it ran go back to the queue below, and are planned again
  s.runners->Unpark();
  s.sync->Abandon();  // synchronous requests cut short: nothing of them to keep
  s.sessions->Abandon();
  s.writer->Stop();
  s.leases->Stop();
  // Whatever is still loading/processing under our lease goes back to the queue for the next
  // start: its run was cut short, not lost.
  store::JobFilter filter;
  filter.states = {JobState::kLoading, JobState::kProcessing};
  filter.lease_owner = s.options.node;
  filter.limit = 1000;
  while (true) {
    auto page = s.jobs->List(filter);
    if (!page.ok()) break;
    for (const Job& j : page->jobs) {
      store::RequeueRequest r;
      r.id = j.id;
      r.owner = s.options.node;
      r.reason = Error(ErrorKind::kUnavailable, "shutdown", "the server stopped during the run");
      if (s.jobs->Requeue(r)) ++report.returned;
    }
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
  }
  if (s.link) {
    // Handed back: the other nodes take them now, not after a lease runs out.
    if (report.returned > 0) s.link->AnnounceJobs();
    s.link->Stop();  // and this node leaves the nodes table
  }
  if (auto counts = s.jobs->Count(); counts.ok()) report.pending = (*counts)[JobState::kPending];
  return report;
}

std::string JobService::ShutdownReport::Summary() const {
  std::string out = runners.Summary() + "; " + std::to_string(returned) +
                    (returned == 1 ? " job" : " jobs") + " returned to the queue";
  if (pending > returned) out += " (" + std::to_string(pending) + " pending in all)";
  out += runners.clean ? "; shut down cleanly" : "; some runner memory was not released";
  return out;
}

}  // namespace steno::server
