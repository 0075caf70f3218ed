#include "api/sse.h"

namespace steno::api {

std::string SseFrame(const char* event, uint64_t id, const ojson& data) {
  return std::string("event: ") + event + "\nid: " + std::to_string(id) +
         "\ndata: " + data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

namespace {

std::string FrameOf(const server::JobEvent& e, uint64_t seq) {
  switch (e.kind) {
    case server::JobEvent::Kind::kState: return SseFrame("state", seq, JobJson(e.job));
    case server::JobEvent::Kind::kProgress:
      return SseFrame(
          "progress", seq,
          {{"job_id", e.job.id}, {"state", JobStateName(e.job.state)}, {"percent", e.percent}});
    case server::JobEvent::Kind::kSegment:
      return SseFrame("segment", seq, {{"job_id", e.job.id}, {"segment", ojson(e.segment)}});
  }
  return {};
}

}  // namespace

Status SubscribeJob(server::JobService& service, const std::string& id,
                    const std::shared_ptr<SseStream>& stream) {
  std::weak_ptr<SseStream> weak = stream;
  auto sub = service.events().Subscribe(id, [weak](const server::JobEvent& e) {
    auto s = weak.lock();
    if (!s) return false;
    const bool final = e.kind == server::JobEvent::Kind::kState && IsFinal(e.job.state);
    {
      std::lock_guard lock(s->mu);
      if (s->job_done) return false;
      s->frames.push_back(FrameOf(e, ++s->seq));
      s->job_done = final;
    }
    s->cv.notify_one();
    return !final;
  });
  if (!sub.ok()) return sub.error();
  std::lock_guard lock(stream->mu);
  stream->subscription = std::move(sub.value());
  return {};
}

void ServeSse(Call& call, std::shared_ptr<SseStream> stream, const std::atomic<bool>& stopping,
              SseOptions options) {
  call.res.status = 200;
  call.res.set_header("Cache-Control", "no-cache");
  call.res.set_header("X-Accel-Buffering", "no");  // proxies: do not buffer the stream
  using Clock = std::chrono::steady_clock;
  auto next_tick = std::make_shared<Clock::time_point>(Clock::now());
  auto ticked = std::make_shared<bool>(false);
  const std::atomic<bool>* stop = &stopping;
  call.res.set_chunked_content_provider(
      "text/event-stream",
      [stream, stop, options, next_tick, ticked](size_t, httplib::DataSink& sink) {
        std::deque<std::string> out;
        bool end = false;
        bool tick = false;
        uint64_t tick_id = 0;
        {
          std::unique_lock lock(stream->mu);
          auto deadline = Clock::now() + options.keepalive;
          if (options.tick_frame) deadline = std::min(deadline, *next_tick);
          // Short slices: a server that stops is noticed within a quarter second.
          while (stream->frames.empty() && !(options.end_with_job && stream->job_done) && !*stop &&
                 Clock::now() < deadline) {
            stream->cv.wait_until(
                lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(250)));
          }
          out.swap(stream->frames);
          end = options.end_with_job && stream->job_done;
          if (options.tick_frame && Clock::now() >= *next_tick) {
            tick = true;
            tick_id = ++stream->seq;
            *next_tick = Clock::now() + options.tick;
          }
        }
        if (tick) {
          // The first tick's frame opens the stream (before the job frames a subscription queued
          // while the request was being answered); later ones follow what is queued.
          if (!*ticked) {
            out.push_front(options.tick_frame(tick_id));
          } else {
            out.push_back(options.tick_frame(tick_id));
          }
          *ticked = true;
        }
        if (out.empty() && !end && !*stop) {
          // Idle: a comment keeps proxies from timing out and finds a client that left.
          static const char kPing[] = ": keep-alive\n\n";
          return sink.write(kPing, sizeof kPing - 1);
        }
        for (const auto& f : out) {
          if (!sink.write(f.data(), f.size())) return false;
        }
        if (end || *stop) sink.done();
        return true;
      },
      [stream, on_end = options.on_end](bool finished) {
        if (on_end) on_end(finished);
        server::JobService::Subscription sub;
        {
          std::lock_guard lock(stream->mu);
          sub = std::move(stream->subscription);
        }
        // Dropped outside the stream's lock: the subscription's own lock is taken before the
        // stream's when an event is delivered.
        sub.reset();
      });
}

}  // namespace steno::api
