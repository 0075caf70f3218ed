// Field names and small builders for the runner protocol's messages (protocol.h carries them),
// and the kinds of failure a runner reports. The kinds are an enum everywhere above the wire:
// their names exist only here, where frames are built and read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace steno::runner {

// Why a runner failed a job or its load (DESIGN.md, "Runner protocol"): what the scheduler
// decides retries on. Every runner kind reports these; the whisper runner's `error` frames carry
// them by name.
enum class RunnerErrorKind {
  kOom,        // the device refused memory: retried with a raised estimate
  kBadInput,   // the input or request cannot work anywhere: failed at once
  kCancelled,  // aborted on request
  kTimeout,    // ran past its timeout: failed at once
  kInternal,   // anything else the runner reports
  kCrash,      // the runner died (set by the supervisor side): retried elsewhere
};

// The wire name: "oom", "bad_input", "cancelled", "timeout", "internal", "crash". Also the job
// error code the scheduler records for it.
const char* ErrorKindName(RunnerErrorKind kind);
// The kind a frame names; an unknown or missing name is kInternal.
RunnerErrorKind ParseErrorKind(std::string_view name);

// Maps an engine/audio error to the kind a runner reports.
RunnerErrorKind ErrorKindForProtocol(ErrorKind kind);

// {"type":"feed","job_id":...,"input":...}: the next input of a live job (protocol.h); `input`
// is a live::Input as JSON (core/live_items.h).
nlohmann::json FeedMessage(const std::string& job_id, const nlohmann::json& input);

// {"type":"done","job_id":...,"processing_ms":...,"result":...}: a job's success.
nlohmann::json DoneMessage(const std::string& job_id, int64_t processing_ms, nlohmann::json result);

// {"type":"error","kind":...,"message":...} plus "job_id" when it concerns one job.
nlohmann::json ErrorMessage(const std::string& job_id, RunnerErrorKind kind,
                            const std::string& message);

}  // namespace steno::runner
