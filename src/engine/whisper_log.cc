#include "engine/whisper_log.h"

#include <mutex>
#include <string>

#include <spdlog/spdlog.h>
#include <whisper.h>

namespace steno::engine {
namespace {

thread_local Footprint* t_capture = nullptr;
// 0: no AbortedRunLogs scope; 1: in one, no abort yet; 2: in one, aborted.
thread_local int t_abort_scope = 0;
// A line arriving in pieces (GGML_LOG_LEVEL_CONT). Trivially destructible on purpose: a
// thread_local with a destructor registers it on the thread's first use, under the dynamic
// loader's lock, so a runner's model load (which logs from its first step) would wait out the
// FFmpeg dlopen that its prefetch thread runs meanwhile (tens of milliseconds, measured).
struct PendingLine {
  char text[2048];
  size_t size = 0;
};
thread_local PendingLine t_pending;
thread_local ggml_log_level t_pending_level = GGML_LOG_LEVEL_INFO;

void EmitLine(ggml_log_level level, const std::string& line) {
  if (line.empty()) return;
  if (t_capture) ParseFootprintLine(line, t_capture);
  switch (level) {
    case GGML_LOG_LEVEL_ERROR:
      if (t_abort_scope == 2) {
        spdlog::debug("whisper (aborted on request): {}", line);
      } else {
        spdlog::error("whisper: {}", line);
      }
      break;
    case GGML_LOG_LEVEL_WARN: spdlog::warn("whisper: {}", line); break;
    default: spdlog::debug("whisper: {}", line); break;
  }
}

void OnLog(ggml_log_level level, const char* text, void* /*user_data*/) {
  if (level != GGML_LOG_LEVEL_CONT) t_pending_level = level;
  // Emit every complete line; keep a trailing fragment for the next call (a fragment longer
  // than the buffer goes out as a line of its own).
  PendingLine& p = t_pending;
  for (const char* c = text ? text : ""; *c; ++c) {
    if (*c != '\n' && p.size < sizeof p.text) {
      p.text[p.size++] = *c;
      continue;
    }
    EmitLine(t_pending_level, std::string(p.text, p.size));
    p.size = 0;
    if (*c != '\n') p.text[p.size++] = *c;
  }
}

}  // namespace

void InstallWhisperLogRouting() {
  static std::once_flag once;
  std::call_once(once, [] { whisper_log_set(OnLog, nullptr); });
}

AbortedRunLogs::AbortedRunLogs() : previous_(t_abort_scope) {
  t_abort_scope = 1;
}

AbortedRunLogs::~AbortedRunLogs() {
  t_abort_scope = previous_;
}

void AbortedRunLogs::MarkAborted() {
  if (t_abort_scope != 0) t_abort_scope = 2;
}

FootprintCapture::FootprintCapture(Footprint* fp) : previous_(t_capture) {
  t_capture = fp;
}

FootprintCapture::~FootprintCapture() {
  t_capture = previous_;
}

}  // namespace steno::engine
