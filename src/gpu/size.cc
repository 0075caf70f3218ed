#include "gpu/size.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>

#include "core/strings.h"

namespace steno::gpu {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Error BadSize(std::string_view text, const std::string& why) {
  return Error(ErrorKind::kBadInput, "bad_size",
               "invalid size '" + std::string(text) + "': " + why +
                   " (write a whole number of bytes or a number with a unit: B, KiB, MiB, GiB, "
                   "TiB, KB, MB, GB, TB; e.g. 512MiB, 24GiB, 1.5GB)");
}

// Bytes per unit, or 0 for an unknown unit.
int64_t UnitBytes(const std::string& unit) {
  struct Unit {
    const char* name;
    int64_t bytes;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},
      {"b", 1},
      {"kib", kKiB},
      {"mib", kMiB},
      {"gib", kGiB},
      {"tib", kGiB * 1024},
      {"kb", 1000},
      {"mb", 1000 * 1000},
      {"gb", 1000 * 1000 * 1000},
      {"tb", int64_t{1000} * 1000 * 1000 * 1000},
  };
  for (const auto& u : kUnits) {
    if (unit == u.name) return u.bytes;
  }
  return 0;
}

}  // namespace

Result<int64_t> ParseSize(std::string_view text) {
  std::string_view s = Trim(text);
  if (s.empty()) return BadSize(text, "it is empty");

  // The number: digits with at most one decimal point. No sign, no exponent, no hex: those are
  // never what someone meant by a memory size, and accepting them hides typos.
  size_t i = 0;
  bool seen_digit = false;
  bool seen_point = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      seen_digit = true;
    } else if (c == '.' && !seen_point) {
      seen_point = true;
    } else {
      break;
    }
  }
  if (!seen_digit) {
    return BadSize(text, s.front() == '-' ? "it is negative" : "it does not start with a number");
  }
  std::string number(s.substr(0, i));
  std::string unit = Lower(Trim(s.substr(i)));
  const int64_t per_unit = UnitBytes(unit);
  if (per_unit == 0) return BadSize(text, "unknown unit '" + std::string(Trim(s.substr(i))) + "'");

  if (!seen_point) {
    // Whole numbers stay exact in integer arithmetic (a double loses bytes past 2^53).
    int64_t value = 0;
    for (char c : number) {
      int digit = c - '0';
      if (value > (INT64_MAX - digit) / 10) return BadSize(text, "it is too large");
      value = value * 10 + digit;
    }
    if (value > INT64_MAX / per_unit) return BadSize(text, "it is too large");
    return value * per_unit;
  }
  if (per_unit == 1) return BadSize(text, "a number of bytes must be whole");
  const double bytes = std::strtod(number.c_str(), nullptr) * static_cast<double>(per_unit);
  // 2^63 is exactly representable; anything at or above it does not fit an int64_t.
  if (!(bytes < 9223372036854775808.0)) return BadSize(text, "it is too large");
  return static_cast<int64_t>(std::llround(bytes));
}

std::string FormatSize(int64_t bytes) {
  char buf[48];
  const double b = static_cast<double>(bytes);
  if (bytes < 0) {
    return "-" + FormatSize(bytes == INT64_MIN ? INT64_MAX : -bytes);
  } else if (bytes >= kGiB) {
    if (bytes % kGiB == 0) {
      std::snprintf(buf, sizeof buf, "%lld GiB", static_cast<long long>(bytes / kGiB));
    } else {
      std::snprintf(buf, sizeof buf, "%.2f GiB", b / static_cast<double>(kGiB));
    }
  } else if (bytes >= kMiB) {
    if (bytes % kMiB == 0) {
      std::snprintf(buf, sizeof buf, "%lld MiB", static_cast<long long>(bytes / kMiB));
    } else {
      std::snprintf(buf, sizeof buf, "%.1f MiB", b / static_cast<double>(kMiB));
    }
  } else if (bytes >= kKiB) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / static_cast<double>(kKiB));
  } else {
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  }
  return buf;
}

}  // namespace steno::gpu
