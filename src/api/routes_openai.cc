// OpenAI-compatible synchronous transcription: POST /v1/audio/transcriptions and
// /v1/audio/translations. The request waits for its transcript and answers in the requested
// format, the way OpenAI's API does, so its clients work unchanged. Its client holds the
// connection (and sends the request again if the server dies), so the run needs no durability:
// it is kept in memory only (server/sync_runs.h): the upload stays in an unsynced temp file that
// goes when the run ends, no job row is written, and it runs on this node. It is still checked,
// admitted, placed and counted like any job, X-Steno-Job-Id names it, GET /v1/jobs/{id} and
// DELETE answer for it while it runs (and for a while after), and the dashboard lists it; it is
// not in GET /v1/jobs's list (the store's) and its result is not kept. An Idempotency-Key is
// checked but matches nothing (there is no stored job to match): a repeated request runs again.
#include <chrono>

#include <spdlog/spdlog.h>

#include "api/routes.h"
#include "api/transcription_stream.h"
#include "core/paths.h"
#include "gpu/size.h"
#include "models/model_catalog.h"
#include "store/disk_space.h"

namespace steno::api {
namespace {

const char* ContentTypeFor(const std::string& format) {
  if (format == "json" || format == "verbose_json") return "application/json";
  return "text/plain; charset=utf-8";  // text, srt, vtt: what OpenAI's API sends
}

// Waits for the job to end, in slices so that a server stopping does not wait for the job.
// nullopt: the error response is set.
std::optional<Job> WaitFinal(Context& ctx, Call& call, const std::string& id) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(ctx.live.Get()->sync_timeout_ms);
  for (;;) {
    if (ctx.stopping) {
      SendError(call.res, MakeApiError(503, "shutting_down",
                                       "the server is shutting down; job " + id +
                                           " stays queued for its next start"));
      return std::nullopt;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      SendError(call.res, MakeApiError(504, "timeout",
                                       "the job did not finish in time; it continues as job " + id +
                                           " (GET /v1/jobs/" + id + ")"));
      return std::nullopt;
    }
    auto job = ctx.service.jobs().Wait(id, std::min<int64_t>(left, 500));
    if (!job.ok()) {
      SendError(call.res, FromError(job.error()));
      return std::nullopt;
    }
    if (IsFinal(job->state)) return *job;
  }
}

// Sends the error of a job that ended without completing and returns false; true if completed.
bool CheckCompleted(Call& call, const Job& job) {
  const std::string& id = job.id;
  if (job.state == JobState::kCancelled) {
    SendError(call.res, MakeApiError(409, "job_cancelled", "job " + id + " was cancelled"));
    return false;
  }
  if (job.state == JobState::kFailed) {
    Error e = job.error.value_or(Error(ErrorKind::kInternal, "job_failed", "the job failed"));
    ApiError api = FromError(e, ParamForError(e));
    if (e.kind == ErrorKind::kBadInput && api.status == 400 && e.code.empty())
      api.code = "bad_input";
    SendError(call.res, api);
    return false;
  }
  return true;
}

// Waits for the synchronous run `id` and answers with its transcript.
void AnswerRun(Context& ctx, Call& call, const std::string& id) {
  server::SyncRuns& runs = ctx.service.sync();
  struct Finish {  // the result is dropped however the request ends
    server::SyncRuns& runs;
    const std::string& id;
    ~Finish() { runs.Finish(id); }
  } finish{runs, id};
  auto outcome = runs.Wait(id, ctx.live.Get()->sync_timeout_ms, ctx.stopping);
  if (!outcome.ok()) {
    // Nobody will read this transcript: it stops now.
    (void)runs.Cancel(id);
    if (outcome.error().kind == ErrorKind::kTimeout) {
      return SendError(call.res, MakeApiError(504, "timeout",
                                              "the transcription did not finish in time (job " +
                                                  id + "); it was cancelled"));
    }
    if (outcome.error().kind == ErrorKind::kUnavailable) {
      return SendError(call.res, MakeApiError(503, "shutting_down",
                                              "the server is shutting down; send the request "
                                              "again once it is back"));
    }
    return SendError(call.res, FromError(outcome.error()));
  }
  if (!CheckCompleted(call, outcome->job)) return;
  const std::string& format = outcome->job.params.response_format;
  auto text = server::JobRequests::RenderResult(outcome->result, outcome->job.params, format);
  if (!text.ok()) return SendError(call.res, FromError(text.error()));
  call.res.status = 200;
  call.res.set_content(*text, ContentTypeFor(format));
}

void Transcribe(Context& ctx, Call& call, const std::string& task) {
  bool stream = false;  // only transcriptions stream (as OpenAI's API)
  MultipartUpload upload(&ctx.service.blobs(), UploadLimitsOf(ctx.options), "file");
  server::SubmitJob job;
  std::unique_ptr<server::QueuePlace> place;
  if (!ReadMultipartJob(ctx, call,
                        {task, ctx.options.default_model, task == "transcribe" ? &stream : nullptr},
                        upload, job, place)) {
    return;
  }
  // The upload stays in its temp file (never synced); the run owns it until it ends.
  auto temp = upload.TakeTempFile();
  if (!temp.ok()) return SendError(call.res, FromUploadError(temp.error(), job.params.filename));
  auto file = std::make_shared<store::BlobWriter>(std::move(temp).value());
  sched::BlobRef input;
  input.path = file->temp_path();
  auto run = ctx.service.jobs().RunNow(job, std::move(input), file, /*keep_result=*/!stream,
                                       std::move(place));
  if (!run.ok()) return SendError(call.res, FromError(run.error(), ParamForError(run.error())));
  const std::string id = run->id;
  call.res.set_header("X-Steno-Job-Id", id);
  if (stream) return StreamTranscription(ctx, call, id);
  AnswerRun(ctx, call, id);
}

}  // namespace

