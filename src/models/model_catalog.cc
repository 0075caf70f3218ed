#include "models/model_catalog.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <system_error>
#include <utility>

#include "models/catalog.h"
#include "models/resolve.h"

namespace steno::models {
namespace {

// English-only whisper models are named NAME.en, optionally with a suffix (".en-q5_1",
// "small.en-tdrz"); official names say it in the download catalog.
bool EnglishOnly(const std::string& name) {
  if (const CatalogEntry* e = FindCatalogEntry(name)) return !e->multilingual;
  for (size_t p = name.find(".en"); p != std::string::npos; p = name.find(".en", p + 1)) {
    const size_t end = p + 3;
    if (end == name.size() || name[end] == '-' || name[end] == '.' || name[end] == '_') return true;
  }
  return false;
}

// `model` is the name the file stands for ("tiny.en"), even when it was named by a path.
ModelEntry WhisperEntry(std::string name, const std::string& model, std::string path,
                        int64_t file_bytes) {
  ModelEntry e;
  e.kind = std::string(kWhisperKind);
  e.footprint = FootprintSource::kEstimated;
  e.capabilities = EnglishOnly(model)
                       ? Capabilities{Capability::kTranscribe}
                       : Capabilities{Capability::kTranscribe, Capability::kTranslate};
  e.name = std::move(name);
  e.path = std::move(path);
  e.file_bytes = file_bytes;
  return e;
}

ModelEntry DeclaredEntry(const DeclaredModel& d) {
  ModelEntry e;
  e.name = d.name;
  e.kind = d.kind;
  e.path = d.path;
  e.footprint = FootprintSource::kDeclared;
  e.weights_bytes = d.weights_bytes;
  e.stream_bytes = d.stream_bytes;
  e.capabilities = d.capabilities;
  e.allowed_devices = d.allowed_devices;
  e.max_streams = d.max_streams;
  e.keep_alive_s = d.keep_alive_s;
  e.recycle_on_growth = d.recycle_on_growth;
  if (!d.path.empty()) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(d.path, ec);
    if (!ec) e.file_bytes = static_cast<int64_t>(size);
  }
  return e;
}

// The model name a ggml file stands for: "ggml-tiny.en.bin" → "tiny.en".
std::string NameOfFile(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  if (name.size() > 4 && name.ends_with(".bin")) name.resize(name.size() - 4);
  if (name.size() > 5 && name.starts_with("ggml-")) name = name.substr(5);
  return name;
}

}  // namespace

const char* FootprintSourceName(FootprintSource source) {
  switch (source) {
    case FootprintSource::kEstimated: return "estimated";
    case FootprintSource::kDeclared: return "declared";
  }
  return "estimated";
}

Capabilities::Capabilities(std::initializer_list<Capability> caps) {
  for (Capability c : caps) bits_ |= static_cast<unsigned>(c);
}

std::vector<std::string> Capabilities::Names() const {
  static constexpr std::array<std::pair<Capability, const char*>, 3> kNames{{
      {Capability::kTranscribe, "transcribe"},
      {Capability::kTranslate, "translate"},
      {Capability::kSpeech, "speech"},
  }};
  std::vector<std::string> out;
  for (const auto& [c, name] : kNames) {
    if (Has(c)) out.emplace_back(name);
  }
  return out;
}

ModelCatalog::ModelCatalog(std::string models_dir, std::vector<DeclaredModel> declared)
    : models_dir_(std::move(models_dir)) {
  SetDeclared(std::move(declared));
}

ModelCatalog::ModelCatalog(const ModelCatalog& other)
    : models_dir_(other.models_dir_), declared_(other.declared()) {}

ModelCatalog& ModelCatalog::operator=(const ModelCatalog& other) {
  if (this == &other) return *this;
  Declared declared = other.declared();
  models_dir_ = other.models_dir_;
  MutexLock lock(mu_);
  declared_ = std::move(declared);
  return *this;
}

void ModelCatalog::SetDeclared(std::vector<DeclaredModel> declared) {
  std::sort(declared.begin(), declared.end(),
            [](const DeclaredModel& a, const DeclaredModel& b) { return a.name < b.name; });
  auto fresh = std::make_shared<const std::vector<DeclaredModel>>(std::move(declared));
  MutexLock lock(mu_);
  declared_ = std::move(fresh);
}

ModelCatalog::Declared ModelCatalog::declared() const {
  MutexLock lock(mu_);
  return declared_;
}

std::vector<ModelEntry> ModelCatalog::List() const {
  const Declared declared = this->declared();
  std::vector<ModelEntry> out;
  for (const auto& d : *declared) out.push_back(DeclaredEntry(d));
  for (const auto& m : ListInstalledModels(models_dir_)) {
    const bool hidden = std::any_of(declared->begin(), declared->end(),
                                    [&](const DeclaredModel& d) { return d.name == m.name; });
    // The VAD model is a tool of the whisper runners, not a model a job can name.
    if (!hidden && !IsVoiceActivityModel(m.name)) {
      out.push_back(WhisperEntry(m.name, m.name, m.path, m.file_bytes));
    }
  }
  return out;
}

Result<ModelEntry> ModelCatalog::Find(const std::string& name, bool allow_paths) const {
  for (const auto& d : *declared()) {
    if (d.name == name) return DeclaredEntry(d);
  }
  // A hidden name (".x", "..") is refused too: it is no model name either.
  if (!allow_paths && (IsPathLike(name) || name.starts_with("."))) {
    return Error(ErrorKind::kBadInput, "bad_model_name",
                 "model \"" + name + "\" must be a model name, not a path");
  }
  if (IsVoiceActivityModel(name)) {
    return Error(ErrorKind::kBadInput, "bad_model_name",
                 "model \"" + name +
                     "\" is a voice activity detection model, not a speech-to-text model; ask "
                     "for VAD with chunking_strategy (steno transcribe --vad) and name a Whisper "
                     "model");
  }
  auto path = ResolveModel(name, models_dir_);
  if (!path.ok()) return path.error();
  std::error_code ec;
  const auto size = std::filesystem::file_size(*path, ec);
  return WhisperEntry(name, IsPathLike(name) ? NameOfFile(*path) : name, *path,
                      ec ? -1 : static_cast<int64_t>(size));
}

}  // namespace steno::models
