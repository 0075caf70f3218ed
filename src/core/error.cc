#include "core/error.h"

namespace steno {

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kBadInput: return "bad_input";
    case ErrorKind::kNotFound: return "not_found";
    case ErrorKind::kConflict: return "conflict";
    case ErrorKind::kUnavailable: return "unavailable";
    case ErrorKind::kIntegrity: return "integrity";
    case ErrorKind::kOutOfMemory: return "oom";
    case ErrorKind::kCancelled: return "cancelled";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kIo: return "io";
    case ErrorKind::kNoSpace: return "no_space";
    case ErrorKind::kInternal: return "internal";
  }
  return "internal";
}

}  // namespace steno
