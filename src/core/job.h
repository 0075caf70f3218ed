// A transcription job as every layer sees it: the API creates it, the store keeps it, the
// scheduler moves it through its states and a runner produces its result.
//
// States: pending -> loading -> processing -> completed | failed | cancelled. A job whose run is
// lost (runner or server crash, expired lease) goes back to pending with attempt + 1; the three
// final states never change again.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/chunk_work.h"
#include "core/error.h"
#include "core/live_items.h"
#include "core/result.h"
#include "core/vad_settings.h"

namespace steno {

enum class JobState {
  kPending,     // accepted and durable; waiting for a slot
  kLoading,     // claimed; its model is being loaded or a stream prepared
  kProcessing,  // a runner is transcribing it
  kCompleted,   // final: its result is stored
  kFailed,      // final: its error says why
  kCancelled,   // final: stopped by a user
};

// "pending", "loading", ... (stable: stored in databases and shown by the API).
const char* JobStateName(JobState state);
std::optional<JobState> ParseJobState(std::string_view name);
// completed, failed and cancelled: no transition leaves them.
bool IsFinal(JobState state);
// loading and processing: some worker holds the job's lease.
bool IsActive(JobState state);

// Queue order: high before normal before low (the scheduler adds aging so low never starves).
enum class Priority { kHigh = 0, kNormal = 1, kLow = 2 };

const char* PriorityName(Priority priority);  // "high" | "normal" | "low"
std::optional<Priority> ParsePriority(std::string_view name);

// What the client asked for, besides the model and the audio. Stored as JSON; fields a reader
// does not know are ignored, so a newer node can add fields without breaking an older one.
// Tasks: "transcribe" and "translate" (speech → text: audio in, a transcript out) and "speech"
// (text → speech, OpenAI's /v1/audio/speech: no audio in, `input` read aloud in `voice`; its
// result is an audio file, core/speech_format.h). Fields of the other kind of task are ignored.
struct JobParams {
  std::string task = "transcribe";  // "transcribe" | "translate" | "speech"
  std::string language = "auto";    // ISO 639-1 code, or "auto" to detect
  std::string prompt;               // initial prompt
  float temperature = 0.0f;
  // transcribe/translate: json | text | srt | vtt | verbose_json;
  // speech: mp3 | opus | aac | flac | wav | pcm (core/speech_format.h)
  std::string response_format = "json";
  std::string input;         // speech: the text to read aloud
  std::string voice;         // speech: the server's voice name ("alloy", ...)
  float speed = 1.0f;        // speech: 0.25 to 4
  std::string instructions;  // speech: how to speak (forwarded; servers may ignore it)
  bool word_timestamps = false;
  std::string device;               // "" lets the scheduler choose; "cpu", "cuda:1", ...
  std::optional<int> keep_alive_s;  // runner keep-alive after this job; unset: server default
  std::optional<int> timeout_s;     // per-job timeout; unset: server default
  std::string filename;             // the upload's original name, for display only
  // OpenAI's chunking_strategy as asked: "" (not given: the server's --vad default), "auto" (VAD
  // when the server has the model) or "server_vad" (VAD with the request's settings, required).
  std::string chunking_strategy;
  // The decision made when the job was accepted: set, the job runs with VAD and these settings;
  // unset, without. Jobs stored before VAD existed have neither field and run without.
  std::optional<VadSettings> vad;
  // Set only on the internal sub-jobs of a chunked job (server/chunked_jobs.h), never stored.
  std::optional<ChunkWork> chunk;
  // Set only on a live session's job (server/live_sessions.h: OpenAI Realtime transcription, in
  // memory, never stored): the session's settings at its start; its audio comes by
  // Scheduler::Feed.
  std::optional<live::Settings> live;
};

std::string JobParamsToJson(const JobParams& params);
// kBadInput "bad_job_params" when the text is not a JSON object or a known field has the wrong
// type.
Result<JobParams> JobParamsFromJson(std::string_view json);

// One job. Times are milliseconds since the Unix epoch; 0 means "not yet".
struct Job {
  std::string id;  // 26-character time-ordered random id (store/job_id.h)
  JobState state = JobState::kPending;
  Priority priority = Priority::kNormal;
  std::string model;  // model name as requested ("base.en", a path, ...)
  JobParams params;
  std::string blob_digest;     // SHA-256 (hex) of the upload in the blob store; empty if none
  int attempt = 1;             // the run this job is on, or will be on next; +1 when a run is lost
  std::optional<Error> error;  // why it failed, or why its last run was lost
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t started_ms = 0;     // when its current (or last) run was claimed
  int64_t finished_ms = 0;    // when it reached a final state
  int64_t not_before_ms = 0;  // not claimed before this time (retry backoff)
  std::string lease_owner;    // worker holding it while loading/processing
  int64_t lease_expires_ms = 0;
  std::string node;  // the node running it now, or that ran its last attempt; empty: never claimed
  std::string idempotency_key;  // client-supplied; empty if none
};

}  // namespace steno
