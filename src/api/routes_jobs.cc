// The async jobs API: POST /v1/jobs (multipart upload, JSON naming a server-side file under an
// allowed root, or JSON with "task": "speech" and OpenAI's speech fields: routes_speech.cc), GET
// /v1/jobs (filters, paging), GET /v1/jobs/{id}, GET /v1/jobs/{id}/result, GET /v1/jobs/{id}/events
// (Server-Sent Events) and DELETE /v1/jobs/{id} (cancel).
//
// Every job names its "node" (running it, or that ran its last attempt); GET /v1/jobs/{id} adds
// its "attempts" (each run: node, start, end, outcome, error), read in one snapshot with the job.
// The list leaves the attempts out: it stays one read of the jobs table however long the page.
//
// A job is refused with 507 insufficient_storage while the data dir's disk is below the
// --min-free-disk margin (or full); nothing is stored then.
//
// A speech job's result is its audio file, sent with its Content-Type (format, if given, must be
// the stored one). Results of jobs that are not completed answer 409 (not 404: the job exists, it
// is in the wrong state): job_not_completed while it is pending/loading/processing, job_failed
// (with the job's own error message) and job_cancelled.
#include <sys/stat.h>

#include "api/routes.h"
#include "api/sse.h"

namespace steno::api {
namespace {

std::string Basename(const std::string& path) {
  auto pos = path.find_last_of('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

void SendCreated(Call& call, const store::Inserted& inserted) {
  call.res.set_header("Location", "/v1/jobs/" + inserted.job.id);
  call.res.set_header("X-Steno-Job-Id", inserted.job.id);
  SendJson(call.res, inserted.existing ? 200 : 202, JobJson(inserted.job));
}

// POST /v1/jobs with {"path": "/srv/audio/x.wav", "model": ..., ...}.
void SubmitPath(Context& ctx, Call& call) {
  RequestFields fields;
  server::SubmitJob job;
  if (auto e = ReadJsonJobRequest(ctx, call, {"", ctx.options.default_model}, fields, job)) {
    return SendError(call.res, *e);
  }
  if (job.params.task == "speech") {
    if (fields.count("path")) {
      return SendError(call.res, MakeApiError(400, "unexpected_audio",
                                              "a speech job reads its \"input\" text aloud; it "
                                              "takes no \"path\"",
                                              "path"));
    }
    auto inserted = SubmitSpeech(ctx, call, std::move(job));
    if (inserted) SendCreated(call, *inserted);
    return;
  }
  auto path_it = fields.find("path");
  if (path_it == fields.end() || path_it->second.empty() || path_it->second.back().empty()) {
    return SendError(call.res,
                     MakeApiError(400, "missing_path",
                                  "name the audio with \"path\" (a file on the server) or send it "
                                  "as multipart/form-data in 'file'",
                                  "path"));
  }
  const std::string path = path_it->second.back();
  auto file = ctx.paths.Open(path);
  if (!file.ok()) return SendError(call.res, FromError(file.error(), "path"));
  struct stat st {};
  if (auto e = RefuseLowDisk(ctx, stat(file->proc_path().c_str(), &st) == 0 ? st.st_size : 0)) {
    return SendError(call.res, *e);
  }
  job.server_path = file->proc_path();
  job.params.filename = Basename(file->real_path());
  if (auto e = TakeIdempotencyKey(call, job)) return SendError(call.res, *e);
  auto inserted = ctx.service.jobs().Submit(job);  // `file` stays open until the copy is made
  if (!inserted.ok()) {
    Error e = inserted.error();
    ReplaceAll(e.message, file->proc_path(), path);  // the client's name, not our descriptor
    return SendError(call.res, FromError(e, ParamForError(e).empty() ? "path" : ParamForError(e)));
  }
  SendCreated(call, *inserted);
}

void CreateJob(Context& ctx, Call& call) {
  if (IsMultipart(call.req)) {
    auto inserted = SubmitMultipart(ctx, call, {"", ctx.options.default_model});
    if (inserted) SendCreated(call, *inserted);
    return;
  }
  if (IsJson(call.req)) return SubmitPath(ctx, call);
  SendError(call.res, MakeApiError(415, "unsupported_content_type",
                                   "send multipart/form-data (with the audio in 'file') or "
                                   "application/json (with a server \"path\")"));
}

void ListJobs(Context& ctx, Call& call) {
  store::JobFilter filter;
  const auto& q = call.req;
  if (q.has_param("state")) {
    std::string states = q.get_param_value("state");
    size_t i = 0;
    while (i <= states.size()) {
      size_t j = states.find(',', i);
      if (j == std::string::npos) j = states.size();
      auto s = ParseJobState(states.substr(i, j - i));
      if (!s) {
        return SendError(call.res, MakeApiError(400, "bad_state",
                                                "state must be pending, loading, processing, "
                                                "completed, failed or cancelled",
                                                "state"));
      }
      filter.states.push_back(*s);
      i = j + 1;
    }
  }
  if (q.has_param("model")) filter.model = q.get_param_value("model");
  if (q.has_param("limit")) {
    const std::string l = q.get_param_value("limit");
    int n = 0;
    bool ok = !l.empty() && l.size() <= 4;
    for (char c : l) {
      ok = ok && c >= '0' && c <= '9';
      if (ok) n = n * 10 + (c - '0');
    }
    if (!ok || n < 1 || n > 1000) {
      return SendError(call.res,
                       MakeApiError(400, "bad_limit", "limit must be from 1 to 1000", "limit"));
    }
    filter.limit = n;
  }
  if (q.has_param("page_token")) filter.page_token = q.get_param_value("page_token");
  auto page = ctx.service.jobs().List(filter);
  if (!page.ok()) {
    ApiError e = FromError(page.error());
    if (e.status == 400) e.param = "page_token";
    return SendError(call.res, e);
  }
  ojson data = ojson::array();
  for (const auto& job : page->jobs) data.push_back(JobJson(job));
  SendJson(call.res, 200,
           {{"object", "list"},
            {"data", std::move(data)},
            {"has_more", !page->next_page_token.empty()},
            {"next_page_token",
             page->next_page_token.empty() ? ojson(nullptr) : ojson(page->next_page_token)}});
}

void GetJob(Context& ctx, Call& call) {
  auto job = ctx.service.jobs().GetWithAttempts(call.params[0]);
  if (!job.ok()) return SendError(call.res, FromError(job.error()));
  SendJson(call.res, 200, JobWithAttemptsJson(*job));
}

void GetResult(Context& ctx, Call& call) {
  const std::string& id = call.params[0];
  auto job = ctx.service.jobs().Get(id);
  if (!job.ok()) return SendError(call.res, FromError(job.error()));
  switch (job->state) {
    case JobState::kCompleted: break;
    case JobState::kFailed:
      return SendError(call.res,
                       MakeApiError(409, "job_failed",
                                    "job " + id + " failed: " +
                                        (job->error ? job->error->message : "no reason recorded")));
    case JobState::kCancelled:
      return SendError(call.res,
                       MakeApiError(409, "job_cancelled", "job " + id + " was cancelled"));
    default:
      return SendError(call.res, MakeApiError(409, "job_not_completed",
                                              "job " + id + " is " + JobStateName(job->state) +
                                                  "; its result is not ready"));
  }
  std::string format = job->params.response_format;
  for (const char* key : {"format", "response_format"}) {
    if (call.req.has_param(key)) format = call.req.get_param_value(key);
  }
  if (job->params.task == "speech") {
    if (format != job->params.response_format) {
      return SendError(call.res,
                       MakeApiError(400, "bad_format",
                                    "job " + id + "'s audio is stored as " +
                                        job->params.response_format + "; it is not converted",
                                    "format"));
    }
    return SendAudioResult(ctx, call, id);
  }
  if (format == "txt") format = "text";
  if (format != "json" && format != "text" && format != "srt" && format != "vtt" &&
      format != "verbose_json") {
    return SendError(call.res,
                     MakeApiError(400, "bad_format",
                                  "format must be json, text, srt, vtt or verbose_json", "format"));
  }
  auto text = ctx.service.jobs().ResultText(id, format);
  if (!text.ok()) return SendError(call.res, FromError(text.error()));
  call.res.status = 200;
  call.res.set_content(*text, format == "json" || format == "verbose_json"
                                  ? "application/json"
                                  : "text/plain; charset=utf-8");
}

void CancelJob(Context& ctx, Call& call) {
  auto job = ctx.service.jobs().Cancel(call.params[0]);
  if (!job.ok()) return SendError(call.res, FromError(job.error()));
  SendJson(call.res, 200, JobJson(*job));
}

void JobEvents(Context& ctx, Call& call) {
  auto stream = std::make_shared<SseStream>();
  if (auto st = SubscribeJob(ctx.service, call.params[0], stream); !st) {
    return SendError(call.res, FromError(st.error()));
  }
  SseOptions options;
  options.keepalive = std::chrono::milliseconds(ctx.options.sse_keepalive_ms);
  ServeSse(call, std::move(stream), ctx.stopping, std::move(options));
}

}  // namespace

void AddJobRoutes(ApiRouter& router, Context& ctx) {
  router.Add("POST", "/v1/jobs", [&ctx](Call& c) { CreateJob(ctx, c); });
  router.Add("GET", "/v1/jobs", [&ctx](Call& c) { ListJobs(ctx, c); });
  router.Add("GET", "/v1/jobs/{id}", [&ctx](Call& c) { GetJob(ctx, c); });
  router.Add("DELETE", "/v1/jobs/{id}", [&ctx](Call& c) { CancelJob(ctx, c); });
  router.Add("GET", "/v1/jobs/{id}/result", [&ctx](Call& c) { GetResult(ctx, c); });
  router.Add("GET", "/v1/jobs/{id}/events", [&ctx](Call& c) { JobEvents(ctx, c); });
}

}  // namespace steno::api
