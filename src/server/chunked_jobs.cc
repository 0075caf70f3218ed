#include "server/chunked_jobs.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <vector>

#include "audio/probe.h"
#include "core/log.h"
#include "core/wall_clock.h"
#include "engine/formats.h"
#include "engine/transcript_json.h"
#include "models/model_catalog.h"

namespace steno::server {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPlanSuffix = "~plan";
constexpr const char* kChunkSuffix = "~c";
constexpr int kPlan = -1;  // the "chunk index" of a plan sub-job

// The parent's id and the chunk a sub-job id names (kPlan for the plan); nullopt: not a sub-job.
std::optional<std::pair<std::string, int>> ParseSubId(const std::string& id) {
  const size_t at = id.rfind('~');
  if (at == std::string::npos) return std::nullopt;
  const std::string parent = id.substr(0, at);
  const std::string tail = id.substr(at);
  if (tail == kPlanSuffix) return std::make_pair(parent, kPlan);
  if (tail.rfind(kChunkSuffix, 0) != 0 || tail.size() <= 2) return std::nullopt;
  try {
    return std::make_pair(parent, std::stoi(tail.substr(2)));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string ChunkId(const std::string& parent, int chunk) {
  return parent + kChunkSuffix + std::to_string(chunk);
}

Error ShuttingDown() {
  return Error(ErrorKind::kUnavailable, "shutting_down", "the server is shutting down");
}

}  // namespace

// One chunked job. Touched only by the thread once it is in jobs_ (Start fills it before).
struct ChunkedJobs::Parent {
  Job job;  // as reported: state, attempt, times, error
  sched::BlobRef input;
  std::string pcm_path;
  int64_t deadline_ms = 0;  // wall clock; 0 until it started
  int64_t runner_id = -1;   // of the latest sub-job placed
  std::string device;
  double duration = 0;                                  // of the audio (the plan's answer)
  std::vector<ChunkWork> chunks;                        // the plan's, once planned
  std::vector<std::optional<engine::Transcript>> done;  // by chunk
  size_t next = 0;                                      // the next chunk to submit
  size_t emitted = 0;                                   // chunks whose segments were reported
  int next_segment_id = 0;
  int percent = 0;
  std::set<std::string> outstanding;  // sub-jobs submitted and not final
  bool ending = false;                // failed or cancelled; ends once outstanding is empty
  JobState end_state = JobState::kFailed;
};

ChunkedJobs::ChunkedJobs(ChunkedJobsOptions options, RuntimeSlot& runtime, UpdateSink sink)
    : options_(std::move(options)), runtime_(runtime), sink_(std::move(sink)) {
  std::error_code ec;
  fs::create_directories(options_.work_dir, ec);
  for (const auto& e : fs::directory_iterator(options_.work_dir, ec)) {
    const std::string ext = e.path().extension().string();
    if (ext == ".f32" || ext == ".tmp") fs::remove(e.path(), ec);  // a previous run's leftovers
  }
  thread_ = std::thread([this] { Loop(); });
}

ChunkedJobs::~ChunkedJobs() {
  Stop();
}

void ChunkedJobs::Stop() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
  MutexLock lock(mu_);
  std::error_code ec;
  for (const auto& [id, p] : jobs_) fs::remove(p->pcm_path, ec);
  jobs_.clear();
}

bool ChunkedJobs::Wants(const Job& job, const sched::BlobRef& input,
                        std::optional<double> audio_s) {
  const JobParams& p = job.params;
  if (options_.cap < 1 || !p.vad || p.chunk || input.path.empty()) return false;
  if (p.task != "transcribe" && p.task != "translate") return false;
  auto spec = runtime_.With([&](Runtime& rt) { return rt.ResolveModel(job.model); },
                            Result<sched::ModelSpec>(ShuttingDown()));
  if (!spec.ok() || spec->kind != models::kWhisperKind) return false;
  if (audio_s) return *audio_s > options_.chunk_s;
  auto info = audio::Probe(audio::MediaFile(input.path, p.filename));
  return info.ok() && info->duration_s > options_.chunk_s;
}

Status ChunkedJobs::Submit(sched::SubmitRequest r, std::optional<double> audio_s) {
  if (Wants(r.job, r.input, audio_s)) return Start(r.job, r.input);
  return runtime_.With([&](Runtime& rt) { return rt.scheduler().Submit(std::move(r)); },
                       Status(ShuttingDown()));
}

Status ChunkedJobs::Start(const Job& job, const sched::BlobRef& input) {
  auto p = std::make_shared<Parent>();
  p->job = job;
  p->input = input;
  p->pcm_path = (fs::path(options_.work_dir) / (job.id + ".f32")).string();
  {
    MutexLock lock(mu_);
    if (jobs_.count(job.id)) {
      return Error(ErrorKind::kBadInput, "duplicate_job", "job " + job.id + " is already queued");
    }
    jobs_[job.id] = p;
  }
  ChunkWork plan;
  plan.step = ChunkWork::Step::kPlan;
  plan.pcm_path = p->pcm_path;
  plan.max_chunk_s = options_.chunk_s;
  // The thread has not seen this parent yet (no update of its plan can come before Submit).
  if (auto st = SubmitSub(*p, job.id + kPlanSuffix, plan); !st) {
    MutexLock lock(mu_);
    jobs_.erase(job.id);
    return st;
  }
  return {};
}

Status ChunkedJobs::SubmitSub(Parent& p, const std::string& sub_id, ChunkWork work) {
  const int64_t now = UnixMillis();
  int timeout_s = p.job.params.timeout_s.value_or(options_.default_timeout_s);
  if (p.deadline_ms > 0 && timeout_s > 0) {
    const int64_t left_ms = p.deadline_ms - now;
    if (left_ms <= 0) {
      return Error(ErrorKind::kTimeout, "timeout", "the job ran past its timeout");
    }
    timeout_s = static_cast<int>((left_ms + 999) / 1000);
  }
  sched::SubmitRequest r;
  r.job.id = sub_id;
  r.job.model = p.job.model;
  r.job.priority = p.job.priority;
  r.job.params = p.job.params;
  r.job.params.timeout_s = timeout_s;
  r.job.params.chunk = std::move(work);
  r.job.created_ms = now;
  r.input = p.input;
  p.outstanding.insert(sub_id);
  auto st = runtime_.With([&](Runtime& rt) { return rt.scheduler().Submit(std::move(r)); },
                          Status(ShuttingDown()));
  if (!st) p.outstanding.erase(sub_id);
  return st;
}

bool ChunkedJobs::OnJob(const sched::JobUpdate& u) {
  if (!u.job.params.chunk) return false;
  {
    MutexLock lock(mu_);
    items_.push_back(u);
  }
  cv_.Signal();
  return true;
}

void ChunkedJobs::Cancel(const std::string& id) {
  {
    MutexLock lock(mu_);
    if (!jobs_.count(id)) return;
    items_.push_back(CancelRequest{id});
  }
  cv_.Signal();
}

void ChunkedJobs::Loop() {
  while (true) {
    Item item;
    {
      MutexLock lock(mu_);
      while (!stop_ && items_.empty()) cv_.Wait(mu_);
      if (stop_) return;
      item = std::move(items_.front());
      items_.pop_front();
    }
    if (auto* u = std::get_if<sched::JobUpdate>(&item)) {
      Apply(*u);
    } else {
      ApplyCancel(std::get<CancelRequest>(item).id);
    }
  }
}

std::shared_ptr<ChunkedJobs::Parent> ChunkedJobs::Find(const std::string& id) const {
  MutexLock lock(mu_);
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

void ChunkedJobs::Apply(const sched::JobUpdate& u) {
  const auto sub = ParseSubId(u.job.id);
  if (!sub) return;
  const auto [parent_id, chunk] = *sub;
  auto p = Find(parent_id);
  if (!p) {
    // Ended already (a cancelled job's last sub-jobs): a plan that ran anyway wrote its audio.
    if (u.kind == sched::JobUpdate::Kind::kState && IsFinal(u.job.state) && u.job.params.chunk) {
      std::error_code ec;
      fs::remove(u.job.params.chunk->pcm_path, ec);
    }
    return;
  }
  // Progress counts chunks done; segments are reported from the chunks' results, in order.
  if (u.kind != sched::JobUpdate::Kind::kState) return;
  switch (u.job.state) {
    case JobState::kLoading:
    case JobState::kProcessing: OnStarted(*p, u, chunk); break;
    case JobState::kPending:  // the scheduler retries it (its runner was lost, an oom)
      spdlog::info("job {}: {} lost its run ({}); it runs again alone (attempt {})", parent_id,
                   chunk == kPlan ? "the plan" : "chunk " + std::to_string(chunk),
                   u.job.error ? u.job.error->message : "no reason", u.job.attempt);
      break;
    case JobState::kCompleted:
      p->outstanding.erase(u.job.id);
      if (p->ending) {
        spdlog::info("job {}: {} ended completed (the job ends without it)", parent_id,
                     chunk == kPlan ? "the plan" : "chunk " + std::to_string(chunk));
        break;
      }
      if (chunk == kPlan) {
        OnPlanned(*p, u.payload);
      } else {
        OnChunkDone(*p, chunk, u.payload);
      }
      break;
    case JobState::kFailed:
    case JobState::kCancelled:
      p->outstanding.erase(u.job.id);
      spdlog::info("job {}: {} ended {}", parent_id,
                   chunk == kPlan ? "the plan" : "chunk " + std::to_string(chunk),
                   JobStateName(u.job.state));
      OnFailed(*p, u, chunk);
      break;
  }
  MaybeFinish(parent_id);
}

void ChunkedJobs::OnStarted(Parent& p, const sched::JobUpdate& u, int chunk) {
  p.runner_id = u.runner_id;
  p.device = u.device;
  if (u.job.state == JobState::kProcessing && chunk != kPlan) {
    spdlog::info("job {}: chunk {} of {} ({:.2f}-{:.2f} s) started on runner {} (attempt {})",
                 p.job.id, chunk, p.chunks.size(), p.chunks[chunk].start, p.chunks[chunk].end,
                 u.runner_id, u.job.attempt);
  }
  if (p.ending) return;
  const int64_t now = UnixMillis();
  if (p.job.state == JobState::kPending && u.job.state == JobState::kLoading) {
    p.job.state = JobState::kLoading;
    p.job.started_ms = p.job.updated_ms = now;
    const int timeout_s = p.job.params.timeout_s.value_or(options_.default_timeout_s);
    if (timeout_s > 0) p.deadline_ms = now + int64_t{timeout_s} * 1000;
    Report(p, sched::JobUpdate::Kind::kState);
  } else if (p.job.state == JobState::kLoading && u.job.state == JobState::kProcessing) {
    p.job.state = JobState::kProcessing;
    p.job.updated_ms = now;
    Report(p, sched::JobUpdate::Kind::kState);
  }
}

void ChunkedJobs::ReportProgress(Parent& p) {
  size_t done = 0;
  for (const auto& d : p.done) done += d ? 1 : 0;
  const int percent = static_cast<int>(done * 100 / std::max<size_t>(1, p.done.size()));
  if (percent <= p.percent) return;
  p.percent = percent;
  Report(p, sched::JobUpdate::Kind::kProgress, {}, percent);
}

void ChunkedJobs::OnPlanned(Parent& p, const nlohmann::json& plan) {
  p.duration = plan.value("duration", 0.0);
  if (plan.contains("chunks") && plan["chunks"].is_array()) {
    for (const auto& c : plan["chunks"]) {
      ChunkWork w;
      w.step = ChunkWork::Step::kChunk;
      w.pcm_path = p.pcm_path;
      w.index = static_cast<int>(p.chunks.size());
      w.start = c.value("start", 0.0);
      w.end = c.value("end", 0.0);
      for (const auto& r : c.value("speech", nlohmann::json::array())) {
        if (r.is_array() && r.size() == 2) w.speech.emplace_back(r[0], r[1]);
      }
      p.chunks.push_back(std::move(w));
    }
  }
  p.done.assign(p.chunks.size(), std::nullopt);
  spdlog::info("job {}: {:.1f} s of audio in {} chunks of at most {:.0f} s, {} at a time", p.job.id,
               p.duration, p.chunks.size(), options_.chunk_s, options_.cap);
  SubmitChunks(p);
}

void ChunkedJobs::SubmitChunks(Parent& p) {
  while (!p.ending && p.next < p.chunks.size() &&
         p.outstanding.size() < static_cast<size_t>(options_.cap)) {
    const int chunk = static_cast<int>(p.next++);
    spdlog::debug("job {}: chunk {} of {} submitted", p.job.id, chunk, p.chunks.size());
    if (auto st = SubmitSub(p, ChunkId(p.job.id, chunk), p.chunks[chunk]); !st) {
      // A shutdown: the job goes back to the queue (the rest of it runs after the restart).
      const bool stopping = st.error().code == "shutting_down";
      End(p, stopping ? JobState::kPending : JobState::kFailed, st.error());
    }
  }
  if (!p.ending && p.outstanding.empty() && p.emitted == p.chunks.size()) {
    // Every chunk is done (or there was no speech): the merged transcript is the result.
    engine::Transcript merged;
    merged.task = p.job.params.task == "translate" ? "translate" : "transcribe";
    merged.duration = p.duration;
    merged.has_words = p.job.params.word_timestamps;
    for (const auto& t : p.done) {
      if (merged.language.empty() && t && !t->language.empty()) merged.language = t->language;
      if (merged.word_timing.empty() && t) merged.word_timing = t->word_timing;
      for (const engine::Segment& s : t->segments) {
        merged.segments.push_back(s);
        merged.segments.back().id = static_cast<int>(merged.segments.size()) - 1;
      }
    }
    if (merged.language.empty()) {
      merged.language = p.job.params.language == "auto" ? "en" : p.job.params.language;
    }
    p.job.state = JobState::kCompleted;
    p.job.updated_ms = p.job.finished_ms = UnixMillis();
    // Every chunk is done: the decoded audio goes before anyone hears of the end.
    if (p.outstanding.empty()) RemoveDecoded(p);
    Report(p, sched::JobUpdate::Kind::kState, engine::ToVerboseJson(merged));
    p.ending = true;  // reported: MaybeFinish forgets it
    p.end_state = JobState::kCompleted;
  }
}

void ChunkedJobs::OnChunkDone(Parent& p, int chunk, const nlohmann::json& result) {
  if (chunk < 0 || static_cast<size_t>(chunk) >= p.chunks.size()) return;
  auto t = engine::TranscriptFromVerboseJson(result);
  if (!t.ok()) {
    End(p, JobState::kFailed, t.error());
    return;
  }
  p.done[chunk] = std::move(t).value();
  spdlog::info("job {}: chunk {} of {} done", p.job.id, chunk, p.chunks.size());
  // Segments in order: those of every chunk whose earlier chunks are all done.
  for (; p.emitted < p.done.size() && p.done[p.emitted]; ++p.emitted) {
    for (const engine::Segment& s : p.done[p.emitted]->segments) {
      Report(p, sched::JobUpdate::Kind::kSegment,
             {{"id", p.next_segment_id++}, {"start", s.start}, {"end", s.end}, {"text", s.text}});
    }
  }
  ReportProgress(p);
  SubmitChunks(p);
}

void ChunkedJobs::OnFailed(Parent& p, const sched::JobUpdate& u, int chunk) {
  if (p.ending) return;
  if (u.job.state == JobState::kCancelled) {
    End(p, JobState::kCancelled, std::nullopt);
    return;
  }
  Error e = u.job.error.value_or(Error(ErrorKind::kInternal, "failed", "a chunk failed"));
  spdlog::info("job {}: {} failed ({}); stopping the job", p.job.id,
               chunk == kPlan ? "the plan" : "chunk " + std::to_string(chunk), e.message);
  End(p, JobState::kFailed, std::move(e));
}

void ChunkedJobs::ApplyCancel(const std::string& id) {
  auto p = Find(id);
  if (!p) return;
  if (!p->ending) {
    const size_t n = p->outstanding.size();
    End(*p, JobState::kCancelled, std::nullopt);
    spdlog::info("job {}: cancelled; its {} queued or running sub-jobs were told to stop", id, n);
  }
  MaybeFinish(id);
}

void ChunkedJobs::End(Parent& p, JobState state, std::optional<Error> error) {
  if (p.ending) return;
  p.ending = true;
  p.end_state = state;
  p.job.error = std::move(error);
  const std::vector<std::string> ids(p.outstanding.begin(), p.outstanding.end());
  for (const std::string& id : ids) {
    // An error: it ended meanwhile (its final update is queued here) or never reached the
    // scheduler (a shutdown).
    auto st = runtime_.With([&](Runtime& rt) { return rt.scheduler().Cancel(id); },
                            Status(ShuttingDown()));
    if (!st && st.error().code != "job_final") p.outstanding.erase(id);
  }
}

void ChunkedJobs::MaybeFinish(const std::string& id) {
  auto p = Find(id);
  if (!p || !p->ending || !p->outstanding.empty()) return;
  RemoveDecoded(*p);  // no chunk reads it any more; gone before the end is reported
  if (p->end_state != JobState::kCompleted) {
    p->job.state = p->end_state;
    p->job.updated_ms = UnixMillis();
    if (p->end_state != JobState::kPending) p->job.finished_ms = p->job.updated_ms;
    Report(*p, sched::JobUpdate::Kind::kState);
  }
  MutexLock lock(mu_);
  jobs_.erase(id);
}

void ChunkedJobs::RemoveDecoded(const Parent& p) {
  std::error_code ec;
  fs::remove(p.pcm_path, ec);
  fs::remove(p.pcm_path + ".tmp", ec);
}

void ChunkedJobs::Report(Parent& p, sched::JobUpdate::Kind kind, nlohmann::json payload,
                         int percent) {
  sched::JobUpdate u;
  u.kind = kind;
  u.job = p.job;
  u.runner_id = p.runner_id;
  u.device = p.device;
  u.percent = percent;
  u.payload = std::move(payload);
  sink_(u);
}

}  // namespace steno::server
