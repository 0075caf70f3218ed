#include "models/resolve.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "models/catalog.h"

namespace steno::models {
namespace {

namespace fs = std::filesystem;

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Follows links: a link to a model file counts as the model (users symlink big files).
bool IsRegularFile(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

bool IsDirectory(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

std::string InstalledSummary(const std::string& models_dir) {
  auto installed = ListInstalledModels(models_dir);
  if (installed.empty()) return "No models are installed there.";
  std::string out = "Installed: ";
  for (size_t i = 0; i < installed.size(); ++i) {
    if (i) out += ", ";
    out += installed[i].name;
  }
  return out + ".";
}

Error NotFound(const std::string& what, const std::string& name, const std::string& models_dir) {
  std::string msg = what + " " + InstalledSummary(models_dir);
  if (FindCatalogEntry(name)) {
    msg += " Download it with `steno models pull " + name + "`.";
  } else {
    msg += " Official models: " + KnownModelNames() + ".";
  }
  return Error(ErrorKind::kNotFound, "model_not_found", msg);
}

}  // namespace

bool IsPathLike(const std::string& v) {
  return v.find('/') != std::string::npos || EndsWith(v, ".bin");
}

std::vector<InstalledModel> ListInstalledModels(const std::string& models_dir) {
  std::vector<InstalledModel> out;
  std::error_code ec;
  fs::directory_iterator it(models_dir, ec);
  if (ec) return out;
  for (const auto& entry : it) {
    std::string file = entry.path().filename().string();
    if (file.empty() || file[0] == '.' || !EndsWith(file, ".bin")) continue;
    if (!IsRegularFile(entry.path())) continue;
    std::string name = file.substr(0, file.size() - 4);
    if (name.rfind("ggml-", 0) == 0 && name.size() > 5) name = name.substr(5);
    std::error_code size_ec;
    auto size = fs::file_size(entry.path(), size_ec);
    out.push_back({name, entry.path().string(), size_ec ? -1 : static_cast<int64_t>(size)});
  }
  std::sort(out.begin(), out.end(),
            [](const InstalledModel& a, const InstalledModel& b) { return a.name < b.name; });
  return out;
}

Result<std::string> ResolveModel(const std::string& name_or_path, const std::string& models_dir) {
  const std::string& v = name_or_path;
  if (v.empty()) {
    return Error(
        ErrorKind::kBadInput, "bad_model_name",
        "No model given: pass a model name (e.g. tiny.en) or the path of a ggml .bin file.");
  }
  if (IsPathLike(v)) {
    if (IsRegularFile(v)) return v;
    if (IsDirectory(v)) {
      return Error(ErrorKind::kBadInput, "bad_model_name",
                   "'" + v +
                       "' is a directory; --model needs a ggml model file (ggml-NAME.bin) "
                       "or a model name.");
    }
    // "ggml-base.bin" typed without a dir most likely means the file in the models dir.
    if (v.find('/') == std::string::npos) {
      fs::path in_dir = fs::path(models_dir) / v;
      if (IsRegularFile(in_dir)) return in_dir.string();
    }
    std::string name = v.find('/') == std::string::npos ? v : std::string();
    if (EndsWith(name, ".bin")) name.resize(name.size() - 4);
    if (name.rfind("ggml-", 0) == 0) name = name.substr(5);
    return NotFound("Model file '" + v + "' does not exist (also looked in " + models_dir + ").",
                    name, models_dir);
  }
  for (const fs::path& candidate :
       {fs::path(models_dir) / ModelFileName(v), fs::path(models_dir) / (v + ".bin"),
        fs::path(models_dir) / v}) {
    if (IsRegularFile(candidate)) return candidate.string();
  }
  return NotFound("Model '" + v + "' is not installed in " + models_dir + " (looked for " +
                      ModelFileName(v) + ").",
                  v, models_dir);
}

}  // namespace steno::models
