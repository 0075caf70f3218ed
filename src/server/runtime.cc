#include "server/runtime.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "core/log.h"
#include "core/mutex.h"
#include "core/paths.h"
#include "core/wall_clock.h"
#include "engine/alignment_heads.h"
#include "engine/model_file.h"
#include "gpu/device_selection.h"
#include "gpu/open_devices.h"
#include "gpu/owner_process.h"
#include "gpu/size.h"
#include "gpu/visible_devices.h"
#include "models/model_variant.h"
#include "runners/dispatcher.h"
#include "runners/server/server_kind.h"
#include "runners/whisper/whisper_kind.h"
#include "sched/estimator.h"
#include "server/runtime_config.h"
#include "store/data_dir.h"

namespace steno::server {
namespace {

// Whether `pid` is a live child of this process (a runner that has not exited).
bool IsOurChild(int pid) {
  return gpu::ParentPid(pid) == getpid();
}

// The managed model servers declared now, by name: RuntimeOptions::server_models at the start,
// then each reload's (Runtime::ReplaceServerModels). The server kind's find_model reads it
// (Find) at every start, so a start always runs the declaration of that moment. Safe from any
// thread; no lock is held across anything but copying.
class ServerModelTable {
 public:
  std::optional<runners::ServerModel> Find(const std::string& name) const EXCLUDES(mu_) {
    MutexLock lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<runners::ServerModel> All() const EXCLUDES(mu_) {
    MutexLock lock(mu_);
    std::vector<runners::ServerModel> out;
    for (const auto& [name, m] : models_) out.push_back(m);
    return out;
  }
  // Replaces every model (names must be unique); returns what changed.
  ServerModelChanges Replace(const std::vector<runners::ServerModel>& models) EXCLUDES(mu_) {
    std::map<std::string, runners::ServerModel> fresh;
    for (const auto& m : models) fresh.emplace(m.name, m);
    ServerModelChanges changes;
    MutexLock lock(mu_);
    for (const auto& [name, m] : fresh) {
      auto old = models_.find(name);
      if (old == models_.end()) {
        changes.added.push_back(name);
      } else if (!SameDeclaration(old->second, m)) {
        changes.changed.push_back(name);
      }
    }
    for (const auto& [name, m] : models_) {
      if (!fresh.count(name)) changes.removed.push_back(name);
    }
    models_ = std::move(fresh);
    return changes;
  }

 private:
  // The file a model was declared in is no part of what runs.
  static bool SameDeclaration(runners::ServerModel a, runners::ServerModel b) {
    a.source = b.source = "";
    return a == b;
  }
  mutable Mutex mu_;
  std::map<std::string, runners::ServerModel> models_ GUARDED_BY(mu_);
};

// kBadInput when `models` declares a name twice or a name a declared (non-server) model has.
Status CheckServerModelNames(const std::vector<runners::ServerModel>& models,
                             const std::vector<models::DeclaredModel>& declared) {
  std::set<std::string> names;
  for (const auto& d : declared) names.insert(d.name);
  for (const auto& m : models) {
    if (!names.insert(m.name).second) {
      return Error(ErrorKind::kBadInput, "bad_models_config",
                   m.source + ": model \"" + m.name + "\" is declared twice");
    }
  }
  return {};
}

// The kinds every Runtime has, then the options' extra ones. A new built-in kind is one line here.
// The server kind reads its models' declarations from `servers` (which must outlive the kinds).
Result<runners::KindRegistry> BuildKinds(const RuntimeOptions& options,
                                         const ServerModelTable& servers) {
  runners::KindRegistry kinds;
  if (auto st = kinds.Add(
          runners::kWhisperKind,
          runners::WhisperKind({options.runner_exe, options.decode_defaults, options.warmup,
                                options.prefetch_inputs, options.runners_lower_priority}));
      !st) {
    return st.error();
  }
  runners::ServerKindOptions server;
  server.find_model = [&servers](const std::string& name) { return servers.Find(name); };
  if (auto st = kinds.Add(runners::kServerKind, runners::ServerKind(std::move(server))); !st) {
    return st.error();
  }
  for (const auto& [name, factory] : options.extra_kinds) {
    if (auto st = kinds.Add(name, factory); !st) return st.error();
  }
  for (const auto& m : options.declared_models) {
    if (!kinds.Find(m.kind)) {
      return Error(
          ErrorKind::kBadInput, "unknown_runner_kind",
          "model " + m.name + " names runner kind '" + m.kind + "', which is not registered");
    }
  }
  return kinds;
}

}  // namespace

struct Runtime::Impl {
  RuntimeOptions options;
  ServerModelTable servers;  // before the backend: the server kind reads it until it is gone
  std::unique_ptr<gpu::Devices> devices;
  // The last samples the selection allowed, for pinning runners to their card.
  mutable std::mutex samples_mu;
  std::vector<gpu::DeviceSample> samples;

