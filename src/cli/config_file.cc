#include "cli/config_file.h"

#include <cstdlib>
#include <fstream>
#include <iterator>

namespace steno::cli {

Result<std::vector<std::string>> ConfigFileArgs(const CLI::App& cmd, const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error(ErrorKind::kBadInput, "bad_config", "cannot read config file " + path);
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_config(in);
  } catch (const CLI::Error& e) {
    return Error(ErrorKind::kBadInput, "bad_config", path + ": " + e.what());
  }
  std::vector<std::string> args;
  for (const auto& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // CLI11's section markers
    const bool ours =
        item.parents.empty() || (item.parents.size() == 1 && item.parents[0] == cmd.get_name());
    if (!ours) {
      return Error(
          ErrorKind::kBadInput, "bad_config",
          path + ": unknown section for " + item.fullname() + " (use [" + cmd.get_name() + "])");
    }
    const CLI::Option* opt = cmd.get_option_no_throw("--" + item.name);
    if (!opt || item.name == "config" || item.name == "help") {
      return Error(ErrorKind::kBadInput, "bad_config",
                   path + ": unknown setting \"" + item.name + "\" (see steno " + cmd.get_name() +
                       " --help for the flag names)");
    }
    const std::string env = opt->get_envname();
    if (!env.empty() && std::getenv(env.c_str()) != nullptr) continue;  // env wins
    if (opt->get_type_size_min() == 0) {                                // a flag: true / false
      if (item.inputs.size() != 1 || (item.inputs[0] != "true" && item.inputs[0] != "false")) {
        return Error(ErrorKind::kBadInput, "bad_config",
                     path + ": " + item.name + " must be true or false");
      }
      if (item.inputs[0] == "true") args.push_back("--" + item.name);
      continue;
    }
    for (const auto& value : item.inputs) {
      args.push_back("--" + item.name);
      args.push_back(value);
    }
  }
  return args;
}

std::vector<std::string> ProcessArgs() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    args.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  if (!args.empty()) args.erase(args.begin());
  return args;
}

}  // namespace steno::cli
