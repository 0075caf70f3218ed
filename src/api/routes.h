// What the route files share (internal to src/api): the per-request Call, the server-wide
// Context, and helpers for bodies and responses. Each routes_*.cc registers one area's routes.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "api/api_errors.h"
#include "api/http_server.h"
#include "api/job_request.h"
#include "api/memory_history.h"
#include "api/path_policy.h"
#include "api/realtime_service.h"
#include "api/router.h"
#include "api/upload.h"
#include "core/wall_clock.h"
#include "gpu/device.h"
#include "models/model_catalog.h"
#include "server/job_service.h"

namespace steno::api {

using ojson = nlohmann::ordered_json;

struct Call {
  const httplib::Request& req;
  httplib::Response& res;
  const httplib::ContentReader* reader;  // null for methods without a body (GET, HEAD)
  std::vector<std::string> params;       // the route's {name} segments
  bool consumed = false;        // the body was read (else the connection closes after the response)
  bool body_touched = false;    // the reader was called (it must not be called twice)
  bool body_timed_out = false;  // the body read failed because no bytes came for the read timeout
};

using Handler = std::function<void(Call&)>;
using ApiRouter = Router<Handler>;

// The dashboard's snapshot (DashboardSnapshot), computed at most every kMaxAgeMs however many
// pages follow the event stream: every stream sends the latest one.
struct SnapshotCache {
  static constexpr int64_t kMaxAgeMs = 500;
  std::mutex mu;
  int64_t at_ms = 0;  // steady clock; 0: none yet
  nlohmann::ordered_json value;
};

struct Context {
  server::JobService& service;
  const HttpOptions& options;   // as started: what a reload cannot change
  const LiveHttpOptions& live;  // what a reload changes: read per request (live.Get())
  const PathPolicy& paths;
  // Set by Stop(): long waits (synchronous transcriptions, SSE) end promptly.
  std::atomic<bool>& stopping;
  MemoryHistory& history;    // GPU memory of the last 15 minutes (the dashboard's chart)
  SnapshotCache& snapshots;  // the dashboard's latest snapshot
  // This node's API URL as other nodes and browsers reach it (set before the first request).
  const std::string& url;
  // Live transcription sessions over WebSocket (GET /v1/realtime).
  RealtimeService& realtime;
};

void AddOpenAiRoutes(ApiRouter& router, Context& ctx);
void AddJobRoutes(ApiRouter& router, Context& ctx);
void AddModelRoutes(ApiRouter& router, Context& ctx);
void AddMonitorRoutes(ApiRouter& router, Context& ctx);
void AddEventRoutes(ApiRouter& router, Context& ctx);
void AddDashboardRoutes(ApiRouter& router, Context& ctx);
void AddClusterRoutes(ApiRouter& router, Context& ctx);
void AddSpeechRoutes(ApiRouter& router, Context& ctx);
void AddServerProxyRoutes(ApiRouter& router, Context& ctx);
void AddRealtimeRoutes(ApiRouter& router, Context& ctx);

// --- responses ---
void SendJson(httplib::Response& res, int status, const ojson& body);
void SendError(httplib::Response& res, const ApiError& error);
// The error and, because the body may be left unread, "Connection: close" (the client must not
// send its next request after bytes the server never consumed).
void SendErrorAndClose(httplib::Response& res, const ApiError& error);
// Makes the connection close once `res` (already filled) is sent.
void CloseAfter(httplib::Response& res);

// --- request bodies ---
// The declared Content-Length; 0 when absent (chunked) or not a number, at most 2^62.
uint64_t ContentLength(const httplib::Request& req);
// Reads and drops a body the route refused without reading (up to a limit), so the client gets
// the response rather than a reset connection. True when the whole body was read.
bool DrainBody(Call& call);
// The error for a body read that failed: 408 request_timeout when the client stopped sending
// (Call::body_timed_out), else 400 bad_body.
ApiError BodyReadFailed(const Call& call);
// Reads the body as it comes, whatever its Content-Type (multipart too), into `receiver`.
bool ReadRaw(Call& call, const httplib::ContentReceiver& receiver);
// Reads a small body (JSON) whole, up to `limit` bytes: 413 payload_too_large beyond it.
std::optional<ApiError> ReadBody(Call& call, int64_t limit, std::string& out);
// Parses the body as a JSON object: 400 bad_json. An empty body gives an empty object.
std::optional<ApiError> ReadJsonObject(Call& call, int64_t limit, nlohmann::json& out);
// A job request sent as a JSON object (ReadJsonObject within max_json_bytes, then
// ParseJobRequest with `rules`): its fields into `fields`, the job into `job`.
std::optional<ApiError> ReadJsonJobRequest(Context& ctx, Call& call, const JobRequestRules& rules,
                                           RequestFields& fields, server::SubmitJob& job);
// Streams a multipart/form-data body into `upload` (415 if the body is not multipart).
std::optional<ApiError> ReadMultipart(Call& call, MultipartUpload& upload);
bool IsMultipart(const httplib::Request& req);
bool IsJson(const httplib::Request& req);

// The fields of a multipart upload as RequestFields (job_request.h).
std::map<std::string, std::vector<std::string>> FieldsOf(const MultipartUpload& upload);

// Waits for a submitted job to end (up to the sync timeout; a stopping server ends the wait):
// the completed job, or nullopt with the error response set (504 timeout, 409 job_cancelled,
// the job's own error for a failed one).
std::optional<Job> WaitCompleted(Context& ctx, Call& call, const std::string& id);
// The request's Idempotency-Key into `job` (none: left empty); 400 bad_idempotency_key for one
// longer than 255 bytes or holding control characters.
std::optional<ApiError> TakeIdempotencyKey(const Call& call, server::SubmitJob& job);
// 503 queue_full (with Retry-After) when the job queue is at its bound already
// (JobRequests::QueueFull).
std::optional<ApiError> RefuseEarly(Context& ctx);
// 404 model_not_found (naming "model") for a name no catalog entry has; nullopt otherwise
// (paths and the rest are left to the service).
std::optional<ApiError> CheckModel(Context& ctx, const std::string& model);
// Submits a speech job (task "speech": no audio; `job` parsed by ParseJobRequest); with the
// request's Idempotency-Key. On failure the error response is already set.
std::optional<store::Inserted> SubmitSpeech(Context& ctx, Call& call, server::SubmitJob job);
// Sends a completed speech job's audio file as the response body (read from the file as the
// client takes it), with its Content-Type. Errors: 404 result_file_missing, ...
void SendAudioResult(Context& ctx, Call& call, const std::string& id);

// Reserves a place in the queue for the request (503 queue_full with Retry-After when there is
// none: JobRequests::Reserve), then reads a multipart upload (the audio in "file", streamed into
// `upload`) and its fields into `job`, every field checked (the model named exists; the
// Idempotency-Key is well formed). The place is for JobRequests::Submit or RunNow. On failure
// the error response is already set and false is returned.
bool ReadMultipartJob(Context& ctx, Call& call, const JobRequestRules& rules,
                      MultipartUpload& upload, server::SubmitJob& job,
                      std::unique_ptr<server::QueuePlace>& place);
// Reads a multipart upload (ReadMultipartJob) and submits it as a job. On failure the error
// response is already set and nullopt is returned.
std::optional<store::Inserted> SubmitMultipart(Context& ctx, Call& call,
                                               const JobRequestRules& rules);
// 507 insufficient_storage while storing `incoming_bytes` more (0: unknown) would leave the blob
// store's filesystem with less than options.min_free_disk_bytes free; nullopt when it would not,
// when the check is off, or when the free space cannot be read (a write that fails says so).
std::optional<ApiError> RefuseLowDisk(Context& ctx, int64_t incoming_bytes);
// The `param` to blame for a submission error ("model" for model_not_found, "file" for audio
// that cannot be decoded, ...).
std::string ParamForError(const Error& error);
// Limits for uploads from the server's options.
UploadLimits UploadLimitsOf(const HttpOptions& options);

// A job as the API shows it: its fields, "node" (running it now or ran its last attempt; null
// before its first claim), the error, result and events URLs.
ojson JobJson(const Job& job);
// A job with its runs, as GET /v1/jobs/{id} shows it: JobJson plus "attempts", oldest first,
// each {"attempt", "node", "started_ms", "ended_ms" (null while it runs), "outcome" (null while
// it runs; completed | failed | cancelled | requeued | lost | lease_expired), "error" (as the
// job's, or null)}.
ojson JobWithAttemptsJson(const store::JobWithAttempts& job);
// The model catalog requests are checked against: the runtime's (with declared and managed
// server models), or the models dir's files while no runtime runs.
models::ModelCatalog CatalogOf(Context& ctx);
// A runner as GET /v1/runners shows it; `now` is the wall clock (Unix ms) the snapshot's times
// are converted to.
ojson RunnerJson(const sched::RunnerInfo& runner, const sched::SchedulerSnapshot& snap,
                 int64_t now);
// A GPU's ledger with the original design's field names (GET /api/memory_status): device,
// index, total, reserved, allocatable, allocated, external, available, usage_percent, and its
// compute limit (ComputeJson).
ojson LedgerJson(const sched::DeviceLedger& device);
// A device's compute limit: {"mode": "auto"|"fixed"|"off", "limit" (null: none), "running",
// "throughput_audio_s_per_s", "real_time_factor", "mean_running", "windows"} (the last four
// from the latest measured window; 0 before one).
ojson ComputeJson(const sched::ConcurrencyView& compute);
// The CPU's ledger (device, cores, used_threads, available_threads, computing_threads, compute;
// vram_ledger.h's CpuLedger); null without a CPU device.
ojson CpuJson(const sched::SchedulerSnapshot& snap);
// A device sample as GET /v1/gpus shows it (gpu::SampleJson with the server's reserve); GET
// /v1/gpus adds each device's "compute" (ComputeJson).
ojson DeviceJson(const gpu::DeviceSample& sample, const HttpOptions& options);
// This node as it publishes itself to a shared store (ClusterMember::SetNodeDescriber) and as
// GET /v1/cluster shows it on the single-node store: `url`, devices as GET /v1/gpus, runners as
// GET /v1/runners, ledger {"devices": [LedgerJson...], "cpu", "running", "queued", "admitting"}.
// Reads only the service's in-memory state (no store access): safe from any thread, quick.
store::NodeInfo DescribeNode(server::JobService& service, const HttpOptions& options,
                             const std::string& url);
// Every node as GET /v1/cluster's "nodes" lists them (see routes_cluster.cc). Errors: the
// store's (reading the shared nodes table).
Result<ojson> ClusterNodesJson(Context& ctx);
// Live transcription sessions as the dashboard's snapshot lists them ("live_sessions"): each
// {"id" (its job), "model", "state" ("waiting" for a stream | "active"), "runner_id" (null while
// waiting), "device", "created_ms", "admitted_ms" (null while waiting), "audio_ms" (audio received
// so far), "completed" (utterances transcribed)}, oldest first.
ojson LiveSessionsJson(Context& ctx);
// Sets each runner's "live_sessions" (live sessions holding one of its streams now) in `runners`,
// a list of RunnerJson objects.
void AddLiveSessionCounts(Context& ctx, ojson& runners);
// What GET /v1/events sends as `snapshot` (see routes_events.cc); from ctx.snapshots when it
// is fresh.
ojson DashboardSnapshot(Context& ctx);

}  // namespace steno::api
