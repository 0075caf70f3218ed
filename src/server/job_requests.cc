#include "server/job_requests.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "audio/decoder.h"
#include "audio/shared_pcm.h"
#include "core/log.h"
#include "core/speech_format.h"
#include "core/wall_clock.h"
#include "engine/formats.h"
#include "engine/transcript_json.h"
#include "models/model_catalog.h"
#include "server/chunked_jobs.h"
#include "server/job_params_check.h"
#include "store/job_id.h"

namespace steno::server {

JobRequests::JobRequests(JobRequestParts parts)
    : p_(std::move(parts)), queue_bound_(p_.queue_bound), queue_(p_.queue), limits_(p_.limits) {}

Error JobRequests::ShuttingDown() {
  return Error(ErrorKind::kUnavailable, "shutting_down", "the server is shutting down");
}

Status JobRequests::Schedule(const Job& job, std::optional<double> audio_s) {
  sched::SubmitRequest r;
  r.job = job;
  r.input.digest = job.blob_digest;
  if (job.blob_digest.empty()) {
    // No audio (a speech job): nothing to fetch.
  } else if (p_.cluster) {
    // Uploaded on another node, perhaps: runners read a local file.
    auto path = p_.cluster->FetchBlob(*p_.blobs, job.blob_digest);
    if (!path.ok()) return path.error();
    r.input.path = *path;
  } else {
    r.input.path = p_.blobs->PathOf(job.blob_digest);
  }
  p_.stats->Entered();
  auto st = p_.chunked->Submit(std::move(r), audio_s);
  if (!st) p_.stats->Left();
  return st;
}

Result<std::string> JobRequests::CheckModel(const std::string& model, const std::string& task) {
  auto entry = p_.runtime->With(
      [&](Runtime& rt) { return rt.catalog().Find(model, rt.options().allow_model_paths); },
      Result<models::ModelEntry>(ShuttingDown()));
  if (!entry.ok()) return entry.error();
  if (auto problem = CheckModelTask(model, task, entry->capabilities)) return problem->error;
  // Resolving reads the model file (Runtime reads an unchanged file once).
  auto spec = p_.runtime->With([&](Runtime& rt) { return rt.ResolveModel(model); },
                               Result<sched::ModelSpec>(ShuttingDown()));
  if (!spec.ok()) return spec.error();
  return entry->kind;
}

size_t JobRequests::QueueLength() {
  if (p_.cluster) {
    auto pending = p_.jobs->PendingByModel();
    if (!pending.ok()) return 0;
    int64_t n = 0;
    for (const store::PendingModel& m : *pending) n += m.pending;
    return static_cast<size_t>(n);
  }
  return static_cast<size_t>(p_.stats->in_scheduler());
}

Result<store::BlobInfo> JobRequests::CopyIntoBlobs(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Error(ErrorKind::kBadInput, "file_not_found", "cannot open " + path);
  }
  auto w = p_.blobs->Begin();
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

void JobRequests::DropUnreferenced(const std::string& digest) {
  auto refs = p_.jobs->ReferencedBlobs();
  if (!refs.ok()) return;
  if (std::find(refs->begin(), refs->end(), digest) != refs->end()) return;
  (void)p_.blobs->Remove(digest);
}

Result<double> JobRequests::TakeAudio(const SubmitJob& request, std::string& digest) {
  audio::Limits limits;
  {
    MutexLock lock(mu_);  // a reload may change them
    limits = limits_;
  }
  if (request.params.task == "speech") {
    if (digest.empty() && request.server_path.empty()) return 0.0;  // the text is in the params
    return Error(ErrorKind::kBadInput, "unexpected_audio",
                 "a speech job reads its 'input' text aloud; it takes no audio file");
  }
  if (digest.empty()) {
    if (request.server_path.empty()) {
      return Error(ErrorKind::kBadInput, "no_audio", "the job names no audio");
    }
    // Probe before copying: a non-media file is refused without touching the blob store.
    auto info = audio::Probe({request.server_path, request.params.filename}, limits);
    if (!info.ok()) return info.error();
    auto blob = CopyIntoBlobs(request.server_path);
    if (!blob.ok()) return blob.error();
    digest = blob->digest;
    return info->duration_s;
  }
  if (!store::IsValidDigest(digest) || !p_.blobs->Contains(digest)) {
    digest.clear();  // nothing stored to drop
    return Error(ErrorKind::kBadInput, "no_audio", "the uploaded file is no longer stored");
  }
  // The user's file name, not the blob's: messages name it, and its extension is the format
  // hint headerless formats need (the CLI has the same from its paths).
  auto info = audio::Probe({p_.blobs->PathOf(digest), request.params.filename}, limits);
  if (!info.ok()) return info.error();
  return info->duration_s;
}

Result<store::Inserted> JobRequests::Submit(const SubmitJob& request,
                                            std::unique_ptr<QueuePlace> place) {
  if (!admitting_) return ShuttingDown();
  std::string digest = request.blob_digest;
  auto refuse = [&](Error e) -> Result<store::Inserted> {
    if (!digest.empty()) DropUnreferenced(digest);
    return e;
  };
  if (auto problem = CheckJobParams(request.params)) return refuse(problem->error);
  if (auto st = CheckModel(request.model, request.params.task); !st) return refuse(st.error());
  auto audio_seconds = TakeAudio(request, digest);
  if (!audio_seconds.ok()) return refuse(audio_seconds.error());
  std::optional<VadSettings> vad;  // a speech job has no audio to find speech in
  if (request.params.task != "speech") {
    auto decided = DecideVad(request.params, *audio_seconds, p_.vad);
    if (!decided.ok()) return refuse(decided.error());
    vad = *decided;
  }
  if (p_.cluster && !digest.empty()) {
    // Durable in the shared store before the job names it: any node can run it.
    auto pushed = p_.cluster->PushBlob(*p_.blobs, digest);
    if (!pushed.ok()) return refuse(pushed.error());
  }

  if (!place) {
    auto reserved = ReservePlace(QueueLength());  // a store read on a shared store: before the lock
    if (!reserved.ok()) return refuse(reserved.error());
    place = std::move(reserved).value();
  } else if (p_.cluster) {
    // Reserved by this node's own count: the cluster's queue may have filled since.
    if (auto st = CheckPlace(QueueLength()); !st) return refuse(st.error());
  }
  store::NewJob job;
  job.model = request.model;
  job.priority = request.priority;
  job.params = request.params;
  job.params.vad = vad;
  job.blob_digest = digest;
  job.idempotency_key = request.idempotency_key;
  auto inserted = p_.jobs->Insert(job);
  if (!inserted.ok()) return refuse(inserted.error());
  if (inserted->existing) return inserted;
  if (*audio_seconds > 0) p_.live->NoteAudio(inserted->job.id, *audio_seconds);
  if (p_.link) {
    p_.link->AnnounceJobs();  // whichever node has room claims it
    return inserted;
  }
  if (auto st = Schedule(inserted->job, *audio_seconds); !st) {
    // Durable already: it runs after the next start. Tell the client it is accepted.
    spdlog::warn("job {} stored but not queued now: {}", inserted->job.id, st.error().message);
  }
  return inserted;
}

// A place in the queue is reserved under the lock and the insert runs without it: no lock is
// held across the store, and submissions in flight count against the bound, so it stays a
// bound (one may be refused early while another's reservation and its job overlap, never late).
QueuePlace::~QueuePlace() {
  MutexLock lock(owner_->mu_);
  --owner_->reserved_;
}

Error JobRequests::QueueFullError(const sched::QueueConfig& queue) const {
  const int retry_after = RetryAfterFor(queue);
  return Error(ErrorKind::kUnavailable, "queue_full",
               "the queue is full; retry after " + std::to_string(retry_after) + " s", retry_after);
}

Result<std::unique_ptr<QueuePlace>> JobRequests::ReservePlace(size_t held) {
  MutexLock lock(mu_);
  if (held + reserved_ >= queue_bound_) return QueueFullError(queue_);
  ++reserved_;
  return std::unique_ptr<QueuePlace>(new QueuePlace(this));
}

Result<std::unique_ptr<QueuePlace>> JobRequests::Reserve() {
  return ReservePlace(p_.cluster ? 0 : static_cast<size_t>(p_.stats->in_scheduler()));
}

Status JobRequests::CheckPlace(size_t held) {
  MutexLock lock(mu_);
  // reserved_ counts this submission's own place.
  if (held + reserved_ > queue_bound_) return QueueFullError(queue_);
  return {};
}

Result<Job> JobRequests::RunNow(const SubmitJob& request, sched::BlobRef input,
                                std::shared_ptr<void> input_owner, bool keep_result,
                                std::unique_ptr<QueuePlace> place) {
  if (!admitting_) return ShuttingDown();
  if (request.params.task == "speech") {
    return Error(ErrorKind::kBadInput, "unexpected_audio",
                 "a speech job reads its 'input' text aloud; it takes no audio file");
  }
  if (auto problem = CheckJobParams(request.params)) return problem->error;
  auto kind = CheckModel(request.model, request.params.task);
  if (!kind.ok()) return kind.error();
  audio::Limits limits;
  {
    MutexLock lock(mu_);  // a reload may change them
    limits = limits_;
  }
  // Opened and probed once, by the user's file name, not the temp file's: messages name it, and
  // its extension is the format hint headerless formats need.
  auto opened = audio::Open({input.path, request.params.filename}, limits);
  if (!opened.ok()) return opened.error();
  std::optional<std::vector<float>> pcm;
  double audio_s = opened->info().duration_s;
  if (!opened->duration_known()) {  // the container declares none: decoding tells
    auto decoded = opened->Decode();
    if (!decoded.ok()) return decoded.error();
    pcm = std::move(decoded).value();
    audio_s = static_cast<double>(pcm->size()) / audio::kSampleRate;
  }
  auto vad = DecideVad(request.params, audio_s, p_.vad);
  if (!vad.ok()) return vad.error();
  // Counted against the bound like any job, by this node (it never reaches a shared queue).
  if (!place) {
    auto reserved = ReservePlace(static_cast<size_t>(p_.stats->in_scheduler()));
    if (!reserved.ok()) return reserved.error();
    place = std::move(reserved).value();
  }
  Job job;
  job.created_ms = job.updated_ms = UnixMillis();
  job.id = store::NewJobId(job.created_ms);
  job.model = request.model;
  job.priority = request.priority;
  job.params = request.params;
  job.params.vad = *vad;
  input.name = request.params.filename;
  if (*kind == models::kWhisperKind && !p_.chunked->Wants(job, input, audio_s)) {
    // The whisper runner takes samples: decoded here, once, they reach it as a sealed memory
    // file instead of a file it would open, probe and decode again. (A chunked run's plan
    // decodes the file in the runner; other kinds read the file.)
    if (!pcm) {
      auto decoded = opened->Decode();
      if (!decoded.ok()) return decoded.error();
      pcm = std::move(decoded).value();
    }
    auto shared = audio::SharedPcm::Create(*pcm);
    if (shared.ok()) {
      input.pcm = std::move(shared).value();
    } else {
      spdlog::debug("job {}: its runner decodes the file: {}", job.id, shared.error().message);
    }
    pcm.reset();
  }
  if (audio_s > 0) p_.live->NoteAudio(job.id, audio_s);
  if (auto st = p_.sync->Start(job, std::move(input), std::move(input_owner), keep_result, audio_s);
      !st) {
    return st.error();
  }
  return job;
}

Result<Job> JobRequests::Get(const std::string& id) {
  if (auto run = p_.sync->Get(id)) return *run;
  return p_.jobs->Get(id);
}

Result<store::JobWithAttempts> JobRequests::GetWithAttempts(const std::string& id) {
  if (auto run = p_.sync->Get(id)) {
    store::JobWithAttempts out;
    out.job = *run;
    if (run->started_ms > 0) {
      store::AttemptRecord a;
      a.attempt = run->attempt;
      a.owner = run->node;
      a.started_ms = run->started_ms;
      if (IsFinal(run->state)) {
        a.ended_ms = run->finished_ms;
        a.outcome = JobStateName(run->state);
        a.error = run->error;
      }
      out.attempts.push_back(std::move(a));
    }
    return out;
  }
  return p_.jobs->GetWithAttempts(id);
}

Result<store::JobPage> JobRequests::List(const store::JobFilter& filter) {
  return p_.jobs->List(filter);
}

Result<store::JobCounts> JobRequests::Counts() {
  return p_.jobs->Count();
}

Result<std::string> JobRequests::RenderResult(const nlohmann::json& result, const JobParams& params,
                                              const std::string& format) {
  auto f = engine::ParseFormat(format);
  if (!f.ok()) return f.error();
  auto transcript = engine::TranscriptFromVerboseJson(result);
  if (!transcript.ok()) return transcript.error();
  if (!params.word_timestamps) {
    for (auto& seg : transcript->segments) seg.words.clear();
  }
  return engine::Render(*transcript, *f);
}

Result<std::string> JobRequests::ResultText(const std::string& id, const std::string& format) {
  auto f = engine::ParseFormat(format);
  if (!f.ok()) return f.error();
  if (p_.sync->Get(id)) {
    return Error(ErrorKind::kNotFound, store::kErrResultNotFound,
                 "job " + id +
                     " was a synchronous request: its result was its response and is "
                     "not kept");
  }
  auto job = p_.jobs->Get(id);
  if (!job.ok()) return job.error();
  auto text = p_.jobs->GetResult(id);
  if (!text.ok()) return text.error();
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (json.is_discarded()) {
    return Error(ErrorKind::kIntegrity, "bad_result",
                 "the stored result of " + id + " is not JSON");
  }
  return RenderResult(json, job->params, format);
}

Result<JobRequests::AudioFile> JobRequests::ResultAudio(const std::string& id) {
  auto job = p_.jobs->Get(id);
  if (!job.ok()) return job.error();
  if (job->params.task != "speech") {
    return Error(ErrorKind::kBadInput, "not_speech",
                 "job " + id + " is a transcription: its result is text");
  }
  auto text = p_.jobs->GetResult(id);
  if (!text.ok()) return text.error();
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (!json.is_object() || !json.contains("audio_file") || !json["audio_file"].is_string()) {
    return Error(ErrorKind::kIntegrity, "bad_result",
                 "the stored result of " + id + " names no audio file");
  }
  // Only the file's name counts: the data dir may have moved since, and a stored path must not
  // lead outside the results dir.
  const std::string name =
      std::filesystem::path(json["audio_file"].get<std::string>()).filename().string();
  AudioFile file;
  file.path = p_.results_dir + "/" + name;
  std::string format = std::filesystem::path(name).extension().string();
  if (!format.empty()) format.erase(0, 1);
  file.content_type = SpeechContentType(format);
  std::error_code ec;
  const auto size = std::filesystem::file_size(file.path, ec);
  if (ec || name.empty()) {
    return Error(ErrorKind::kNotFound, "result_file_missing",
                 "the audio of job " + id + " is no longer stored");
  }
  file.bytes = static_cast<int64_t>(size);
  return file;
}

Result<Job> JobRequests::Cancel(const std::string& id) {
  if (auto run = p_.sync->Cancel(id)) return *run;
  auto cancelled = p_.jobs->Cancel(id);
  if (!cancelled.ok()) return cancelled.error();
  // The scheduler may not know it (already ended there, or it runs on another node); fine.
  (void)p_.runtime->With([&](Runtime& rt) { return rt.scheduler().Cancel(id); }, Status());
  p_.chunked->Cancel(id);  // every chunk of a job run as chunks
  if (p_.link) {
    // The node running it stops at once, and streams of it on any node end.
    JobEvent ev;
    ev.job = *cancelled;
    p_.link->SendEvent(JobEventJson(ev));
    p_.live->Deliver(ev);
  }
  return cancelled;
}

Result<Job> JobRequests::Wait(const std::string& id, int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    auto job = p_.jobs->Get(id);
    if (!job.ok() || IsFinal(job->state)) return job;
    if (std::chrono::steady_clock::now() >= deadline) return job;
    // Re-read at least every 200 ms: a final state written by another path (a user's cancel)
    // does not wake this wait.
    p_.ended->WaitUntil(
        std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200)));
  }
}

void JobRequests::Reconfigure(size_t queue_bound, const sched::QueueConfig& queue,
                              const audio::Limits& limits) {
  MutexLock lock(mu_);
  queue_bound_ = queue_bound;
  queue_ = queue;
  limits_ = limits;
}

bool JobRequests::QueueFull() {
  const size_t held = p_.cluster ? 0 : static_cast<size_t>(p_.stats->in_scheduler());
  MutexLock lock(mu_);
  return held + reserved_ >= queue_bound_;
}

size_t JobRequests::max_queue() const {
  MutexLock lock(mu_);
  return queue_bound_;
}

int JobRequests::RetryAfterSeconds() const {
  sched::QueueConfig queue;
  {
    MutexLock lock(mu_);  // a reload may change it
    queue = queue_;
  }
  return RetryAfterFor(queue);
}

int JobRequests::RetryAfterFor(const sched::QueueConfig& q) const {
  const int64_t mean = p_.stats->mean_job_ms();
  return sched::RetryAfterSeconds(static_cast<size_t>(p_.stats->in_scheduler()),
                                  mean > 0 ? mean : q.default_job_ms, std::max(1, q.max_running));
}

}  // namespace steno::server
