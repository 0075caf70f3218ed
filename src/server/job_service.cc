#include "server/job_service.h"

#include "server/job_service_impl.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include <whisper.h>

#include "core/log.h"
#include "core/paths.h"
#include "core/wall_clock.h"
#include "engine/formats.h"
#include "engine/transcript_json.h"
#include "sched/job_queue.h"
#include "store/data_dir.h"

namespace steno::server {
namespace {

// Shared store: how often the claim loop looks at the queue when no notification woke it.
constexpr int64_t kClaimPollMs = 500;

std::string DefaultNode() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = 0;
  return std::string(host[0] ? host : "steno") + ":" + std::to_string(getpid());
}

Error BadParam(const std::string& message) {
  return Error(ErrorKind::kBadInput, "bad_param", message);
}

// What a client may ask for, checked before anything is stored.
Status ValidateParams(const JobParams& p) {
  if (p.task != "transcribe" && p.task != "translate") {
    return BadParam("task must be transcribe or translate, not \"" + p.task + "\"");
  }
  if (p.language != "auto" && (p.language.empty() || whisper_lang_id(p.language.c_str()) < 0)) {
    return BadParam("unknown language \"" + p.language +
                    "\" (an ISO 639-1 code such as en, or auto)");
  }
  if (!(p.temperature >= 0.0f && p.temperature <= 1.0f)) {
    return BadParam("temperature must be between 0 and 1");
  }
  if (auto f = engine::ParseFormat(p.response_format); !f.ok()) return f.error();
  if (p.keep_alive_s && *p.keep_alive_s < -1) {
    return BadParam("keep_alive must be -1 (keep loaded), 0 or a number of seconds");
  }
  if (p.timeout_s && *p.timeout_s <= 0)
    return BadParam("timeout must be a positive number of seconds");
  if (!p.device.empty() && p.device != "auto" && p.device != "cpu") {
    const std::string prefix = "cuda:";
    const std::string rest =
        p.device.rfind(prefix, 0) == 0 ? p.device.substr(prefix.size()) : std::string();
    if (rest.empty() || rest.size() > 3 ||
        !std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Error(ErrorKind::kBadInput, "bad_device",
                   "device must be auto, cpu or cuda:N, not \"" + p.device + "\"");
    }
  }
  if (p.prompt.size() > 16 * 1024) return BadParam("prompt is longer than 16 KiB");
  return {};
}

}  // namespace

bool JobService::Impl::HasDevice(const std::string& device) {
  if (device.empty() || device == "auto") return true;
  auto snapshot = WithRuntime([](Runtime& rt) { return rt.scheduler().Snapshot(); },
                              sched::SchedulerSnapshot{});
  return std::any_of(snapshot.devices.begin(), snapshot.devices.end(),
                     [&](const sched::DeviceLedger& d) { return d.name == device; });
}

Status JobService::Impl::Schedule(const Job& job) {
  sched::SubmitRequest r;
  r.job = job;
  r.input.digest = job.blob_digest;
  if (shared_blobs) {
    // Uploaded on another node, perhaps: runners read a local file.
    auto path = shared_blobs->Materialise(*blobs, job.blob_digest);
    if (!path.ok()) return path.error();
    r.input.path = *path;
  } else {
    r.input.path = blobs->PathOf(job.blob_digest);
  }
  ++in_scheduler;
  auto st = WithRuntime([&](Runtime& rt) { return rt.scheduler().Submit(std::move(r)); },
                        Status(ShuttingDown()));
  if (!st) --in_scheduler;
  return st;
}

size_t JobService::Impl::QueueLength() {
  if (link) {
    auto pending = jobs->PendingByModel();
    if (!pending.ok()) return 0;
    int64_t n = 0;
    for (const store::PendingModel& m : *pending) n += m.pending;
    return static_cast<size_t>(n);
  }
  return static_cast<size_t>(std::max<int64_t>(0, in_scheduler.load()));
}

Result<store::BlobInfo> JobService::Impl::CopyIntoBlobs(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error(ErrorKind::kBadInput, "file_not_found", "cannot open " + path);
  }
  auto w = blobs->Begin();
  if (!w.ok()) return w.error();
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) {
      if (auto st = w->Append(std::string_view(buf.data(), in.gcount())); !st) return st.error();
    }
  }
  if (in.bad()) return Error(ErrorKind::kIo, "read_failed", "cannot read " + path);
  return w->Commit();
}

