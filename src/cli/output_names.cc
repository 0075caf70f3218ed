#include "cli/output_names.h"

#include <filesystem>
#include <map>

namespace steno::cli {

namespace fs = std::filesystem;

Result<std::vector<std::string>> OutputNames(const std::vector<std::string>& inputs,
                                             std::string_view extension) {
  const std::string ext = "." + std::string(extension);
  std::map<std::string, int> stems;  // stem -> how many inputs have it
  for (const auto& in : inputs) ++stems[fs::path(in).stem().string()];

  std::vector<std::string> names;
  std::map<std::string, size_t> taken;  // output name -> the input that has it
  for (size_t i = 0; i < inputs.size(); ++i) {
    const fs::path in(inputs[i]);
    const std::string stem = in.stem().string();
    std::string name = (stems[stem] > 1 ? in.filename().string() : stem) + ext;
    auto [it, fresh] = taken.emplace(name, i);
    if (!fresh) {
      return Error(ErrorKind::kBadInput, "output_collision",
                   inputs[it->second] + " and " + inputs[i] + " would both be written to " + name +
                       "; rename one of them or transcribe them in separate runs");
    }
    names.push_back(std::move(name));
  }
  return names;
}

}  // namespace steno::cli
