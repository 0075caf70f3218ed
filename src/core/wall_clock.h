// Wall-clock time as steno stores it (milliseconds since the Unix epoch), and a monotonic clock.
#pragma once

#include <chrono>
#include <cstdint>

namespace steno {

inline int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A monotonic clock for intervals within one process (never for stored times).
inline int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace steno
