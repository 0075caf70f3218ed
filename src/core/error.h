// Typed errors, returned as values across layers (never thrown across them).
//
// An Error carries a kind (what a caller branches on: retry, exit code, HTTP status), a stable
// machine-readable code (what a script or API client matches on), a message a user can act on and,
// where a later retry may succeed, how long to wait. Callers branch on the kind and the fields,
// never on text in the message.
#pragma once

#include <string>
#include <utility>

namespace steno {

enum class ErrorKind {
  kBadInput,     // the caller's input is wrong (file, flag, request); retrying cannot help
  kNotFound,     // a named thing (file, model, job) does not exist
  kConflict,     // the named thing is in a state that does not allow this (a job already final,
                 // a node still live); the same request cannot succeed until that state changes
  kUnavailable,  // a resource or the network is not reachable now; may succeed later
  kIntegrity,    // data failed a checksum or format check
  kOutOfMemory,  // an allocation was refused (host or device)
  kCancelled,    // stopped on request
  kTimeout,      // stopped because a deadline passed
  kIo,           // the filesystem refused a read or write
  kNoSpace,      // the filesystem is full (ENOSPC, EDQUOT) or below steno's free-space margin;
                 // may succeed once space is freed
  kInternal,     // a bug or an unexpected library failure
};

// Short lowercase name of a kind ("bad_input", "not_found", ...), stable for logs and APIs.
const char* ErrorKindName(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string code;     // stable identifier, e.g. "no_audio_stream"
  std::string message;  // full sentence for a person
  // kUnavailable: seconds after which the same request may succeed (a full queue's drain time);
  // 0: no estimate.
  int retry_after_s = 0;

  Error() = default;
  Error(ErrorKind k, std::string c, std::string m, int retry_after = 0)
      : kind(k), code(std::move(c)), message(std::move(m)), retry_after_s(retry_after) {}
};

}  // namespace steno