  // Declared in destruction order's reverse: the scheduler goes first (stops runners), then the
  // backend (waits for them), then the clock.
  std::unique_ptr<sched::RealClock> clock;
  std::shared_ptr<sched::BackendSink> sink = std::make_shared<sched::BackendSink>();
  std::unique_ptr<runners::Dispatcher> backend;
  std::unique_ptr<models::ModelCatalog> catalog;
  std::unique_ptr<sched::Scheduler> scheduler;
  // One ReplaceServerModels at a time, so the table, the catalog and the scheduler change in
  // step. Held while the scheduler applies Redeclare; its worker never takes it (it reads the
  // table and the catalog, each behind its own lock, taken after this one or alone).
  std::mutex replace_mu;
  // The files TimesWordsByDtw said have no alignment heads (each logged once).
  mutable std::mutex no_heads_mu;
  mutable std::set<std::string> no_heads_logged;
  // Model files read (ReadModel), by path, with the file they were read from.
  struct FileStamp {
    uint64_t device = 0, inode = 0;
    int64_t size = 0, mtime_ns = 0;
    bool operator==(const FileStamp&) const = default;
  };
  struct ReadFile {
    FileStamp stamp;
    engine::ModelFileInfo info;
  };
  mutable std::mutex model_files_mu;
  mutable std::map<std::string, ReadFile> model_files;

  // engine::ReadModelFile, once per file: reading a model's header, vocabulary and tensor table
  // takes milliseconds of CPU, and a model is resolved for every submission, every job the
  // scheduler places and every DTW check. A file unchanged since (same device, inode, size and
  // modification time) reads the same; a changed or replaced one is read again. Errors are not
  // kept (the next call reads the file again).
  Result<engine::ModelFileInfo> ReadModel(const std::string& path) const {
    struct stat st {};
    std::optional<FileStamp> stamp;
    if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      stamp = FileStamp{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                        static_cast<int64_t>(st.st_size),
                        int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
      std::lock_guard<std::mutex> lock(model_files_mu);
      auto it = model_files.find(path);
      if (it != model_files.end() && it->second.stamp == *stamp) return it->second.info;
    }
    auto info = engine::ReadModelFile(path);
    if (info.ok() && stamp) {
      std::lock_guard<std::mutex> lock(model_files_mu);
      if (model_files.size() >= 256) model_files.clear();  // the server's models: a few
      model_files[path] = ReadFile{*stamp, *info};
    }
    return info;
  }

  // The catalog's declared models: the options' own, then each server model's entry.
  std::vector<models::DeclaredModel> DeclaredModels() const {
    std::vector<models::DeclaredModel> out = options.declared_models;
    for (const auto& m : servers.All()) out.push_back(runners::CatalogEntryOf(m));
    return out;
  }

  Result<std::vector<gpu::DeviceSample>> Sample() {
    if (!devices) return std::vector<gpu::DeviceSample>{};
    auto all = devices->Sample();
    if (!all.ok()) return all.error();
    auto chosen = gpu::ApplyDeviceSelection(options.gpu.device, *all);
    if (!chosen.ok()) return chosen.error();
    std::lock_guard<std::mutex> lock(samples_mu);
    samples = *chosen;
    return chosen;
  }

  // A model's name, or a variant's key (models/model_variant.h): the same entry, loaded as the
  // variant says.
  Result<sched::ModelSpec> Resolve(const std::string& key) const {
    const models::ModelVariant variant = models::ParseVariantKey(key);
    auto entry = catalog->Find(variant.model, options.allow_model_paths);
    if (!entry.ok()) return entry.error();
    if (variant.dtw_words && entry->kind != runners::kWhisperKind) {
      return Error(ErrorKind::kBadInput, "no_dtw_variant",
                   "model " + variant.model + " is not a whisper model: it has no DTW variant");
    }
    sched::ModelSpec spec{entry->path, {}, entry->kind};
    spec.allowed_devices = entry->allowed_devices;
    spec.max_streams = entry->max_streams;
    spec.keep_alive_s = entry->keep_alive_s;
    spec.recycle_on_growth = entry->recycle_on_growth;
    switch (entry->footprint) {
      case models::FootprintSource::kDeclared:
        spec.estimate = sched::MemoryEstimate{entry->weights_bytes, entry->stream_bytes, false};
        break;
      case models::FootprintSource::kEstimated: {  // a whisper.cpp ggml file
        auto info = ReadModel(entry->path);
        if (!info.ok()) return info.error();
        const int beam = options.decode_defaults.beam_size;
        spec.estimate = sched::EstimateModel(*info, beam);
        spec.measured_stream_extra_bytes = sched::BeamExtraStreamBytes(info->hparams, beam);
        break;
      }
    }
    if (entry->kind == runners::kWhisperKind && (variant.dtw_words || options.dtw_words)) {
      auto dtw = TimesWordsByDtw(entry->path);
      if (!dtw.ok()) return dtw.error();
      spec.load.dtw_words = *dtw;
    }
    return spec;
  }

