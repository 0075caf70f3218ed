// `steno models list [--json] [--available]` and `steno models pull NAME [--base-url URL]
// [--sha1 HEX] [--force]`: what the models dir holds, and fetching official models into it.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/paths.h"
#include "engine/model_file.h"
#include "models/catalog.h"
#include "models/download.h"
#include "models/resolve.h"

namespace steno::cli {
namespace {

using json = nlohmann::ordered_json;  // keeps "name" first, as a reader expects

struct ModelsOptions {
  bool json = false;
  bool available = false;
  std::string name;
  std::string base_url;
  std::string sha1;
  bool force = false;
};

std::string ModelsDirOf(const GlobalOptions& global) {
  return global.models_dir.empty() ? steno::ModelsDir() : global.models_dir;
}

std::string HumanBytes(int64_t bytes) {
  char buf[32];
  if (bytes < 0) return "?";
  if (bytes >= (int64_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1 << 30));
  } else if (bytes >= (1 << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  } else if (bytes >= 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  }
  return buf;
}

int ExitFor(const Error& e) {
  return e.kind == ErrorKind::kBadInput ? kExitUsage : kExitFailed;
}

// ---- list ----------------------------------------------------------------------------------

json ModelJson(const models::InstalledModel& m) {
  json j = {{"name", m.name},
            {"path", m.path},
            {"file_bytes", m.file_bytes},
            {"official", models::FindCatalogEntry(m.name) != nullptr}};
  if (models::IsVoiceActivityModel(m.name)) {
    j["type"] = "vad";  // Silero in whisper.cpp's format: no Whisper hparams to show
    return j;
  }
  auto info = engine::ReadModelFile(m.path);
  if (!info.ok()) {
    j["error"] = {{"code", info.error().code}, {"message", info.error().message}};
    return j;
  }
  const auto& h = info->hparams;
  j["type"] = info->type;
  j["multilingual"] = info->multilingual;
  j["ftype"] = info->ftype_name;
  j["n_vocab"] = h.n_vocab;
  j["n_mels"] = h.n_mels;
  j["n_audio_ctx"] = h.n_audio_ctx;
  j["n_audio_state"] = h.n_audio_state;
  j["n_audio_head"] = h.n_audio_head;
  j["n_audio_layer"] = h.n_audio_layer;
  j["n_text_ctx"] = h.n_text_ctx;
  j["n_text_state"] = h.n_text_state;
  j["n_text_head"] = h.n_text_head;
  j["n_text_layer"] = h.n_text_layer;
  j["tensor_bytes"] = info->tensor_bytes;
  j["n_tensors"] = info->n_tensors;
  return j;
}

void PrintInstalledTable(const json& models) {
  std::printf("%-22s %10s  %-7s %-5s %-6s %4s  %-7s %5s\n", "NAME", "SIZE", "TYPE", "LANG", "FTYPE",
              "MELS", "LAYERS", "STATE");
  for (const auto& m : models) {
    std::string size = HumanBytes(m["file_bytes"].get<int64_t>());
    if (m.contains("error")) {
      std::printf("%-22s %10s  error: %s\n", m["name"].get<std::string>().c_str(), size.c_str(),
                  m["error"]["message"].get<std::string>().c_str());
      continue;
    }
    if (m["type"] == "vad") {
      std::printf("%-22s %10s  %-7s\n", m["name"].get<std::string>().c_str(), size.c_str(), "vad");
      continue;
    }
    std::string layers = std::to_string(m["n_audio_layer"].get<int>()) + "/" +
                         std::to_string(m["n_text_layer"].get<int>());
    std::printf("%-22s %10s  %-7s %-5s %-6s %4d  %-7s %5d\n", m["name"].get<std::string>().c_str(),
                size.c_str(), m["type"].get<std::string>().c_str(),
                m["multilingual"].get<bool>() ? "multi" : "en",
                m["ftype"].get<std::string>().c_str(), m["n_mels"].get<int>(), layers.c_str(),
                m["n_audio_state"].get<int>());
  }
}

json AvailableJson(const json& installed) {
  json out = json::array();
  for (const auto& e : models::Catalog()) {
    bool have = false;
    for (const auto& m : installed) have = have || m["name"] == e.name;
    out.push_back({{"name", e.name},
                   {"file", models::ModelFileName(e.name)},
                   {"approx_bytes", e.approx_bytes},
                   {"sha1", e.sha1},
                   {"multilingual", e.multilingual},
                   {"type", e.purpose == models::ModelPurpose::kVoiceActivity ? "vad" : "whisper"},
                   {"installed", have}});
  }
  return out;
}

int RunList(const std::string& dir, const ModelsOptions& o) {
  json models = json::array();
  for (const auto& m : models::ListInstalledModels(dir)) models.push_back(ModelJson(m));

  if (o.json) {
    json out = {{"models_dir", dir}, {"models", models}};
    if (o.available) out["available"] = AvailableJson(models);
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  if (models.empty()) {
    std::fprintf(stderr,
                 "No models in %s. Download one with `steno models pull tiny.en`, or copy a "
                 "ggml-*.bin file there.\n",
                 dir.c_str());
  } else {
    PrintInstalledTable(models);
  }
  if (o.available) {
    std::printf("\nOfficial models (steno models pull NAME):\n");
    std::printf("%-22s %10s  %-5s %s\n", "NAME", "SIZE", "LANG", "INSTALLED");
    for (const auto& a : AvailableJson(models)) {
      std::printf("%-22s %10s  %-5s %s\n", a["name"].get<std::string>().c_str(),
                  HumanBytes(a["approx_bytes"].get<int64_t>()).c_str(),
                  a["type"] == "vad"              ? "(vad)"
                  : a["multilingual"].get<bool>() ? "multi"
                                                  : "en",
                  a["installed"].get<bool>() ? "yes" : "");
    }
  }
  return kExitOk;
}

// ---- pull ----------------------------------------------------------------------------------

// A download bar (bytes, percent, speed) redrawn in place on a terminal, at most ~10 times a
// second.
class DownloadBar {
 public:
  explicit DownloadBar(std::string label) : label_(std::move(label)), start_(Clock::now()) {}

  void Update(int64_t done, int64_t total) {
    auto now = Clock::now();
    if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done != total) return;
    if (!drawn_) first_done_ = done;  // bytes of a resumed .part do not count toward the speed
    last_ = now;
    drawn_ = true;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0.2 ? static_cast<double>(done - first_done_) / secs : 0;
    char line[200];
    if (total > 0) {
      constexpr int kWidth = 28;
      int filled =
          static_cast<int>(kWidth * static_cast<double>(done) / static_cast<double>(total));
      std::string bar(static_cast<size_t>(std::clamp(filled, 0, kWidth)), '#');
      bar.resize(kWidth, '.');
      std::snprintf(line, sizeof line, "%s [%s] %5.1f%%  %s / %s  %s/s", label_.c_str(),
                    bar.c_str(), 100.0 * static_cast<double>(done) / static_cast<double>(total),
                    HumanBytes(done).c_str(), HumanBytes(total).c_str(),
                    HumanBytes(static_cast<int64_t>(rate)).c_str());
    } else {
      std::snprintf(line, sizeof line, "%s %s  %s/s", label_.c_str(), HumanBytes(done).c_str(),
                    HumanBytes(static_cast<int64_t>(rate)).c_str());
    }
    std::fprintf(stderr, "\r\033[K%s", line);
    std::fflush(stderr);
  }

  void Clear() {
    if (drawn_) std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_;
  Clock::time_point start_;
  Clock::time_point last_;
  bool drawn_ = false;
  int64_t first_done_ = 0;
};

int RunPull(const std::string& dir, const ModelsOptions& o) {
  models::PullOptions p;
  p.name = o.name;
  p.models_dir = dir;
  p.base_url = o.base_url;
  p.expected_sha1 = o.sha1;
  p.force = o.force;

  std::unique_ptr<DownloadBar> bar;
  if (isatty(STDERR_FILENO)) {
    bar = std::make_unique<DownloadBar>("pulling " + o.name);
    p.progress = [&bar](int64_t done, int64_t total) { bar->Update(done, total); };
  }
  auto r = models::PullModel(p);
  if (bar) bar->Clear();

  if (!r.ok()) {
    std::fprintf(stderr, "steno models pull: %s\n", r.error().message.c_str());
    return ExitFor(r.error());
  }
  if (!r->downloaded) {
    std::printf("%s is already installed and its SHA-1 matches (%s): %s\n", o.name.c_str(),
                HumanBytes(r->file_bytes).c_str(), r->path.c_str());
  } else {
    std::string resumed =
        r->resumed_from > 0 ? ", resumed from " + HumanBytes(r->resumed_from) : std::string();
    std::printf("Downloaded %s (%s%s), SHA-1 verified: %s\n", o.name.c_str(),
                HumanBytes(r->file_bytes).c_str(), resumed.c_str(), r->path.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddModels(CLI::App& app, const GlobalOptions& global, Action& action) {
  auto* cmd = app.add_subcommand("models", "List installed models and download official ones");
  cmd->require_subcommand(1);
  auto opts = std::make_shared<ModelsOptions>();

  auto* list = cmd->add_subcommand(
      "list", "Show the models in the models dir: name, size, type, language, ftype, hparams");
  list->add_flag("--json", opts->json, "Print JSON instead of a table");
  list->add_flag("--available", opts->available,
                 "Also show the official models `steno models pull` can download");
  list->callback([&action, &global, opts] {
    action = [&global, opts] { return RunList(ModelsDirOf(global), *opts); };
  });

  auto* pull = cmd->add_subcommand(
      "pull", "Download an official whisper.cpp model (resumable, SHA-1 verified)");
  pull->add_option("name", opts->name,
                   "Model name, e.g. tiny.en, base, large-v3-turbo; silero-v6.2.0 for VAD")
      ->required();
  pull->add_option("--base-url", opts->base_url,
                   std::string("Mirror serving ggml-NAME.bin (default $") + models::kBaseUrlEnv +
                       ", else " + std::string(models::kDefaultBaseUrl) + ")");
  pull->add_option("--sha1", opts->sha1,
                   "Expected SHA-1 (40 hex digits); required for models not in the catalog");
  pull->add_flag("--force", opts->force,
                 "Download even if the model is present, replacing a file whose hash differs");
  pull->callback([&action, &global, opts] {
    action = [&global, opts] { return RunPull(ModelsDirOf(global), *opts); };
  });
}

}  // namespace steno::cli
