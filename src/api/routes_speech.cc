// Text to speech: POST /v1/audio/speech, OpenAI's request (a JSON body: model, input, voice,
// response_format mp3|opus|aac|flac|wav|pcm, speed, instructions; steno's extras priority,
// keep_alive, device, timeout). The request becomes a speech job like any other (durable,
// scheduled, visible in GET /v1/jobs, X-Steno-Job-Id names it). The same job submitted through
// POST /v1/jobs (a JSON body with "task": "speech") is answered at once, and
// GET /v1/jobs/{id}/result sends its audio (SendAudioResult).
//
// The synchronous request streams the audio: it waits for the job's first audio byte
// (runners/server/speech_stream.h), then answers 200 with the model's Content-Type and sends the
// audio chunked (Transfer-Encoding: chunked) as the model's server produces it, read from the
// job's result file as it grows; the file is stored as the job's result all the same.
//   - Before the first byte, every outcome is a plain response: the job's error as JSON (4xx/5xx,
//     as WaitCompleted gives it), 504 after the synchronous timeout, 503 while stopping. A run
//     that breaks off before its first byte sent here is retried by the usual rules unseen.
//   - A run that breaks off after bytes were sent ends the response without its last chunk: the
//     client sees a truncated chunked body (an error in HTTP clients), never a short success. The
//     job itself goes on by the usual retry rules; its audio, if a retry completes it, is at
//     GET /v1/jobs/{id}/result.
//   - A client that goes away mid-stream (a write to it fails) cancels the job.
//   - A job this process does not run (another node claimed it) is answered once it completes,
//     from its stored file, with a Content-Length.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>

#include <spdlog/spdlog.h>

#include "api/routes.h"
#include "core/unique_fd.h"
#include "runners/server/speech_stream.h"

namespace steno::api {
namespace {

using runners::SpeechStream;

// The streamed response's state, shared by its provider and its releaser.
struct Streaming {
  std::shared_ptr<SpeechStream> stream;
  uint64_t run = 0;    // the run whose audio is sent
  int64_t offset = 0;  // bytes of it sent
  bool cut = false;    // the response was ended because the run broke off
  server::JobService* service = nullptr;
  std::atomic<bool>* stopping = nullptr;
  std::string id;
};

// Sends what the run has written since the last call, or waits a moment for more (the library
// calls again). False ends the response without its last chunk.
bool ProvideAudio(Streaming& st, httplib::DataSink& sink) {
  constexpr size_t kPiece = 16 * 1024;  // many pieces: a client gone is found by a failed write
  const SpeechStream::View v = st.stream->Current();
  if (v.run != st.run) {  // a retry began: the run being sent broke off
    st.cut = true;
    return false;
  }
  if (v.bytes > st.offset) {
    char buf[kPiece];
    const size_t want = static_cast<size_t>(std::min<int64_t>(v.bytes - st.offset, kPiece));
    const ssize_t n = pread(v.file->get(), buf, want, static_cast<off_t>(st.offset));
    if (n <= 0) {
      st.cut = true;
      return false;
    }
    st.offset += n;
    return sink.write(buf, static_cast<size_t>(n));
  }
  if (v.ended) {
    if (!v.complete) {
      st.cut = true;
      return false;
    }
    sink.done();
    return true;
  }
  if (*st.stopping) return false;
  st.stream->Wait(v.version, std::chrono::milliseconds(1000));
  return true;
}

// Answers with the run's audio as it comes (`first`: the view with its first bytes).
void StreamAudio(Context& ctx, Call& call, std::shared_ptr<SpeechStream> stream,
                 const SpeechStream::View& first, const std::string& id) {
  auto st = std::make_shared<Streaming>();
  st->stream = std::move(stream);
  st->run = first.run;
  st->service = &ctx.service;
  st->stopping = &ctx.stopping;
  st->id = id;
  call.res.status = 200;
  call.res.set_chunked_content_provider(
      first.content_type, [st](size_t, httplib::DataSink& sink) { return ProvideAudio(*st, sink); },
      [st](bool success) {
        if (success || st->cut || *st->stopping) return;
        // The client went away: nobody takes this audio any more.
        auto job = st->service->jobs().Get(st->id);
        if (job.ok() && !IsFinal(job->state)) {
          spdlog::info("job {}: its speech client went away mid-stream; cancelling it", st->id);
          (void)st->service->jobs().Cancel(st->id);
        }
      });
}

// Waits for the job's first audio byte (true, `first` set) or its end, the synchronous timeout
// or the server stopping (false, the response set: the job's outcome or the error).
bool WaitFirstAudio(Context& ctx, Call& call, const SpeechStream& stream, const std::string& id,
                    SpeechStream::View& first) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(ctx.live.Get()->sync_timeout_ms);
  SpeechStream::View v = stream.Current();
  for (;;) {
    if (v.run > 0 && v.bytes > 0 && (!v.ended || v.complete)) {
      first = v;
      return true;
    }
    // The store too: a final state the events did not bring (another node's, a user's cancel).
    auto job = ctx.service.jobs().Get(id);
    if (v.job_ended || ctx.stopping || (job.ok() && IsFinal(job->state))) {
      // Final (or stopping): WaitCompleted answers at once.
      if (WaitCompleted(ctx, call, id)) SendAudioResult(ctx, call, id);
      return false;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      SendError(call.res, MakeApiError(504, "timeout",
                                       "the job did not finish in time; it continues as job " + id +
                                           " (GET /v1/jobs/" + id + ")"));
      return false;
    }
    v = stream.Wait(v.version, std::min(left, std::chrono::milliseconds(500)));
  }
}

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
  auto stream = runners::SpeechStreams::Process().Watch(id);
  std::weak_ptr<SpeechStream> weak = stream;
  auto sub = ctx.service.events().Subscribe(id, [weak](const server::JobEvent& e) {
    const bool final = e.kind == server::JobEvent::Kind::kState && IsFinal(e.job.state);
    auto s = weak.lock();
    if (s && final) s->JobEnded();
    return s && !final;
  });
  if (!sub.ok()) return SendError(call.res, FromError(sub.error()));
  SpeechStream::View first;
  if (!WaitFirstAudio(ctx, call, *stream, id, first)) return;
  StreamAudio(ctx, call, std::move(stream), first, id);
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
  // Closed when the response no longer needs it.
  auto file = std::make_shared<const UniqueFd>(open(audio->path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file->get() < 0) {
    return SendError(call.res, MakeApiError(404, "result_file_missing",
                                            "the audio of job " + id + " is no longer stored"));
  }
  call.res.status = 200;
  call.res.set_content_provider(
      static_cast<size_t>(audio->bytes), audio->content_type,
      [file](size_t offset, size_t length, httplib::DataSink& sink) {
        char buf[64 * 1024];
        const ssize_t n =
            pread(file->get(), buf, std::min(length, sizeof buf), static_cast<off_t>(offset));
        if (n <= 0) return false;  // shorter than it was: the connection is cut, not padded
        return sink.write(buf, static_cast<size_t>(n));
      });
}

void AddSpeechRoutes(ApiRouter& router, Context& ctx) {
  router.Add("POST", "/v1/audio/speech", [&ctx](Call& call) { Speech(ctx, call); });
}

}  // namespace steno::api