  // Whether a runner loaded with DTW times the words of the model at `path` by it: its
  // dimensions match an alignment-heads preset. One that matches none is logged once.
  Result<bool> TimesWordsByDtw(const std::string& path) const {
    auto info = ReadModel(path);
    if (!info.ok()) return info.error();
    if (engine::AlignmentHeadsFor(info->hparams, path)) return true;
    std::lock_guard<std::mutex> lock(no_heads_mu);
    if (no_heads_logged.insert(path).second) {
      spdlog::info(
          "{}: no alignment-heads preset matches this model's dimensions; its words keep "
          "token timestamps",
          path);
    }
    return false;
  }
};

Runtime::Runtime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Runtime::~Runtime() {
  if (impl_->scheduler) Stop();
}

StopReport Runtime::Stop() {
  StopReport report;
  if (!impl_->scheduler) return report;
  const auto start = std::chrono::steady_clock::now();
  const sched::SchedulerSnapshot snap = impl_->scheduler->Snapshot();
  std::map<std::string, DeviceRelease> by_device;
  std::set<int> owned;  // the processes the runners' kinds said hold their memory
  for (const auto& r : snap.runners) {
    owned.insert(r.pids.begin(), r.pids.end());
    DeviceRelease& d = by_device[r.view.device];
    d.device = r.view.device;
    ++d.runners;
    d.ledger_bytes += r.view.weights_bytes + r.view.streams * r.view.stream_bytes;
  }
  auto before = impl_->Sample();
  // Scheduler first (it asks every runner to stop), then the backend, which waits for each to
  // exit and verifies its release on the device.
  impl_->scheduler.reset();
  impl_->backend.reset();
  impl_->clock.reset();
  auto after = impl_->Sample();
  for (auto& [name, d] : by_device) {
    d.released_bytes = d.ledger_bytes;
    if (!before.ok() || !after.ok()) continue;
    for (const auto& b : *before) {
      if (gpu::DeviceName(b) != name) continue;
      for (const auto& a : *after) {
        if (gpu::DeviceName(a) != name) continue;
        d.released_bytes = std::max<int64_t>(0, b.used_bytes - a.used_bytes);
        for (const auto& p : a.processes) {
          const bool ours = owned.count(p.pid) > 0 || IsOurChild(p.pid);
          if (ours && p.bytes > 0) d.leftover_bytes += p.bytes;
        }
      }
    }
    if (d.leftover_bytes > 0) report.clean = false;
  }
  for (auto& [name, d] : by_device) report.devices.push_back(d);
  report.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
  return report;
}

std::string StopReport::Summary() const {
  if (devices.empty()) return "no runners were loaded";
  std::string out = "released ";
  for (size_t i = 0; i < devices.size(); ++i) {
    if (i > 0) out += ", ";
    out += gpu::FormatSize(devices[i].released_bytes) + " on " + devices[i].device;
    if (devices[i].leftover_bytes > 0) {
      out += " (" + gpu::FormatSize(devices[i].leftover_bytes) + " still held)";
    }
  }
  return out + " in " + std::to_string(duration_ms) + " ms";
}

Result<std::unique_ptr<Runtime>> Runtime::Start(RuntimeOptions options,
                                                sched::SchedulerHooks hooks) {
  auto impl = std::make_unique<Impl>();
  if (options.models_dir.empty()) options.models_dir = ModelsDir();
  if (options.data_dir.empty()) options.data_dir = DataDir();
  if (options.gpu.data_dir.empty()) options.gpu.data_dir = options.data_dir;
  impl->options = options;

  const bool cpu_only = options.gpu.device.mode == gpu::DeviceSelection::Mode::kCpu;
  if (!cpu_only) {
    gpu::OpenOptions open;
    open.simulate_spec = options.gpu.simulate_spec;
    open.data_dir = options.gpu.data_dir;
    auto devices = gpu::OpenDevices(open);
    if (!devices.ok()) return devices.error();
    impl->devices = std::move(devices).value();
  }
  // A selection naming cards that do not exist fails here, before anything starts.
  if (auto first = impl->Sample(); !first.ok()) return first.error();

  const sched::SchedulerConfig config = SchedulerConfigFor(options);

  Impl* raw = impl.get();
  if (auto st = CheckServerModelNames(options.server_models, options.declared_models); !st) {
    return st.error();
  }
  (void)impl->servers.Replace(options.server_models);
  impl->catalog =
      std::make_unique<models::ModelCatalog>(options.models_dir, impl->DeclaredModels());
  auto kinds = BuildKinds(options, impl->servers);
  if (!kinds.ok()) return kinds.error();
  runners::KindContext context;
  context.sink = [sink = impl->sink](sched::BackendEvent e) { (*sink)(std::move(e)); };
  context.grace = options.runner_grace;
  context.models_dir = options.models_dir;
  context.results_dir = store::ResultsDir(options.data_dir);
  context.on_unreleased = options.on_unreleased;
  if (impl->devices) {
    context.devices = [raw] { return raw->Sample(); };
    if (!options.gpu.simulate_spec.empty()) {
      context.sim_data_dir = options.gpu.data_dir;
    } else {
      context.env_for_device = [raw](const std::string& device) {
        std::lock_guard<std::mutex> lock(raw->samples_mu);
        for (const auto& s : raw->samples) {
          if (gpu::DeviceName(s) == device) return gpu::RunnerCudaEnvironment(s);
        }
        return std::vector<std::pair<std::string, std::string>>{};
      };
    }
  }
  impl->clock = std::make_unique<sched::RealClock>(UnixMillis());
  auto dispatcher = runners::Dispatcher::Create(*kinds, std::move(context));
  if (!dispatcher.ok()) return dispatcher.error();
  impl->backend = std::move(dispatcher).value();
  gpu::DevicesFn devices_fn = [raw] { return raw->Sample(); };
  impl->scheduler = std::make_unique<sched::Scheduler>(
      config, *impl->clock, *impl->backend, devices_fn,
      [raw](const std::string& name) { return raw->Resolve(name); }, std::move(hooks));
  *impl->sink = impl->scheduler->Sink();

  for (const auto& model : options.preload) {
    if (auto spec = impl->Resolve(model); !spec.ok()) return spec.error();
    impl->scheduler->Preload(model);
  }
  return std::unique_ptr<Runtime>(new Runtime(std::move(impl)));
}

sched::Scheduler& Runtime::scheduler() {
  return *impl_->scheduler;
}

gpu::Devices* Runtime::devices() {
  return impl_->devices.get();
}

Result<sched::ModelSpec> Runtime::ResolveModel(const std::string& name) const {
  return impl_->Resolve(name);
}

std::string Runtime::SchedulerModel(const Job& job) const {
  const JobParams& p = job.params;
  if (!p.word_timestamps || p.task == "speech" || impl_->options.dtw_words) return job.model;
  const std::string key = models::VariantKey({job.model, /*dtw_words=*/true});
  auto spec = impl_->Resolve(key);
  return spec.ok() && spec->load.dtw_words ? key : job.model;
}

const models::ModelCatalog& Runtime::catalog() const {
  return *impl_->catalog;
}

const RuntimeOptions& Runtime::options() const {
  return impl_->options;
}

std::optional<runners::ServerModel> Runtime::FindServerModel(const std::string& name) const {
  return impl_->servers.Find(name);
}

Result<ServerModelChanges> Runtime::ReplaceServerModels(std::vector<runners::ServerModel> models) {
  Impl& s = *impl_;
  if (auto st = CheckServerModelNames(models, s.options.declared_models); !st) return st.error();
  std::lock_guard<std::mutex> lock(s.replace_mu);
  ServerModelChanges changes = s.servers.Replace(models);
  if (changes.empty()) return changes;
  s.catalog->SetDeclared(s.DeclaredModels());
  std::vector<std::string> redeclared = changes.removed;
  redeclared.insert(redeclared.end(), changes.changed.begin(), changes.changed.end());
  if (!redeclared.empty()) s.scheduler->Redeclare(redeclared);
  for (const auto& m : models) {
    const bool fresh = std::binary_search(changes.added.begin(), changes.added.end(), m.name) ||
                       std::binary_search(changes.changed.begin(), changes.changed.end(), m.name);
    if (m.preload && fresh) s.scheduler->Preload(m.name);
  }
  return changes;
}

std::string ServerModelChanges::Summary() const {
  std::string out;
  auto add = [&out](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    out += std::string(out.empty() ? "" : "; ") + what;
    for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : " ") + names[i];
  };
  add("added", added);
  add("removed", removed);
  add("changed", changed);
  return out.empty() ? "no change" : out;
}

}  // namespace steno::server
