// The models this server can run, whatever kind of runner serves them: for each, its runner
// kind, where the scheduler's memory figure comes from before a load, and what it can do. The
// Runtime resolves jobs' models through it; the API lists it (GET /v1/models) and checks
// requests' models against it.
//
// Two sources, declared models first:
//   - declared models (DeclaredModel): a kind that needs no ggml file names its models with a
//     declared footprint and capabilities;
//   - whisper.cpp ggml files in the models dir (resolve.h's rules), kind "whisper", sized by
//     estimating from the file's header.
// Either figure is replaced by the runner's own measurement once one is loaded (the scheduler
// remembers it per device model: SchedulerConfig::known_footprints).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/mutex.h"
#include "core/result.h"

namespace steno::models {

// The kind whose models are ggml files in the models dir (runners/whisper).
inline constexpr std::string_view kWhisperKind = "whisper";

// Where a model's memory figure comes from before its first load.
enum class FootprintSource {
  kEstimated,  // estimated from the model file (whisper.cpp's hparams: sched/estimator.h)
  kDeclared,   // stated by the catalog entry (DeclaredModel)
};
const char* FootprintSourceName(FootprintSource source);  // "estimated", "declared"

// What a model can do, as a set.
enum class Capability : unsigned {
  kTranscribe = 1u << 0,  // speech → text in its language
  kTranslate = 1u << 1,   // speech → English text
  kSpeech = 1u << 2,      // text → speech
};
class Capabilities {
 public:
  Capabilities() = default;
  Capabilities(std::initializer_list<Capability> caps);
  bool Has(Capability c) const { return (bits_ & static_cast<unsigned>(c)) != 0; }
  std::vector<std::string> Names() const;  // "transcribe", "translate", "speech", in that order
  bool operator==(const Capabilities&) const = default;

 private:
  unsigned bits_ = 0;
};

// A model served by a kind that needs no ggml file.
struct DeclaredModel {
  std::string name;
  std::string kind;
  int64_t weights_bytes = 0;  // what one runner holds before any work
  int64_t stream_bytes = 0;   // what each concurrent work item adds
  Capabilities capabilities;
  std::string path;  // a file the kind loads, if any ("" for none)
  // Scheduling settings of its own (sched::ModelSpec has the same four).
  std::vector<std::string> allowed_devices;  // "cpu", "cuda:N"; empty: any device
  int max_streams = 0;                       // 0: as memory allows
  std::optional<int> keep_alive_s;           // unset: the default
  bool recycle_on_growth = true;             // false: growth is charged, never recycled
};

struct ModelEntry {
  std::string name;
  std::string kind;
  std::string path;         // the file a runner loads ("" when its kind needs none)
  int64_t file_bytes = -1;  // the file's size (-1: no file, or unknown)
  FootprintSource footprint = FootprintSource::kEstimated;
  int64_t weights_bytes = 0;  // kDeclared only (kEstimated: read from the file when resolved)
  int64_t stream_bytes = 0;
  Capabilities capabilities;
  std::vector<std::string> allowed_devices;  // declared models only (DeclaredModel's)
  int max_streams = 0;
  std::optional<int> keep_alive_s;
  bool recycle_on_growth = true;
};

// Safe from any thread: SetDeclared may replace the declared models while others List and Find
// (each call sees one whole set, the old or the new). Assigning to a catalog is not: only while
// nobody else uses it.
class ModelCatalog {
 public:
  explicit ModelCatalog(std::string models_dir, std::vector<DeclaredModel> declared = {});
  // A copy holds the declared models `other` holds at that moment.
  ModelCatalog(const ModelCatalog& other);
  ModelCatalog& operator=(const ModelCatalog& other) EXCLUDES(mu_);

  // Replaces every declared model at once (a config reload); the ggml files are unaffected.
  void SetDeclared(std::vector<DeclaredModel> declared) EXCLUDES(mu_);

  // Every model: the declared ones, then the installed ggml files a declared name does not hide
  // (but not the VAD model: models::IsVoiceActivityModel), each group by name.
  std::vector<ModelEntry> List() const;
  // A model by name: a declared one, else a ggml file by resolve.h's ResolveModel rules. Paths
  // (and hidden names such as "..") only when `allow_paths`: else kBadInput "bad_model_name".
  // ResolveModel's errors otherwise (kNotFound "model_not_found"). The VAD model's name is
  // kBadInput "bad_model_name" (it transcribes nothing).
  Result<ModelEntry> Find(const std::string& name_or_path, bool allow_paths) const;

  const std::string& models_dir() const { return models_dir_; }

 private:
  using Declared = std::shared_ptr<const std::vector<DeclaredModel>>;  // sorted by name
  Declared declared() const EXCLUDES(mu_);

  std::string models_dir_;
  mutable Mutex mu_;
  Declared declared_ GUARDED_BY(mu_);  // replaced whole, never changed in place
};

}  // namespace steno::models
