#include "runners/kind_registry.h"

namespace steno::runners {

Status KindRegistry::Add(const std::string& name, KindFactory factory) {
  if (name.empty() || !factory) {
    return Error(ErrorKind::kBadInput, "bad_runner_kind",
                 "a runner kind needs a name and a factory");
  }
  if (!kinds_.emplace(name, std::move(factory)).second) {
    return Error(ErrorKind::kBadInput, "duplicate_runner_kind",
                 "runner kind '" + name + "' is registered twice");
  }
  return Status();
}

const KindFactory* KindRegistry::Find(const std::string& name) const {
  auto it = kinds_.find(name);
  return it == kinds_.end() ? nullptr : &it->second;
}

std::vector<std::string> KindRegistry::Names() const {
  std::vector<std::string> out;
  out.reserve(kinds_.size());
  for (const auto& [name, factory] : kinds_) out.push_back(name);
  return out;
}

}  // namespace steno::runners
