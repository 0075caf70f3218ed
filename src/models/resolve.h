// Turning what a user typed for --model into a file, and listing what a models dir holds.
//
// A model is named the way whisper.cpp names its files: "tiny.en" is ggml-tiny.en.bin in the
// models dir ($STENO_MODELS, default ~/.local/share/steno/models). A value that looks like a
// path (it contains '/' or ends in ".bin") is taken as a path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace steno::models {

struct InstalledModel {
  std::string name;  // "tiny.en" for ggml-tiny.en.bin; the file name minus "ggml-" and ".bin"
  std::string path;  // models_dir/file
  int64_t file_bytes = 0;
};

// The model files (regular files, or links to them, named *.bin) directly in `models_dir`,
// sorted by name. Partial downloads (*.part) and hidden files are not models. A missing or
// unreadable dir holds no models (an empty list, not an error).
std::vector<InstalledModel> ListInstalledModels(const std::string& models_dir);

// Whether a --model value names a path (it contains '/' or ends in ".bin") rather than a model.
bool IsPathLike(const std::string& name_or_path);

// Resolves a --model value to the path of an existing regular file:
//   - path-like ("dir/x.bin", "./m", "x.bin"): that file as given; a bare "x.bin" that does
//     not exist in the working dir is also looked for in models_dir;
//   - a name: models_dir/ggml-NAME.bin, then models_dir/NAME.bin, then models_dir/NAME.
// Errors: kBadInput "bad_model_name" (empty, or a directory was given); kNotFound
// "model_not_found", whose message names the dir searched, lists the installed models and,
// when NAME is a known official model, says to run `steno models pull NAME`.
Result<std::string> ResolveModel(const std::string& name_or_path, const std::string& models_dir);

}  // namespace steno::models
