#include "runner/messages.h"

namespace steno::runner {

const char* ErrorKindForProtocol(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kBadInput:
    case ErrorKind::kNotFound:
    case ErrorKind::kIntegrity: return kKindBadInput;
    case ErrorKind::kOutOfMemory: return kKindOom;
    case ErrorKind::kCancelled: return kKindCancelled;
    case ErrorKind::kTimeout: return kKindTimeout;
    default: return kKindInternal;
  }
}

nlohmann::json ErrorMessage(const std::string& job_id, const char* kind,
                            const std::string& message) {
  nlohmann::json m = {{"type", "error"}, {"kind", kind}, {"message", message}};
  if (!job_id.empty()) m["job_id"] = job_id;
  return m;
}

}  // namespace steno::runner
