#include "gpu/device_selection.h"

#include <algorithm>
#include <cctype>

#include "core/strings.h"

namespace steno::gpu {
namespace {

Error BadDevice(std::string_view text, const std::string& why) {
  return Error(ErrorKind::kBadInput, "bad_device",
               "invalid device '" + std::string(text) + "': " + why +
                   " (use auto, cpu, cuda, or cuda:N[,M...], e.g. cuda:0 or cuda:0,1)");
}

bool IsOrdinal(const std::string& s) {
  return !s.empty() && s.size() <= 4 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

std::string Listing(const std::vector<DeviceSample>& samples) {
  if (samples.empty()) return "no GPU is visible";
  std::string names;
  for (const auto& s : samples) names += (names.empty() ? "" : ", ") + DeviceName(s);
  return std::to_string(samples.size()) + " GPU(s) visible: " + names;
}

Error NoSuchDevice(const std::string& name, const std::vector<DeviceSample>& samples) {
  return Error(ErrorKind::kBadInput, "no_such_device",
               "there is no device " + name + " (" + Listing(samples) + ")");
}

}  // namespace

std::string DeviceSelection::ToString() const {
  switch (mode) {
    case Mode::kAuto: return "auto";
    case Mode::kCpu: return "cpu";
    case Mode::kAllCuda: return "cuda";
    case Mode::kCudaList: break;
  }
  std::string out = "cuda:";
  for (size_t i = 0; i < cuda.size(); ++i) out += (i ? "," : "") + std::to_string(cuda[i]);
  return out;
}

Result<DeviceSelection> ParseDeviceSelection(std::string_view text) {
  std::string s(Trim(text));
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  DeviceSelection sel;
  if (s == "auto") return sel;
  if (s == "cpu") {
    sel.mode = DeviceSelection::Mode::kCpu;
    return sel;
  }
  if (s == "cuda" || s == "gpu") {
    sel.mode = DeviceSelection::Mode::kAllCuda;
    return sel;
  }
  if (!s.starts_with("cuda:")) return BadDevice(text, "unknown device");
  sel.mode = DeviceSelection::Mode::kCudaList;
  std::string_view rest = std::string_view(s).substr(5);
  size_t start = 0;
  while (start <= rest.size()) {
    size_t comma = rest.find(',', start);
    if (comma == std::string_view::npos) comma = rest.size();
    std::string entry(Trim(rest.substr(start, comma - start)));
    start = comma + 1;
    if (entry.starts_with("cuda:")) entry = entry.substr(5);  // "cuda:0,cuda:1"
    if (!IsOrdinal(entry)) return BadDevice(text, "'" + entry + "' is not a device number");
    const int ordinal = std::stoi(entry);
    if (std::find(sel.cuda.begin(), sel.cuda.end(), ordinal) != sel.cuda.end()) {
      return BadDevice(text, "cuda:" + entry + " is listed twice");
    }
    sel.cuda.push_back(ordinal);
  }
  return sel;
}

Result<DeviceSample> FindDevice(std::string_view name, const std::vector<DeviceSample>& samples) {
  auto sel = ParseDeviceSelection(name);
  if (!sel.ok()) return sel.error();
  if (sel->mode != DeviceSelection::Mode::kCudaList || sel->cuda.size() != 1) {
    return BadDevice(name, "name one GPU");
  }
  for (const auto& s : samples) {
    if (s.index == sel->cuda[0]) return s;
  }
  return NoSuchDevice(sel->ToString(), samples);
}

Result<std::vector<DeviceSample>> ApplyDeviceSelection(const DeviceSelection& selection,
                                                       const std::vector<DeviceSample>& samples) {
  switch (selection.mode) {
    case DeviceSelection::Mode::kAuto: return samples;
    case DeviceSelection::Mode::kCpu: return std::vector<DeviceSample>{};
    case DeviceSelection::Mode::kAllCuda:
      if (samples.empty()) return NoSuchDevice("cuda", samples);
      return samples;
    case DeviceSelection::Mode::kCudaList: break;
  }
  std::vector<DeviceSample> out;
  for (int ordinal : selection.cuda) {
    auto found = std::find_if(samples.begin(), samples.end(),
                              [ordinal](const DeviceSample& s) { return s.index == ordinal; });
    if (found == samples.end()) return NoSuchDevice("cuda:" + std::to_string(ordinal), samples);
    out.push_back(*found);
  }
  return out;
}

}  // namespace steno::gpu
