// Server-Sent Events streams (internal to src/api): GET /v1/jobs/{id}/events and the dashboard's
// GET /v1/events. A stream is a queue of ready frames that other threads fill (a job
// subscription, on the service's writer thread) and the connection's worker thread drains; a
// stream may also produce a frame of its own every tick (the dashboard's snapshots). Idle streams
// send a comment line every keep-alive period, which also finds clients that went away.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "api/routes.h"

namespace steno::api {

struct SseStream {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> frames;
  bool job_done = false;  // the subscribed job's final state is queued: no more job frames
  uint64_t seq = 0;       // the last frame's id
  server::JobService::Subscription subscription;
};

// "event: <event>\nid: <id>\ndata: <json>\n\n"
std::string SseFrame(const char* event, uint64_t id, const ojson& data);

// Queues job `id`'s events on `stream` (state: the job as GET /v1/jobs/{id} shows it; progress:
// {"job_id","state","percent"}; segment: {"job_id","segment"}), the current state and the
// segments so far first. The subscription is held by the stream. Errors: the service's
// (kNotFound for an unknown job).
Status SubscribeJob(server::JobService& service, const std::string& id,
                    const std::shared_ptr<SseStream>& stream);

struct SseOptions {
  std::chrono::milliseconds keepalive{15'000};
  bool end_with_job = true;  // close the response after the job's final state
  // Called on the worker thread right away and then every `tick` (not set: never) to make a
  // frame of the stream's own; it gets the stream's next frame id.
  std::function<std::string(uint64_t id)> tick_frame;
  std::chrono::milliseconds tick{1'000};
  // Called once when the response is over, on the worker thread: `finished` is false when the
  // client went away (or the server stopped) before the stream's end.
  std::function<void(bool finished)> on_end;
};

// Answers `call` with the stream (200, text/event-stream, no caching). Ends when the client goes,
// the server stops (`stopping`), or after the job's final state when end_with_job.
void ServeSse(Call& call, std::shared_ptr<SseStream> stream, const std::atomic<bool>& stopping,
              SseOptions options);

}  // namespace steno::api