std::optional<Job> WaitCompleted(Context& ctx, Call& call, const std::string& id) {
  auto job = WaitFinal(ctx, call, id);
  if (!job || !CheckCompleted(call, *job)) return std::nullopt;
  return job;
}

UploadLimits UploadLimitsOf(const HttpOptions& options) {
  UploadLimits l;
  l.max_file_bytes = options.max_upload_bytes;
  return l;
}

std::string ParamForError(const Error& e) {
  if (e.code == "model_not_found" || e.code == "bad_model_name" ||
      e.code == "model_cannot_do_task") {
    return "model";
  }
  if (e.code == "bad_input_text" || e.code == "unexpected_audio") return "input";
  if (e.code == "bad_voice") return "voice";
  if (e.code == "bad_speed") return "speed";
  if (e.code == "bad_language") return "language";
  if (e.code == "vad_model_missing" || e.code == "bad_chunking_strategy") {
    return "chunking_strategy";
  }
  if (e.code == "bad_device" || e.code == "unknown_device" || e.code == "bad_device_selection") {
    return "device";
  }
  if (e.kind == ErrorKind::kBadInput &&
      (e.code == "not_media" || e.code == "no_audio_stream" || e.code == "corrupt_audio" ||
       e.code == "unsupported_codec" || e.code == "empty_audio" || e.code == "truncated" ||
       e.code == "too_long")) {
    return "file";
  }
  return "";
}

std::optional<ApiError> TakeIdempotencyKey(const Call& call, server::SubmitJob& job) {
  const std::string key = call.req.get_header_value("Idempotency-Key");
  if (key.empty()) return std::nullopt;
  bool printable = key.size() <= 255;
  for (unsigned char c : key) printable = printable && c >= 0x20 && c != 0x7f;
  if (!printable) {
    return MakeApiError(400, "bad_idempotency_key",
                        "Idempotency-Key must be at most 255 printable bytes");
  }
  job.idempotency_key = key;
  return std::nullopt;
}

std::optional<ApiError> RefuseEarly(Context& ctx) {
  // The service bounds pending + running jobs (and submissions in flight): at the bound now, the
  // submission would be refused after its upload was stored, fsynced and probed. Refusing now
  // spares all of that (under load, a third of the submissions are refused).
  if (!ctx.service.jobs().QueueFull()) return std::nullopt;
  ApiError e = MakeApiError(503, "queue_full", "the queue is full; retry later");
  e.retry_after_s = std::max(1, ctx.service.jobs().RetryAfterSeconds());
  return e;
}

