#include "cli/config_file.h"

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <iterator>

#define TOML_HEADER_ONLY 1  // Debian's toml++, header-only: no shared library to ship
#include <toml++/toml.h>

namespace steno::cli {
namespace {

// One setting of the file: its table path, name, values as command-line text, and line.
struct Setting {
  CLI::ConfigItem item;
  int64_t line = 0;
};

// A scalar as the command line would spell it ("" with ok = false for a date or a table).
bool ScalarText(const toml::node& n, std::string& out) {
  if (auto s = n.as_string()) {
    out = s->get();
  } else if (auto b = n.as_boolean()) {
    out = b->get() ? "true" : "false";
  } else if (auto i = n.as_integer()) {
    out = std::to_string(i->get());
  } else if (auto f = n.as_floating_point()) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, f->get());
    out.assign(buf, ec == std::errc() ? end : buf);
  } else {
    return false;
  }
  return true;
}

// The settings of `table` (under `parents`), tables within it flattened to their own parents.
// The top-level `models` array of tables is left out: runners/server/server_config.h reads it.
Status Collect(const toml::table& table, const std::vector<std::string>& parents,
               const std::string& path, std::vector<Setting>& out) {
  for (auto&& [key, node] : table) {
    const std::string name(key.str());
    const std::string at = path + ":" + std::to_string(key.source().begin.line);
    if (parents.empty() && name == "models" && node.is_array_of_tables()) continue;
    if (auto sub = node.as_table()) {
      std::vector<std::string> inner = parents;
      inner.push_back(name);
      if (auto st = Collect(*sub, inner, path, out); !st) return st;
      continue;
    }
    Setting s{{parents, name, {}}, key.source().begin.line};
    std::string text;
    if (auto array = node.as_array()) {
      for (const auto& element : *array) {
        if (!ScalarText(element, text)) {
          return Error(ErrorKind::kBadInput, "bad_config",
                       at + ": " + s.item.fullname() + " must be a list of plain values");
        }
        s.item.inputs.push_back(text);
      }
    } else if (ScalarText(node, text)) {
      s.item.inputs.push_back(text);
    } else {
      return Error(ErrorKind::kBadInput, "bad_config",
                   at + ": " + s.item.fullname() + " must be a string, number or true/false");
    }
    out.push_back(std::move(s));
  }
  return {};
}

}  // namespace

Result<std::vector<std::string>> ConfigFileArgs(const CLI::App& cmd, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(ErrorKind::kBadInput, "bad_config", "cannot read config file " + path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<Setting> settings;
  try {
    const toml::table root = toml::parse(text, path);
    if (auto st = Collect(root, {}, path, settings); !st) return st.error();
  } catch (const toml::parse_error& e) {
    return Error(
        ErrorKind::kBadInput, "bad_config",
        path + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  std::vector<std::string> args;
  for (const auto& [item, line] : settings) {
    const std::string at = path + ":" + std::to_string(line);
    const bool ours =
        item.parents.empty() || (item.parents.size() == 1 && item.parents[0] == cmd.get_name());
    if (!ours) {
      return Error(
          ErrorKind::kBadInput, "bad_config",
          at + ": unknown section for " + item.fullname() + " (use [" + cmd.get_name() + "])");
    }
    const CLI::Option* opt = cmd.get_option_no_throw("--" + item.name);
    if (!opt || item.name == "config" || item.name == "help") {
      return Error(ErrorKind::kBadInput, "bad_config",
                   at + ": unknown setting \"" + item.name + "\" (see steno " + cmd.get_name() +
                       " --help for the flag names)");
    }
    const std::string env = opt->get_envname();
    if (!env.empty() && std::getenv(env.c_str()) != nullptr) continue;  // env wins
    if (opt->get_type_size_min() == 0) {                                // a flag: true / false
      if (item.inputs.size() != 1 || (item.inputs[0] != "true" && item.inputs[0] != "false")) {
        return Error(ErrorKind::kBadInput, "bad_config",
                     at + ": " + item.name + " must be true or false");
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
