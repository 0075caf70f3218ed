// SIGINT / SIGTERM / SIGHUP for the long-running commands (`serve`, `transcribe`).
//
// The handlers only write the signal number to a pipe (async-signal-safe); Wait() reads it on an
// ordinary thread, where the command decides what to do. Handlers, not a blocked signal mask,
// so runner processes started later inherit nothing (exec resets handlers to the default).
//
// The one decision made inside the handler is the second stop signal: it means "now", and the
// process exits at once with 130. Runners go with it (each dies through PR_SET_PDEATHSIG).
#pragma once

#include <chrono>

namespace steno::cli {

enum class SignalKind { kNone, kStop, kReload };

class SignalWatch {
 public:
  // Installs the handlers (once per process). Not thread-safe against itself.
  static SignalWatch& Install();

  // The next signal, or kNone after `timeout`.
  SignalKind Wait(std::chrono::milliseconds timeout);
  // Makes a thread blocked in Wait() return kStop, as if SIGTERM had arrived (and counts it).
  void RequestStop();
  // Makes a thread blocked in Wait() return kNone now (no signal counted), e.g. so that it sees
  // the flag that ends its loop without waiting out its timeout.
  void Wake();

 private:
  SignalWatch() = default;
};

}  // namespace steno::cli