std::optional<ApiError> RefuseLowDisk(Context& ctx, int64_t incoming_bytes) {
  const int64_t margin = ctx.live.Get()->min_free_disk_bytes;
  if (margin <= 0) return std::nullopt;
  auto space = store::DiskSpaceOf(ctx.service.blobs().dir());
  if (!space.ok()) return std::nullopt;
  if (store::LeavesMargin(space->free_bytes, incoming_bytes, margin)) return std::nullopt;
  // Messages name sizes, never the directory.
  if (store::LeavesMargin(space->free_bytes, 0, margin)) {
    return MakeApiError(507, "insufficient_storage",
                        "the upload (" + gpu::FormatSize(incoming_bytes) +
                            ") would leave the server with less free disk space than it keeps "
                            "in reserve (" +
                            gpu::FormatSize(margin) + "); retry later or send a smaller file");
  }
  return MakeApiError(507, "insufficient_storage",
                      "the server is low on disk space (" + gpu::FormatSize(space->free_bytes) +
                          " free, " + gpu::FormatSize(margin) +
                          " kept in reserve) and accepts no uploads now; retry later");
}

std::optional<ApiError> CheckModel(Context& ctx, const std::string& model) {
  // Only a definite "no such model" is answered here, before the upload is stored; every other
  // case (paths, names the service resolves its own way) is left to the service.
  if (model.find('/') != std::string::npos ||
      (model.size() > 4 && model.compare(model.size() - 4, 4, ".bin") == 0)) {
    return std::nullopt;  // path-like: the service decides (servers refuse model paths)
  }
  const models::ModelCatalog catalog = CatalogOf(ctx);
  auto entry = catalog.Find(model, /*allow_paths=*/true);
  if (entry.ok() || entry.error().code != "model_not_found") return std::nullopt;
  std::string installed;
  for (const auto& m : catalog.List()) installed += (installed.empty() ? "" : ", ") + m.name;
  return MakeApiError(404, "model_not_found",
                      "model '" + model + "' is not installed on this server (installed: " +
                          (installed.empty() ? "none" : installed) + "; GET /v1/models)",
                      "model");
}

bool ReadMultipartJob(Context& ctx, Call& call, const JobRequestRules& rules,
                      MultipartUpload& upload, server::SubmitJob& job,
                      std::unique_ptr<server::QueuePlace>& place) {
  // The place is held from before the upload is read: submissions past the room left are refused
  // now, not once their upload was stored, fsynced and probed.
  auto reserved = ctx.service.jobs().Reserve();
  if (!reserved.ok()) {
    DrainBody(call);
    SendError(call.res, FromError(reserved.error()));
    return false;
  }
  place = std::move(reserved).value();
  if (auto e = RefuseLowDisk(ctx, static_cast<int64_t>(ContentLength(call.req)))) {
    DrainBody(call);
    SendError(call.res, *e);
    return false;
  }
  if (auto e = ReadMultipart(call, upload)) {
    SendError(call.res, *e);
    return false;
  }
  if (!upload.has_file()) {
    SendError(call.res, MakeApiError(400, "missing_file",
                                     "the audio file is missing (form field 'file')", "file"));
    return false;
  }
  if (auto e = ParseJobRequest(FieldsOf(upload), rules, job)) {
    SendError(call.res, *e);
    return false;
  }
  job.params.filename = CleanFilename(upload.filename());
  if (auto e = TakeIdempotencyKey(call, job)) {
    SendError(call.res, *e);
    return false;
  }
  if (auto e = CheckModel(ctx, job.model)) {
    SendError(call.res, *e);
    return false;
  }
  return true;
}

std::optional<store::Inserted> SubmitMultipart(Context& ctx, Call& call,
                                               const JobRequestRules& rules) {
  MultipartUpload upload(&ctx.service.blobs(), UploadLimitsOf(ctx.options), "file");
  server::SubmitJob job;
  std::unique_ptr<server::QueuePlace> place;
  if (!ReadMultipartJob(ctx, call, rules, upload, job, place)) return std::nullopt;
  // Only now, with every field valid, does the upload become a blob.
  auto blob = upload.CommitFile();
  if (!blob.ok()) {
    SendError(call.res, FromUploadError(blob.error(), job.params.filename));
    return std::nullopt;
  }
  job.blob_digest = blob->digest;
  auto inserted = ctx.service.jobs().Submit(job, std::move(place));
  if (!inserted.ok()) {
    SendError(call.res, FromError(inserted.error(), ParamForError(inserted.error())));
    return std::nullopt;
  }
  return std::move(inserted.value());
}

void AddOpenAiRoutes(ApiRouter& router, Context& ctx) {
  router.Add("POST", "/v1/audio/transcriptions",
             [&ctx](Call& call) { Transcribe(ctx, call, "transcribe"); });
  router.Add("POST", "/v1/audio/translations",
             [&ctx](Call& call) { Transcribe(ctx, call, "translate"); });
}

}  // namespace steno::api
