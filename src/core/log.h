// Process-wide logging. steno logs through spdlog to stderr; whisper.cpp and ggml log lines are
// routed here too (engine/whisper_log.h), so one level flag controls everything.
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

namespace steno::log {

// Sets the level from a name: trace|debug|info|warn|error|off. Unknown names return false.
bool SetLevel(std::string_view name);

// Configures the default logger: stderr, "[time] [level] message". Idempotent.
void Init();

}  // namespace steno::log
