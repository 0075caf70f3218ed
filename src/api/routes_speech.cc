// Text to speech: POST /v1/audio/speech, OpenAI's request (a JSON body: model, input, voice,
// response_format mp3|opus|aac|flac|wav|pcm, speed, instructions; steno's extras priority,
// keep_alive, device, timeout). The request becomes a speech job like any other (durable,
// scheduled, visible in GET /v1/jobs, X-Steno-Job-Id names it); the request waits for it and
// answers with the audio file the model's server returned, with its Content-Type. The same job
// submitted through POST /v1/jobs (a JSON body with "task": "speech") is answered at once, and
// GET /v1/jobs/{id}/result sends its audio (SendAudioResult).
//
// The audio is sent from the job's result file once the server has answered in full (the file
// is read as the client takes it); it is not relayed while the server is still producing it.
#include <fcntl.h>
#include <unistd.h>

#include <memory>

#include "api/routes.h"

namespace steno::api {
namespace {

// An open result file, closed when the response no longer needs it.
struct OpenFile {
  int fd = -1;
  ~OpenFile() {
    if (fd >= 0) close(fd);
  }
};

void Speech(Context& ctx, Call& call) {
  if (!IsJson(call.req)) {
    DrainBody(call);
    return SendError(call.res, MakeApiError(415, "unsupported_content_type",
                                            "send OpenAI's speech request as application/json"));
  }
  RequestFields fields;
  server::SubmitJob job;
  if (auto e = ReadJsonJobRequest(ctx, call, {"speech", ""}, fields, job)) {
    return SendError(call.res, *e);
  }
  auto inserted = SubmitSpeech(ctx, call, std::move(job));
  if (!inserted) return;
  const std::string id = inserted->job.id;
  call.res.set_header("X-Steno-Job-Id", id);
  if (!WaitCompleted(ctx, call, id)) return;
  SendAudioResult(ctx, call, id);
}

}  // namespace

std::optional<store::Inserted> SubmitSpeech(Context& ctx, Call& call, server::SubmitJob job) {
  if (auto e = RefuseEarly(ctx)) {
    SendError(call.res, *e);
    return std::nullopt;
  }
  if (auto e = TakeIdempotencyKey(call, job)) {
    SendError(call.res, *e);
    return std::nullopt;
  }
  if (auto e = CheckModel(ctx, job.model)) {
    SendError(call.res, *e);
    return std::nullopt;
  }
  auto inserted = ctx.service.jobs().Submit(job);
  if (!inserted.ok()) {
    SendError(call.res, FromError(inserted.error(), ParamForError(inserted.error())));
    return std::nullopt;
  }
  return std::move(inserted.value());
}

void SendAudioResult(Context& ctx, Call& call, const std::string& id) {
  auto audio = ctx.service.jobs().ResultAudio(id);
  if (!audio.ok()) return SendError(call.res, FromError(audio.error()));
  auto file = std::make_shared<OpenFile>();
  file->fd = open(audio->path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file->fd < 0) {
    return SendError(call.res, MakeApiError(404, "result_file_missing",
                                            "the audio of job " + id + " is no longer stored"));
  }
  call.res.status = 200;
  call.res.set_content_provider(
      static_cast<size_t>(audio->bytes), audio->content_type,
      [file](size_t offset, size_t length, httplib::DataSink& sink) {
        char buf[64 * 1024];
        const ssize_t n =
            pread(file->fd, buf, std::min(length, sizeof buf), static_cast<off_t>(offset));
        if (n <= 0) return false;  // shorter than it was: the connection is cut, not padded
        return sink.write(buf, static_cast<size_t>(n));
      });
}

void AddSpeechRoutes(ApiRouter& router, Context& ctx) {
  router.Add("POST", "/v1/audio/speech", [&ctx](Call& call) { Speech(ctx, call); });
}

}  // namespace steno::api
