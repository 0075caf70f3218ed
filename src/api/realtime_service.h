// RealtimeService: live transcription sessions over WebSocket, speaking OpenAI's Realtime
// transcription events (api/realtime_protocol.h), each session one job of the supervisor's
// (server/live_sessions.h).
//
// WebSocket: Boost.Beast (Debian's libboost-dev, header-only; Boost.System is header-only since
// 1.69) over Boost.Asio, beside the HTTP server: Debian 12's cpp-httplib (0.11) has no
// WebSocket, and Beast is the best-kept WebSocket implementation Debian packages for C++. The
// upgrade request arrives on the API's own port through cpp-httplib (GET /v1/realtime, with the
// API key checked like every route's); its handler takes the connection's socket away from the
// HTTP server (api/realtime_upgrade.h) and hands it here, and returns at once: no HTTP worker
// thread is held for a session. Sessions run asynchronously on a small pool of Asio threads
// owned by this service: one read loop and one write queue per session, on its strand.
//
// A session:
//  - on connect: `transcription_session.created` (the session object; its model is the query's
//    `model`, or null). Its job is submitted once it knows its model: at once with ?model=, at
//    a `transcription_session.update` naming one, or at the first audio or commit with the
//    server's default model (none: an error event "model_required", the session stays usable).
//    "whisper-1", "gpt-4o-transcribe" and "gpt-4o-mini-transcribe" name the default model.
//  - waiting for a stream: if the job is not admitted within kWaitingNoticeMs, the client gets
//    `steno.session.waiting` {model, admit_timeout_ms}, then `steno.session.admitted` {model,
//    runner_id, device} once it is; after admit_timeout_ms without one, an error event
//    "admission_timeout" and a close (1013, try again later). Audio sent meanwhile is held, up to
//    max_buffer_ms of it (more: an error event "buffer_full", the excess dropped).
//  - audio (`input_audio_buffer.append`), `commit` and `clear` go to the runner in order
//    (converted to PCM16 16 kHz), its events come back as OpenAI's (speech_started/stopped,
//    committed, transcription delta/completed/failed; the runner's refusals such as "buffer_full"
//    as error events). `clear` is answered `input_audio_buffer.cleared` at once.
//  - bad input gets an OpenAI error event and the session goes on: invalid JSON, an unknown
//    event type, bad base64, a bad field. A binary frame gets an error event and a close with
//    1003; a message over max_frame_bytes is read to its end and dropped (never held whole),
//    then an error event "message_too_big" and a close with 1009.
//  - no audio for idle_timeout_ms: error event "idle_timeout", close 1000. A client that reads
//    its events too slowly (over kMaxQueuedBytes unsent): close 1008.
//  - the client gone (or its close frame): the job is cancelled at once (its stream is free).
//    The job's end otherwise closes the session: 1000 after a client's `session.close`, 1001
//    when the server shuts down, 1011 when the job failed (with an error event first).
// Stop() closes every session with 1001 and waits (bounded) for their close frames.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "server/live_sessions.h"

namespace steno::api {

struct RealtimeOptions {
  int threads = 2;                    // Asio threads serving every session
  int64_t admit_timeout_ms = 30'000;  // --realtime-admit-timeout
  int64_t idle_timeout_ms = 60'000;   // --realtime-idle-timeout
  int64_t max_buffer_ms = 30'000;     // audio held per session before admission
  int64_t max_frame_bytes = 4 << 20;  // one WebSocket message (1009 beyond)
  std::string default_model;          // for sessions naming none ("" : they must name one)
};

// The upgrade request as the HTTP server read it.
struct UpgradeRequest {
  std::string target;  // path and query
  std::vector<std::pair<std::string, std::string>> headers;
  std::string model;  // the query's `model` ("" if none)
};

class RealtimeService {
 public:
  static constexpr int64_t kWaitingNoticeMs = 250;
  static constexpr size_t kMaxQueuedBytes = 8 << 20;

  RealtimeService(RealtimeOptions options, server::LiveSessions& sessions);
  ~RealtimeService();  // Stop()

  // Takes over connected TCP socket `fd` (closed by this service from now on) whose WebSocket
  // upgrade `request` was read; answers the handshake and runs the session. Safe from any
  // thread.
  void Accept(int fd, UpgradeRequest request);
  // Sessions connected now.
  int open_sessions() const;
  // Closes every session (1001) and stops the threads; waits up to 3 s for the close frames.
  // Idempotent.
  void Stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace steno::api