void JobService::Impl::DropUnreferenced(const std::string& digest) {
  auto refs = jobs->ReferencedBlobs();
  if (!refs.ok()) return;
  if (std::find(refs->begin(), refs->end(), digest) != refs->end()) return;
  (void)blobs->Remove(digest);
}

JobService::JobService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<JobService>> JobService::Open(ServiceOptions options) {
  auto impl = std::make_unique<Impl>();
  if (options.data_dir.empty()) options.data_dir = DataDir();
  if (options.node.empty()) options.node = DefaultNode();
  if (options.runtime.data_dir.empty()) options.runtime.data_dir = options.data_dir;
  if (!options.store.empty()) {
    if (auto st = impl->OpenShared(options); !st) return st.error();
  } else {
    auto stores = store::OpenDataDir(options.data_dir);
    if (!stores.ok()) return stores.error();
    impl->jobs = std::move(stores->jobs);
    impl->blobs.emplace(std::move(stores->blobs));
    if (stores->recovered > 0) {
      spdlog::info("requeued {} jobs a previous run left unfinished", stores->recovered);
    }
  }
  // What runners measured before: the estimates of the next loads.
  if (auto footprints = impl->jobs->ListFootprints(); footprints.ok()) {
    for (const auto& f : *footprints) {
      options.runtime.scheduler.known_footprints[{f.model, f.device_name}] =
          sched::MemoryEstimate{f.weights_bytes, f.stream_bytes, true};
    }
  }
  // The service bounds the queue itself (see Submit); the scheduler must not refuse what the
  // store already holds, such as the pending jobs of a restart.
  impl->queue_bound = options.runtime.scheduler.queue.max_length;
  options.runtime.scheduler.queue.max_length = std::numeric_limits<size_t>::max() / 2;
  impl->options = options;

  Impl* raw = impl.get();
  if (impl->pg) {
    // Before the runtime: claims find no room until it exists.
    ClusterHooks hooks;
    hooks.claim = [raw] { raw->ClaimPlaceable(); };
    hooks.on_event = [raw](const nlohmann::json& event) { raw->OnRemoteEvent(event); };
    hooks.tick = [raw] { raw->ResyncRemote(); };
    hooks.describe = [raw] {
      std::lock_guard<std::mutex> lock(raw->describe_mu);
      return raw->describe ? raw->describe() : store::NodeInfo{};
    };
    auto link = ClusterLink::Start(options.store, options.node, options.publish_ms, kClaimPollMs,
                                   *impl->pg, std::move(hooks));
    if (!link.ok()) return link.error();
    impl->link = std::move(link).value();
  }
  impl->writer = std::thread([raw] { raw->WriterLoop(); });
  options.runtime.on_unreleased = [raw](const std::string& model, const std::string& device,
                                        const runner::ReleaseReport& report) {
    raw->Incident(
        {RunnerIncident::Kind::kUnreleased, model, device, report.leftover_bytes, report.detail});
  };
  auto runtime = Runtime::Start(options.runtime, impl->Hooks());
  if (!runtime.ok()) {
    {
      std::lock_guard<std::mutex> lock(impl->mu);
      impl->stop = true;
    }
    impl->cv.notify_all();
    impl->writer.join();
    if (impl->link) impl->link->Stop();
    return runtime.error();
  }
  impl->runtime = std::move(runtime).value();
  impl->heartbeat = std::thread([raw] { raw->HeartbeatLoop(); });

  if (impl->link) {
    // Shared store: the claim loop takes pending jobs as this node has room for them.
    impl->link->WakeClaims();
    return std::unique_ptr<JobService>(new JobService(std::move(impl)));
  }
  // Every pending job goes to the scheduler again, in queue order.
  store::JobFilter filter;
  filter.states = {JobState::kPending};
  filter.order = store::ListOrder::kQueueOrder;
  filter.limit = 1000;
  int resubmitted = 0;
  while (true) {
    auto page = impl->jobs->List(filter);
    if (!page.ok()) return page.error();
    for (const Job& j : page->jobs) {
      if (auto st = impl->Schedule(j); !st) {
        spdlog::warn("job {} could not be queued again: {}", j.id, st.error().message);
        if (st.error().kind != ErrorKind::kUnavailable) {
          // Its model is gone, or its params no longer valid: it can never run.
          (void)impl->jobs->Claim({options.node, options.lease_ms, j.id, {}});
          (void)impl->jobs->Fail(j.id, options.node, st.error());
        }
      } else {
        ++resubmitted;
      }
    }
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
  }
  if (resubmitted > 0) spdlog::info("{} pending jobs queued from the store", resubmitted);
  return std::unique_ptr<JobService>(new JobService(std::move(impl)));
}

