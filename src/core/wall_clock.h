// Wall-clock time as steno stores it: milliseconds since the Unix epoch.
#pragma once

#include <chrono>
#include <cstdint>

namespace steno {

inline int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace steno
