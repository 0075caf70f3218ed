#include "runner/messages.h"

#include <array>
#include <utility>

namespace steno::runner {
namespace {

constexpr std::array<std::pair<RunnerErrorKind, const char*>, 6> kNames{{
    {RunnerErrorKind::kOom, "oom"},
    {RunnerErrorKind::kBadInput, "bad_input"},
    {RunnerErrorKind::kCancelled, "cancelled"},
    {RunnerErrorKind::kTimeout, "timeout"},
    {RunnerErrorKind::kInternal, "internal"},
    {RunnerErrorKind::kCrash, "crash"},
}};

}  // namespace

const char* ErrorKindName(RunnerErrorKind kind) {
  for (const auto& [k, name] : kNames) {
    if (k == kind) return name;
  }
  return "internal";
}

RunnerErrorKind ParseErrorKind(std::string_view name) {
  for (const auto& [k, n] : kNames) {
    if (name == n) return k;
  }
  return RunnerErrorKind::kInternal;
}

RunnerErrorKind ErrorKindForProtocol(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kBadInput:
    case ErrorKind::kNotFound:
    case ErrorKind::kIntegrity: return RunnerErrorKind::kBadInput;
    case ErrorKind::kOutOfMemory: return RunnerErrorKind::kOom;
    case ErrorKind::kCancelled: return RunnerErrorKind::kCancelled;
    case ErrorKind::kTimeout: return RunnerErrorKind::kTimeout;
    default: return RunnerErrorKind::kInternal;
  }
}

nlohmann::json FeedMessage(const std::string& job_id, const nlohmann::json& input) {
  return {{"type", "feed"}, {"job_id", job_id}, {"input", input}};
}

nlohmann::json DoneMessage(const std::string& job_id, int64_t processing_ms,
                           nlohmann::json result) {
  return {{"type", "done"},
          {"job_id", job_id},
          {"processing_ms", processing_ms},
          {"result", std::move(result)}};
}

nlohmann::json ErrorMessage(const std::string& job_id, RunnerErrorKind kind,
                            const std::string& message) {
  nlohmann::json m = {{"type", "error"}, {"kind", ErrorKindName(kind)}, {"message", message}};
  if (!job_id.empty()) m["job_id"] = job_id;
  return m;
}

}  // namespace steno::runner
