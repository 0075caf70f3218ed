#include "api/transcription_stream.h"

#include <algorithm>
#include <chrono>
#include <memory>

#include <spdlog/spdlog.h>

#include "api/sse.h"
#include "core/strings.h"

namespace steno::api {
namespace {

// What the stream has sent so far, for the deltas and the final text.
struct Progress {
  int next_segment = 0;  // segments before it were sent (a retried run repeats them: skipped)
  std::string text;      // the deltas joined
};

std::string ErrorFrame(uint64_t seq, const std::string& code, const std::string& message) {
  return SseFrame("error", seq,
                  {{"type", "error"},
                   {"error", {{"message", message}, {"type", "server_error"}, {"code", code}}}});
}

// The frame for one job event, or "" for none. Runs on the thread that delivers events.
std::string FrameFor(const server::JobEvent& e, Progress& p, uint64_t seq) {
  using Kind = server::JobEvent::Kind;
  if (e.kind == Kind::kSegment) {
    const int id = e.segment.value("id", -1);
    if (id < p.next_segment) return {};
    p.next_segment = id + 1;
    std::string delta = e.segment.value("text", std::string());
    if (p.text.empty()) delta = std::string(TrimLeft(delta));
    if (delta.empty()) return {};
    p.text += delta;
    return SseFrame("transcript.text.delta", seq,
                    {{"type", "transcript.text.delta"}, {"delta", delta}});
  }
  if (e.kind != Kind::kState || !IsFinal(e.job.state)) return {};
  if (e.job.state == JobState::kCompleted) {
    return SseFrame("transcript.text.done", seq,
                    {{"type", "transcript.text.done"}, {"text", p.text}});
  }
  if (e.job.state == JobState::kCancelled) {
    return ErrorFrame(seq, "job_cancelled", "job " + e.job.id + " was cancelled");
  }
  const Error err =
      e.job.error.value_or(Error(ErrorKind::kInternal, "job_failed", "the job failed"));
  return ErrorFrame(seq, err.code.empty() ? "job_failed" : err.code, err.message);
}

}  // namespace

void StreamTranscription(Context& ctx, Call& call, const std::string& id) {
  auto stream = std::make_shared<SseStream>();
  auto progress = std::make_shared<Progress>();
  std::weak_ptr<SseStream> weak = stream;
  auto sub = ctx.service.events().Subscribe(id, [weak, progress](const server::JobEvent& e) {
    auto s = weak.lock();
    if (!s) return false;
    const bool final = e.kind == server::JobEvent::Kind::kState && IsFinal(e.job.state);
    {
      std::lock_guard lock(s->mu);
      if (s->job_done) return false;
      std::string frame = FrameFor(e, *progress, s->seq + 1);
      if (!frame.empty()) {
        ++s->seq;
        s->frames.push_back(std::move(frame));
      }
      s->job_done = final;
    }
    s->cv.notify_one();
    return !final;
  });
  if (!sub.ok()) return SendError(call.res, FromError(sub.error()));
  {
    std::lock_guard lock(stream->mu);
    stream->subscription = std::move(sub.value());
  }
  SseOptions options;
  // Frequent keep-alives: a client that went away is found (and its job cancelled) within about
  // two of them, not after the dashboard's long period.
  options.keepalive = std::min(std::chrono::milliseconds(ctx.options.sse_keepalive_ms),
                               std::chrono::milliseconds(1000));
  server::JobService* service = &ctx.service;
  options.on_end = [service, id](bool finished) {
    if (finished) return;
    // The client left (or the server stops): nobody reads this transcript any more.
    auto job = service->jobs().Get(id);
    if (job.ok() && !IsFinal(job->state)) {
      spdlog::info("job {}: its streaming client went away; cancelling it", id);
      (void)service->jobs().Cancel(id);
    }
  };
  ServeSse(call, stream, ctx.stopping, options);
}

}  // namespace steno::api
