// Durations as people write them in flags, config files and request fields: "30" (seconds),
// "30s", "5m", "1h". The one parser behind --lease, --read-timeout, --sync-timeout,
// --shutdown-grace, --keep-alive and the API's keep_alive field.
#pragma once

#include <optional>
#include <string_view>

namespace steno {

inline constexpr int kMaxDurationS = 366 * 86400;

// Whole seconds, 0 to kMaxDurationS; surrounding whitespace is ignored. nullopt for anything
// else: a negative number, another unit, a fraction, a value beyond a year.
std::optional<int> ParseDurationSeconds(std::string_view text);

}  // namespace steno
