#include "gpu/visible_devices.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <mutex>

#include "core/log.h"

#include "core/strings.h"

namespace steno::gpu {
namespace {

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

// The card an entry names, or -1 with `why` set.
int Resolve(const std::string& entry, const std::vector<std::string>& uuids, std::string& why) {
  if (entry.empty()) {
    why = "empty entry";
    return -1;
  }
  if (std::all_of(entry.begin(), entry.end(),
                  [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (entry.size() > 9 || std::stoi(entry) >= static_cast<int>(uuids.size())) {
      why = "entry '" + entry + "' is not a device index (" + std::to_string(uuids.size()) +
            " device(s))";
      return -1;
    }
    return std::stoi(entry);
  }
  if (StartsWithNoCase(entry, "MIG-")) {
    why = "entry '" + entry + "' is a MIG instance; steno schedules whole GPUs";
    return -1;
  }
  if (!StartsWithNoCase(entry, "GPU-")) {
    why = "entry '" + entry + "' is neither a device index nor a GPU UUID";
    return -1;
  }
  int found = -1;
  for (size_t i = 0; i < uuids.size(); ++i) {
    if (!StartsWithNoCase(uuids[i], entry)) continue;
    if (found >= 0) {
      why = "entry '" + entry + "' matches more than one device";
      return -1;
    }
    found = static_cast<int>(i);
  }
  if (found < 0) why = "entry '" + entry + "' matches no device";
  return found;
}

class VisibleDevices : public Devices {
 public:
  VisibleDevices(std::unique_ptr<Devices> physical, std::optional<std::string> value)
      : physical_(std::move(physical)), value_(std::move(value)) {}

  std::string Backend() const override { return physical_->Backend(); }

  Result<std::vector<DeviceSample>> Sample() override {
    auto all = physical_->Sample();
    if (!all.ok()) return all;
    std::vector<DeviceSample> cards = std::move(all).value();
    std::stable_sort(cards.begin(), cards.end(), [](const DeviceSample& a, const DeviceSample& b) {
      return NormalizePciBusId(a.pci_bus_id) < NormalizePciBusId(b.pci_bus_id);
    });
    std::vector<std::string> uuids;
    for (const auto& c : cards) uuids.push_back(c.uuid);
    VisibleMapping mapping = MapCudaVisibleDevices(value_, uuids);
    if (!mapping.problem.empty() && !warned_.exchange(true)) {
      spdlog::warn("CUDA_VISIBLE_DEVICES='{}': {}; only the {} device(s) listed before it are used",
                   value_.value_or(""), mapping.problem, mapping.visible.size());
    }
    std::vector<DeviceSample> out;
    for (size_t k = 0; k < mapping.visible.size(); ++k) {
      DeviceSample s = cards[static_cast<size_t>(mapping.visible[k])];
      s.index = static_cast<int>(k);
      out.push_back(std::move(s));
    }
    return out;
  }

 private:
  std::unique_ptr<Devices> physical_;
  std::optional<std::string> value_;
  std::atomic<bool> warned_{false};
};

}  // namespace

VisibleMapping MapCudaVisibleDevices(const std::optional<std::string>& value,
                                     const std::vector<std::string>& uuids) {
  VisibleMapping m;
  if (!value) {
    for (size_t i = 0; i < uuids.size(); ++i) m.visible.push_back(static_cast<int>(i));
    return m;
  }
  if (Trim(*value).empty()) return m;  // set but empty: CUDA sees no device, and that is intended
  size_t start = 0;
  while (start <= value->size()) {
    size_t comma = value->find(',', start);
    if (comma == std::string::npos) comma = value->size();
    std::string entry(Trim(std::string_view(*value).substr(start, comma - start)));
    start = comma + 1;
    int card = Resolve(entry, uuids, m.problem);
    if (card >= 0 && std::find(m.visible.begin(), m.visible.end(), card) != m.visible.end()) {
      m.problem = "entry '" + entry + "' names a device already listed";
      card = -1;
    }
    if (card < 0) break;
    m.visible.push_back(card);
  }
  return m;
}

std::string NormalizePciBusId(std::string_view id) {
  std::string s(Trim(id));
  // Split "[domain:]bus:device.function" into hex fields of bounded width.
  std::vector<std::string> fields;
  std::string field;
  std::vector<char> separators;
  for (char c : s) {
    if (c == ':' || c == '.') {
      fields.push_back(field);
      separators.push_back(c);
      field.clear();
    } else if (std::isxdigit(static_cast<unsigned char>(c))) {
      field += c;
    } else {
      return "";
    }
  }
  fields.push_back(field);
  if (fields.size() == 3) {  // no domain: CUDA's short form, domain 0
    fields.insert(fields.begin(), "0");
    separators.insert(separators.begin(), ':');
  }
  if (fields.size() != 4 || separators != std::vector<char>{':', ':', '.'}) return "";
  const size_t widths[] = {8, 2, 2, 1};
  unsigned long v[4];
  for (int i = 0; i < 4; ++i) {
    if (fields[i].empty() || fields[i].size() > widths[i]) return "";
    v[i] = std::stoul(fields[i], nullptr, 16);
  }
  if (v[2] > 0x1f || v[3] > 7) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08lX:%02lX:%02lX.%lX", v[0], v[1], v[2], v[3]);
  return buf;
}

const DeviceSample* FindByPciBusId(const std::vector<DeviceSample>& samples,
                                   std::string_view pci_bus_id) {
  const std::string want = NormalizePciBusId(pci_bus_id);
  if (want.empty()) return nullptr;
  for (const auto& s : samples) {
    if (NormalizePciBusId(s.pci_bus_id) == want) return &s;
  }
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> RunnerCudaEnvironment(const DeviceSample& device) {
  return {{"CUDA_DEVICE_ORDER", "PCI_BUS_ID"}, {"CUDA_VISIBLE_DEVICES", device.uuid}};
}

std::unique_ptr<Devices> ApplyCudaVisibleDevices(std::unique_ptr<Devices> physical,
                                                 std::optional<std::string> cuda_visible_devices) {
  return std::make_unique<VisibleDevices>(std::move(physical), std::move(cuda_visible_devices));
}

}  // namespace steno::gpu
