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
thread_local std::string t_pending;  // a line arriving in pieces (GGML_LOG_LEVEL_CONT)
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
  t_pending += text ? text : "";
  // Emit every complete line; keep a trailing fragment for the next call.
  size_t start = 0;
  for (size_t nl; (nl = t_pending.find('\n', start)) != std::string::npos; start = nl + 1) {
    EmitLine(t_pending_level, t_pending.substr(start, nl - start));
  }
  t_pending.erase(0, start);
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
