#include "engine/footprint.h"

#include <charconv>
#include <cmath>

namespace steno::engine {
namespace {

struct SizeLine {
  std::string_view marker;  // text that identifies the line
  int64_t Footprint::*field;
};

// The markers as whisper.cpp 1.9.1 prints them (src/whisper.cpp, whisper_model_load and
// whisper_init_state).
constexpr SizeLine kLines[] = {
    {"model size", &Footprint::weights_bytes},
    {"kv self size", &Footprint::kv_self_bytes},
    {"kv cross size", &Footprint::kv_cross_bytes},
    {"kv pad  size", &Footprint::kv_pad_bytes},
    {"compute buffer (conv)", &Footprint::compute_conv_bytes},
    {"compute buffer (encode)", &Footprint::compute_encode_bytes},
    {"compute buffer (cross)", &Footprint::compute_cross_bytes},
    {"compute buffer (decode)", &Footprint::compute_decode_bytes},
};

// Parses the number after '=' in "... = 12.34 MB".
bool ParseMegabytes(std::string_view line, int64_t* bytes) {
  auto eq = line.find('=');
  if (eq == std::string_view::npos) return false;
  auto rest = line.substr(eq + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  double mb = 0;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), mb);
  if (ec != std::errc() || mb < 0) return false;
  std::string_view unit(ptr, rest.data() + rest.size() - ptr);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  if (unit.substr(0, 2) != "MB") return false;
  *bytes = static_cast<int64_t>(std::llround(mb * 1e6));
  return true;
}

}  // namespace

bool ParseFootprintLine(std::string_view line, Footprint* fp) {
  for (const auto& l : kLines) {
    if (line.find(l.marker) == std::string_view::npos) continue;
    int64_t bytes = 0;
    if (!ParseMegabytes(line, &bytes)) return false;
    fp->*l.field = bytes;
    return true;
  }
  return false;
}

}  // namespace steno::engine
