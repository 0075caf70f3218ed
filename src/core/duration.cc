#include "core/duration.h"

#include <charconv>
#include <cstdint>

#include "core/strings.h"

namespace steno {

std::optional<int> ParseDurationSeconds(std::string_view text) {
  std::string_view s = Trim(text);
  if (s.empty()) return std::nullopt;
  int64_t unit = 1;
  switch (s.back()) {
    case 's': s.remove_suffix(1); break;
    case 'm':
      unit = 60;
      s.remove_suffix(1);
      break;
    case 'h':
      unit = 3600;
      s.remove_suffix(1);
      break;
    default: break;
  }
  s = Trim(s);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  if (v < 0 || v > kMaxDurationS / unit) return std::nullopt;
  return static_cast<int>(v * unit);
}

}  // namespace steno
