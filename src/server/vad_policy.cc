#include "server/vad_policy.h"

#include <filesystem>
#include <system_error>

#include "engine/vad.h"

namespace steno::server {
namespace {

bool Installed(const std::string& path) {
  std::error_code ec;
  return !path.empty() && std::filesystem::is_regular_file(path, ec);
}

}  // namespace

std::optional<VadPolicy::Mode> ParseVadMode(std::string_view text) {
  for (auto m : {VadPolicy::Mode::kOff, VadPolicy::Mode::kAuto, VadPolicy::Mode::kOn}) {
    if (text == VadModeName(m)) return m;
  }
  return std::nullopt;
}

const char* VadModeName(VadPolicy::Mode mode) {
  switch (mode) {
    case VadPolicy::Mode::kOff: return "off";
    case VadPolicy::Mode::kAuto: return "auto";
    case VadPolicy::Mode::kOn: return "on";
  }
  return "auto";
}

Result<std::optional<VadSettings>> DecideVad(const JobParams& params, double audio_seconds,
                                             const VadPolicy& policy) {
  const bool installed = Installed(policy.model_path);
  const std::string& asked = params.chunking_strategy;
  if (asked == "server_vad") {
    if (!installed) return engine::VadModelMissing("this server has no VAD model");
    return std::optional<VadSettings>(params.vad.value_or(kOpenAiServerVadDefaults));
  }
  bool use = false;
  if (asked == "auto") {
    use = true;
  } else {
    use = policy.mode == VadPolicy::Mode::kOn ||
          (policy.mode == VadPolicy::Mode::kAuto && audio_seconds >= policy.min_duration_s);
  }
  if (!use || !installed) return std::optional<VadSettings>();
  return std::optional<VadSettings>(VadSettings{});
}

}  // namespace steno::server