JobService::~JobService() {
  Shutdown(std::chrono::milliseconds(0));
}

JobService::ShutdownReport JobService::Shutdown(std::chrono::milliseconds grace) {
  Impl& s = *impl_;
  ShutdownReport report;
  {
    std::lock_guard<std::mutex> lock(s.runtime_mu);
    if (!s.runtime) return report;  // done before
  }
  StopAdmitting();
  const size_t running_at_start = s.runtime->scheduler().Snapshot().running;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  size_t running = running_at_start;
  while (running > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    running = s.runtime->scheduler().Snapshot().running;
  }
  report.finished_in_grace =
      static_cast<int>(running_at_start - std::min(running, running_at_start));
  {
    // Runners stop; what they report while dying is not written (see `discard`).
    std::lock_guard<std::mutex> lock(s.runtime_mu);
    s.discard = true;
    report.runners = s.runtime->Stop();
    s.runtime.reset();
  }
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.stop = true;
  }
  s.cv.notify_all();
  s.heartbeat_cv.notify_all();
  if (s.writer.joinable()) s.writer.join();
  if (s.heartbeat.joinable()) s.heartbeat.join();
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

store::BlobStore& JobService::blobs() {
  return *impl_->blobs;
}

Result<store::Inserted> JobService::Submit(const SubmitJob& request) {
  Impl& s = *impl_;
  if (!s.admitting) return Impl::ShuttingDown();
  std::string digest = request.blob_digest;
  const bool fresh_copy = digest.empty();
  auto refuse = [&](Error e) -> Result<store::Inserted> {
    if (!digest.empty()) s.DropUnreferenced(digest);
    return e;
  };
  audio::Limits limits;
  {
    std::lock_guard<std::mutex> lock(s.submit_mu);  // a reload may change them
    limits = s.options.limits;
  }
  if (auto st = ValidateParams(request.params); !st) return refuse(st.error());
  double audio_seconds = 0;
  auto spec = s.WithRuntime([&](Runtime& rt) { return rt.ResolveModel(request.model); },
                            Result<sched::ModelSpec>(Impl::ShuttingDown()));
  if (!spec.ok()) return refuse(spec.error());
  if (fresh_copy) {
    if (request.server_path.empty()) {
      return Error(ErrorKind::kBadInput, "no_audio", "the job names no audio");
    }
    // Probe before copying: a non-media file is refused without touching the blob store.
    auto info = audio::Probe({request.server_path, request.params.filename}, limits);
    if (!info.ok()) return info.error();
    audio_seconds = info->duration_s;
    auto blob = s.CopyIntoBlobs(request.server_path);
    if (!blob.ok()) return blob.error();
    digest = blob->digest;
  } else {
    if (!store::IsValidDigest(digest) || !s.blobs->Contains(digest)) {
      return Error(ErrorKind::kBadInput, "no_audio", "the uploaded file is no longer stored");
    }
    // The user's file name, not the blob's: messages name it, and its extension is the format
    // hint headerless formats need (the CLI has the same from its paths).
    auto info = audio::Probe({s.blobs->PathOf(digest), request.params.filename}, limits);
    if (!info.ok()) return refuse(info.error());
    audio_seconds = info->duration_s;
  }
  if (s.shared_blobs) {
    // Durable in the shared store before the job names it: any node can run it.
    auto pushed = s.shared_blobs->Push(*s.blobs, digest);
    if (!pushed.ok()) return refuse(pushed.error());
  }

  std::lock_guard<std::mutex> lock(s.submit_mu);
  if (s.QueueLength() >= s.queue_bound) {
    return refuse(
        Error(ErrorKind::kUnavailable, "queue_full",
              "the queue is full; retry after " + std::to_string(RetryAfterSeconds()) + " s"));
  }
  store::NewJob job;
  job.model = request.model;
  job.priority = request.priority;
  job.params = request.params;
  job.blob_digest = digest;
  job.idempotency_key = request.idempotency_key;
  auto inserted = s.jobs->Insert(job);
  if (!inserted.ok()) return refuse(inserted.error());
  if (inserted->existing) return inserted;
  if (audio_seconds > 0) {
    s.UpdateLive(inserted->job.id, [&](LiveInfo& i) { i.audio_seconds = audio_seconds; });
  }
  if (s.link) {
    s.link->AnnounceJobs();  // whichever node has room claims it
    return inserted;
  }
  if (auto st = s.Schedule(inserted->job); !st) {
    // Durable already: it runs after the next start. Tell the client it is accepted.
    spdlog::warn("job {} stored but not queued now: {}", inserted->job.id, st.error().message);
  }
  return inserted;
}

