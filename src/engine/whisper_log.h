// Routes whisper.cpp's and ggml's log output into steno's logger, and lets the code that loads a
// model or creates a stream capture the sizes those log lines report.
//
// whisper.cpp's log hook is process-wide, but it is called on the thread doing the work, so a
// capture is per thread: a FootprintCapture sees only the lines its own thread causes.
#pragma once

#include "engine/footprint.h"

namespace steno::engine {

// Installs the log hook. Idempotent and thread-safe. whisper.cpp INFO lines go to debug level,
// WARN to warn, ERROR to error.
void InstallWhisperLogRouting();

// While alive, size lines logged on this thread are parsed into `*fp`.
// While alive, on this thread: once MarkAborted() was called (the caller asked the run to stop,
// through whisper.cpp's abort hooks), whisper.cpp's ERROR lines are logged at debug level. An
// asked-for abort makes whisper.cpp log "failed to encode" and the like; they are no error then.
class AbortedRunLogs {
 public:
  AbortedRunLogs();
  ~AbortedRunLogs();
  AbortedRunLogs(const AbortedRunLogs&) = delete;
  AbortedRunLogs& operator=(const AbortedRunLogs&) = delete;
  static void MarkAborted();  // no effect outside a scope

 private:
  int previous_;
};

class FootprintCapture {
 public:
  explicit FootprintCapture(Footprint* fp);
  ~FootprintCapture();
  FootprintCapture(const FootprintCapture&) = delete;
  FootprintCapture& operator=(const FootprintCapture&) = delete;

 private:
  Footprint* previous_;
};

}  // namespace steno::engine
