#include "gpu/gpu_config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "core/strings.h"

namespace steno::gpu {
namespace {

// A plain decimal number ("0.9", "2", ".5"), nothing else: strtod alone would take "1e3",
// "inf", "0x10" and leading junk.
bool ParseDecimal(const std::string& s, double& out) {
  if (s.empty() || s.find_first_not_of("0123456789.") != std::string::npos ||
      std::count(s.begin(), s.end(), '.') > 1 || s == ".") {
    return false;
  }
  out = std::strtod(s.c_str(), nullptr);
  return true;
}

Error BadReserve(std::string_view value, const std::string& why) {
  return Error(ErrorKind::kBadInput, "bad_reserve",
               "invalid --reserve '" + std::string(value) + "': " + why +
                   " (use SIZE for every device or cuda:N=SIZE for one, e.g. 512MiB or "
                   "cuda:0=2GiB)");
}

}  // namespace

int64_t ReserveConfig::For(int cuda_index) const {
  auto it = per_device.find(cuda_index);
  return it == per_device.end() ? default_bytes : it->second;
}

Result<ReserveConfig> ParseReserve(const std::vector<std::string>& values) {
  ReserveConfig config;
  for (const auto& value : values) {
    size_t start = 0;
    while (start <= value.size()) {
      size_t comma = value.find(',', start);
      if (comma == std::string::npos) comma = value.size();
      std::string item(Trim(std::string_view(value).substr(start, comma - start)));
      start = comma + 1;
      if (item.empty()) return BadReserve(value, "an entry is empty");
      const size_t eq = item.find('=');
      auto size = ParseSize(eq == std::string::npos ? item : item.substr(eq + 1));
      if (!size.ok()) {
        return BadReserve(value, "'" + (eq == std::string::npos ? item : item.substr(eq + 1)) +
                                     "' is not a size (a number with a unit: B, KiB, MiB, GiB, "
                                     "KB, MB, GB)");
      }
      if (eq == std::string::npos) {
        config.default_bytes = *size;
        continue;
      }
      auto device = ParseDeviceSelection(item.substr(0, eq));
      if (!device.ok() || device->mode != DeviceSelection::Mode::kCudaList ||
          device->cuda.size() != 1) {
        return BadReserve(value, "'" + item.substr(0, eq) + "' is not one device like cuda:0");
      }
      config.per_device[device->cuda[0]] = *size;
    }
  }
  return config;
}

Result<double> ParseSafetyFactor(std::string_view text) {
  double f = 0;
  if (!ParseDecimal(std::string(Trim(text)), f) || !(f > 0) || f > 1) {
    return Error(ErrorKind::kBadInput, "bad_safety_factor",
                 "invalid safety factor '" + std::string(text) +
                     "': use a number above 0 and at most 1 (default 0.9)");
  }
  return f;
}

Result<std::chrono::milliseconds> ParseInterval(std::string_view text) {
  std::string s(Trim(text));
  double scale_ms = 1000;  // bare numbers are seconds
  for (auto [suffix, ms] :
       {std::pair{"ms", 1.0}, {"s", 1000.0}, {"m", 60000.0}, {"h", 3600000.0}}) {
    if (s.size() > std::string_view(suffix).size() && s.ends_with(suffix)) {
      s = Trim(s.substr(0, s.size() - std::string_view(suffix).size()));
      scale_ms = ms;
      break;
    }
  }
  double value = 0;
  const double ms = ParseDecimal(s, value) ? value * scale_ms : -1;
  if (!(ms >= 10 && ms <= 3600 * 1000)) {
    return Error(ErrorKind::kBadInput, "bad_interval",
                 "invalid interval '" + std::string(text) +
                     "': use 10ms to 1h, e.g. 500ms, 1s, 2.5s, 1m (a bare number is seconds)");
  }
  return std::chrono::milliseconds(std::llround(ms));
}

int64_t AllocatableBytes(int64_t total, int64_t reserved, double safety_factor) {
  const int64_t usable = std::max<int64_t>(0, total - reserved);
  return static_cast<int64_t>(std::floor(static_cast<double>(usable) * safety_factor));
}

}  // namespace steno::gpu