Result<Job> JobService::Get(const std::string& id) {
  return impl_->jobs->Get(id);
}

Result<store::JobWithAttempts> JobService::GetWithAttempts(const std::string& id) {
  return impl_->jobs->GetWithAttempts(id);
}

Result<store::JobPage> JobService::List(const store::JobFilter& filter) {
  return impl_->jobs->List(filter);
}

Result<std::string> JobService::ResultText(const std::string& id, const std::string& format) {
  auto f = engine::ParseFormat(format);
  if (!f.ok()) return f.error();
  auto job = impl_->jobs->Get(id);
  if (!job.ok()) return job.error();
  auto text = impl_->jobs->GetResult(id);
  if (!text.ok()) return text.error();
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (json.is_discarded()) {
    return Error(ErrorKind::kIntegrity, "bad_result",
                 "the stored result of " + id + " is not JSON");
  }
  auto transcript = engine::TranscriptFromVerboseJson(json);
  if (!transcript.ok()) return transcript.error();
  if (!job->params.word_timestamps) {
    for (auto& seg : transcript->segments) seg.words.clear();
  }
  return engine::Render(*transcript, *f);
}

Result<Job> JobService::Cancel(const std::string& id) {
  auto cancelled = impl_->jobs->Cancel(id);
  if (!cancelled.ok()) return cancelled.error();
  // The scheduler may not know it (already ended there, or it runs on another node); fine.
  (void)impl_->WithRuntime([&](Runtime& rt) { return rt.scheduler().Cancel(id); }, Status());
  if (impl_->link) {
    // The node running it stops at once, and streams of it on any node end.
    JobEvent ev;
    ev.job = *cancelled;
    impl_->link->SendEvent(Impl::EventJson(ev));
    impl_->Deliver(ev);
  }
  return cancelled;
}

Result<Job> JobService::Wait(const std::string& id, int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    auto job = impl_->jobs->Get(id);
    if (!job.ok() || IsFinal(job->state)) return job;
    std::unique_lock<std::mutex> lock(impl_->mu);
    if (std::chrono::steady_clock::now() >= deadline) return job;
    // Re-read at least every 200 ms: a final state written by another path (a user's cancel)
    // does not wake this wait.
    impl_->final_cv.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() +
                                                            std::chrono::milliseconds(200)));
  }
}

Result<JobService::Subscription> JobService::Subscribe(const std::string& id,
                                                       std::function<bool(const JobEvent&)> fn) {
  Impl& s = *impl_;
  auto sub = std::make_shared<Subscriber>();
  sub->fn = std::move(fn);
  // Holding live_mu while reading the job: no event can slip between this first look and the
  // registration (Notify takes live_mu too).
  std::lock_guard<std::mutex> lock(s.live_mu);
  auto job = s.jobs->Get(id);
  if (!job.ok()) return job.error();
  JobEvent first;
  first.job = *job;
  sub->last_attempt = -1;  // the first state is always shown
  bool more = sub->Deliver(first);
  if (auto it = s.segments.find(id); more && it != s.segments.end()) {
    for (const auto& seg : it->second) {
      JobEvent ev;
      ev.kind = JobEvent::Kind::kSegment;
      ev.job = *job;
      ev.segment = seg;
      if (!(more = sub->Deliver(ev))) break;
    }
  }
  if (!more || IsFinal(job->state)) return Subscription(sub);
  s.subscribers.emplace(id, sub);
  if (s.link) s.remote_seen[id] = SteadyMillis();  // re-read only after 2 s of silence
  // Dropping the handle marks the subscriber done; Notify skips it and the entry goes with the
  // job's final event.
  // The handle may outlive the service: dropping it touches only the subscriber.
  return Subscription(sub.get(), [keep = sub](void*) {
    std::lock_guard<std::mutex> lock(keep->mu);
    keep->done = true;
  });
}

