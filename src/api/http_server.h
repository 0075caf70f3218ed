// `steno serve`'s HTTP front: the OpenAI-compatible transcription endpoints, the async jobs API
// with live events, model lifecycle and monitoring, over cpp-httplib (Debian's build).
//
// Built to hold hundreds of waiting clients at once. cpp-httplib serves each connection on one
// thread for as long as it is open, and a synchronous transcription or an SSE stream keeps its
// connection for minutes, so the worker pool is elastic: it starts small and grows on demand up
// to `max_connections` threads (idle ones cost only their stacks), and the listen backlog is
// raised from the library's 5 to `listen_backlog`. Past max_connections, new connections wait
// for a free thread; keep-alive connections give theirs back after `keep_alive_timeout_s`.
//
// Stalled clients (issue 21): a request whose headers are read holds its thread while its body
// is read, so a client announcing a body and sending nothing would hold one for as long as the
// read timeout allows; a few hundred of them took every thread. Two bounds end that:
//  - `max_connections_per_client`: requests of one client address sending their body at once
//    (api/client_uploads.h says what is counted and why). One more is refused 429
//    too_many_uploads (Retry-After: 1) as soon as its headers are read, and its connection
//    closed, so its thread is free again at once; requests being handled (synchronous
//    transcriptions, SSE) are not counted, however many.
//  - `read_timeout_s`: the longest wait for the next bytes of a request, headers or body (the
//    library's one read timeout covers both). A body that stops arriving ends in 408
//    request_timeout and the connection closes. Headers have no total deadline beyond it and
//    the header size caps (the library reads them without a hook).
// Health checks and other clients are then served by the threads the bound leaves free.
//
// Limits: request bodies (`max_upload_bytes`, 413 before reading when Content-Length says so),
// JSON bodies (`max_json_bytes`), multipart fields (api/upload.h), headers (count; the library
// caps each line at 8 KiB and the URI at 8 KiB), read/write timeouts against slow clients.
//
// Stop() ends it: the listener closes, SSE streams and synchronous waits end (503
// shutting_down for the waits), and Stop returns once every worker thread has finished.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "api/auth.h"
#include "api/realtime_service.h"
#include "core/mutex.h"
#include "core/result.h"
#include "gpu/gpu_config.h"
#include "server/job_service.h"
#include "store/blob_store.h"  // job_service.h uses it without including it

namespace steno::api {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (see HttpServer::port)
  int max_connections = 512;
  int min_threads = 8;
  int listen_backlog = 1024;
  int64_t max_upload_bytes = int64_t{1} << 30;
  int64_t max_json_bytes = 1 << 20;
  int max_headers = 100;
  int max_connections_per_client = 128;  // requests of one address sending a body; < 1: none
  int read_timeout_s = 20;  // no bytes of a request's headers or body for this long: it ends
  int write_timeout_s = 60;
  int keep_alive_timeout_s = 5;
  int keep_alive_max_count = 1000;
  int64_t sync_timeout_ms = 3'600'000;   // a synchronous transcription waits at most this (504)
  int64_t sse_keepalive_ms = 15'000;     // a comment line on an idle SSE stream
  std::string cors_origin;               // "": no CORS headers; "*" or one origin
  std::string dashboard_dir;             // "": the dashboard's embedded files; else read from here
  std::vector<std::string> allow_paths;  // roots for server-side paths (POST /v1/jobs {"path"})
  ApiKeys keys;                          // empty: no authentication
  std::string default_model;             // for requests naming none (or "whisper-1")
  // What the service was started with, for GET /v1/models, /v1/gpus and /metrics.
  std::string models_dir;  // empty: steno::ModelsDir()
  // Uploads (and server-path copies) are refused with 507 insufficient_storage, before they are
  // read, while the blob store's filesystem has less free space than this, or would have once the
  // request's Content-Length is stored (--min-free-disk; 0: no such check, only a full disk
  // refuses).
  int64_t min_free_disk_bytes = 0;
  gpu::ReserveConfig reserve;
  double safety_factor = gpu::kDefaultSafetyFactor;
  // Alerts firing now, for GET /v1/alerts ({"alerts": [...]}) and /metrics (Prometheus lines);
  // empty: no alert monitor (an empty list, no lines).
  std::function<std::string()> alerts_json;
  std::function<std::string()> alerts_metrics;
  // Live transcription sessions (GET /v1/realtime): timeouts and bounds (default_model is
  // this struct's).
  RealtimeOptions realtime;
};

// The HTTP options as a reload last set them, swapped whole: readers take the current value
// and keep it for their request. A reload changes what routes read per request (sync_timeout_ms,
// min_free_disk_bytes, reserve, safety_factor); the listener's own settings (host, port,
// threads, limits of a connection) need a restart. Safe from any thread.
class LiveHttpOptions {
 public:
  explicit LiveHttpOptions(HttpOptions options)
      : current_(std::make_shared<const HttpOptions>(std::move(options))) {}
  std::shared_ptr<const HttpOptions> Get() const {
    MutexLock lock(mu_);
    return current_;
  }
  void Set(HttpOptions options) {
    auto fresh = std::make_shared<const HttpOptions>(std::move(options));
    MutexLock lock(mu_);
    current_ = std::move(fresh);
  }

 private:
  mutable Mutex mu_;
  std::shared_ptr<const HttpOptions> current_ GUARDED_BY(mu_);
};

class HttpServer {
 public:
  // Binds (a bad host, a port in use: kUnavailable "bind_failed"; bad --allow-path: kBadInput)
  // and starts serving on its own thread. `service` must outlive the server. Once listening, it
  // sets the service's node describer (ClusterMember::SetNodeDescriber): what a node sharing its
  // store publishes is this server's URL, devices, runners and ledger (api::DescribeNode).
  static Result<std::unique_ptr<HttpServer>> Start(HttpOptions options,
                                                   server::JobService& service);
  ~HttpServer();  // Stop()

  int port() const;
  std::string url() const;  // "http://127.0.0.1:8080"
  // Idempotent; safe from any thread except the server's own workers.
  void Stop();
  // A config reload (SIGHUP): requests from now on read `options` (see LiveHttpOptions for what
  // a reload changes). Safe from any thread.
  void Reconfigure(HttpOptions options);

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace steno::api
