#include "core/paths.h"

#include <cstdlib>
#include <filesystem>

namespace steno {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::string();
}

}  // namespace

std::string DataDir() {
  if (auto d = Env("STENO_DATA_DIR"); !d.empty()) return d;
  if (auto x = Env("XDG_DATA_HOME"); !x.empty()) return x + "/steno";
  auto home = Env("HOME");
  return (home.empty() ? std::string(".") : home) + "/.local/share/steno";
}

std::string ModelsDir() {
  if (auto m = Env("STENO_MODELS"); !m.empty()) return m;
  return DataDir() + "/models";
}

std::string RunnerProgram() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return std::string();
  const auto runner = self.parent_path() / "steno-runner";
  return std::filesystem::exists(runner, ec) ? runner.string() : self.string();
}

}  // namespace steno