Status JobService::Load(const std::string& model, const std::string& device,
                        std::optional<int> keep_alive_s) {
  if (!impl_->admitting) return Impl::ShuttingDown();
  return impl_->WithRuntime(
      [&](Runtime& rt) -> Status {
        if (auto spec = rt.ResolveModel(model); !spec.ok()) return spec.error();
        sched::LoadRequest r;
        r.model = model;
        r.device = device == "auto" ? "" : device;
        r.keep_alive_s = keep_alive_s;
        return rt.scheduler().Load(r);
      },
      Status(Impl::ShuttingDown()));
}

Status JobService::Unload(const std::string& model) {
  return impl_->WithRuntime([&](Runtime& rt) { return rt.scheduler().Unload(model); },
                            Status(Impl::ShuttingDown()));
}

sched::SchedulerSnapshot JobService::Snapshot() const {
  return impl_->WithRuntime([](Runtime& rt) { return rt.scheduler().Snapshot(); },
                            sched::SchedulerSnapshot{});
}

Result<std::vector<gpu::DeviceSample>> JobService::Devices() const {
  using Samples = Result<std::vector<gpu::DeviceSample>>;
  return impl_->WithRuntime(
      [](Runtime& rt) -> Samples {
        gpu::Devices* d = rt.devices();
        if (!d) return std::vector<gpu::DeviceSample>{};
        return d->Sample();
      },
      Samples(std::vector<gpu::DeviceSample>{}));
}

Result<store::JobCounts> JobService::Counts() {
  return impl_->jobs->Count();
}

std::map<std::string, JobService::LiveInfo> JobService::Live(
    const std::vector<std::string>& ids) const {
  std::map<std::string, LiveInfo> out;
  std::lock_guard<std::mutex> lock(impl_->info_mu);
  for (const auto& id : ids) {
    if (auto it = impl_->live_info.find(id); it != impl_->live_info.end()) out[id] = it->second;
  }
  return out;
}

void JobService::SetIncidentListener(std::function<void(const RunnerIncident&)> listener) {
  std::lock_guard<std::mutex> lock(impl_->incident_mu);
  impl_->incident_listener = std::move(listener);
}

ServiceMetrics& JobService::metrics() {
  return impl_->metrics;
}

void JobService::Reconfigure(const sched::SchedulerConfig& scheduler, const audio::Limits& limits) {
  Impl& s = *impl_;
  sched::SchedulerConfig c = scheduler;
  {
    std::lock_guard<std::mutex> lock(s.submit_mu);
    s.queue_bound = c.queue.max_length;
    s.options.limits = limits;
  }
  c.queue.max_length = std::numeric_limits<size_t>::max() / 2;  // the service bounds the queue
  s.WithRuntime(
      [&](Runtime& rt) {
        rt.scheduler().Reconfigure(c);
        return 0;
      },
      0);
}

void JobService::StopAdmitting() {
  impl_->admitting = false;
  std::lock_guard<std::mutex> lock(impl_->runtime_mu);
  if (impl_->runtime) impl_->runtime->scheduler().StopAdmitting();
}

bool JobService::admitting() const {
  return impl_->admitting;
}

int JobService::RetryAfterSeconds() const {
  const auto& q = impl_->options.runtime.scheduler.queue;
  const int64_t mean = impl_->mean_job_ms.load();
  return sched::RetryAfterSeconds(static_cast<size_t>(std::max<int64_t>(0, impl_->in_scheduler)),
                                  mean > 0 ? mean : q.default_job_ms, std::max(1, q.max_running));
}

}  // namespace steno::server
