// Field names and small builders for the runner protocol's messages (protocol.h carries them).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace steno::runner {

// The kinds an `error` frame carries (DESIGN.md): what the supervisor decides retries on.
inline constexpr const char* kKindOom = "oom";
inline constexpr const char* kKindBadInput = "bad_input";
inline constexpr const char* kKindCancelled = "cancelled";
inline constexpr const char* kKindTimeout = "timeout";
inline constexpr const char* kKindInternal = "internal";
inline constexpr const char* kKindCrash = "crash";  // set by the supervisor when a runner dies

// Maps an engine/audio error to the protocol's kind.
const char* ErrorKindForProtocol(ErrorKind kind);

// {"type":"error","kind":...,"message":...} plus "job_id" when it concerns one job.
nlohmann::json ErrorMessage(const std::string& job_id, const char* kind,
                            const std::string& message);

}  // namespace steno::runner
