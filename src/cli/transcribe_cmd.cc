// `steno transcribe FILE...`: decode each file, run it through one loaded model, write one output
// per input. Every input is probed before anything runs, so a bad file (or flag) exits 2 having
// written nothing.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "audio/decoder.h"
#include "audio/probe.h"
#include "cli/commands.h"
#include "cli/progress_bar.h"
#include "core/paths.h"
#include "engine/formats.h"
#include "engine/whisper_model.h"
#include "engine/whisper_stream.h"
#include "models/resolve.h"

namespace steno::cli {
namespace {

namespace fs = std::filesystem;

struct TranscribeOptions {
  std::vector<std::string> files;
  std::string model = "base.en";
  std::string format = "txt";
  std::string output_dir;
  std::string device = "auto";
  double max_duration_s = 0;
  engine::DecodeParams decode;
};

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "steno transcribe: %s\n", message.c_str());
  return code;
}

int UsageError(const Error& e) {
  return Fail(kExitUsage, e.message);
}

// Writes `data` to `path` through a temporary file and a rename, so a reader never sees half.
Status WriteFileAtomically(const fs::path& path, const std::string& data) {
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out.flush()) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return Error(ErrorKind::kIo, "write_failed", "could not write " + tmp.string());
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Error(ErrorKind::kIo, "write_failed", "could not write " + path.string());
  }
  return {};
}

Result<engine::ModelOptions> ParseDevice(const std::string& device) {
  engine::ModelOptions options;
#ifdef STENO_HAVE_CUDA
  constexpr bool kHaveCuda = true;
#else
  constexpr bool kHaveCuda = false;
#endif
  if (device == "cpu") return options;
  if (device == "auto") {
    options.use_gpu = kHaveCuda;
    return options;
  }
  if (device.rfind("cuda:", 0) == 0) {
    const std::string n = device.substr(5);
    if (n.empty() || n.size() > 3 || n.find_first_not_of("0123456789") != std::string::npos) {
      return Error(ErrorKind::kBadInput, "bad_device", "bad device '" + device + "': use cuda:N");
    }
    if (!kHaveCuda) {
      return Error(ErrorKind::kBadInput, "no_cuda",
                   "this steno was built without CUDA; rebuild with make STENO_CUDA=1 or use "
                   "--device cpu");
    }
    options.use_gpu = true;
    options.gpu_device = std::stoi(n);
    return options;
  }
  return Error(ErrorKind::kBadInput, "bad_device",
               "bad device '" + device + "': use auto, cpu or cuda:N");
}

fs::path OutputPath(const TranscribeOptions& o, const std::string& input, engine::Format format) {
  return fs::path(o.output_dir) /
         (fs::path(input).stem().string() + "." + std::string(engine::FormatExtension(format)));
}

int Run(const TranscribeOptions& o, const GlobalOptions& global) {
  // 1. Everything that can be wrong with the request is checked before any work starts.
  auto format = engine::ParseFormat(o.format);
  if (!format) return UsageError(format.error());
  auto model_options = ParseDevice(o.device);
  if (!model_options) return UsageError(model_options.error());
  if (auto st = engine::ValidateDecodeParams(o.decode); !st) return UsageError(st.error());
  if (o.max_duration_s < 0) return Fail(kExitUsage, "--max-duration must not be negative");
  if (!o.output_dir.empty()) {
    std::error_code ec;
    if (!fs::is_directory(o.output_dir, ec)) {
      return Fail(kExitUsage, "output directory " + o.output_dir + " does not exist");
    }
  } else if (o.files.size() > 1) {
    return Fail(kExitUsage, "several inputs need --output-dir (one output file per input)");
  }
  const audio::Limits limits{o.max_duration_s};
  for (const auto& file : o.files) {
    auto info = audio::Probe(file, limits);
    if (!info) return UsageError(info.error());
  }
  const std::string models_dir = global.models_dir.empty() ? ModelsDir() : global.models_dir;
  auto model_path = models::ResolveModel(o.model, models_dir);
  if (!model_path) return UsageError(model_path.error());

  // 2. Load once; one stream serves the files in turn.
  auto model = engine::WhisperModel::Load(*model_path, *model_options);
  if (!model) {
    return Fail(model.error().kind == ErrorKind::kBadInput ? kExitUsage : kExitFailed,
                model.error().message);
  }
  auto stream = (*model)->NewStream();
  if (!stream) return Fail(kExitFailed, stream.error().message);

  int failures = 0;
  int bad_inputs = 0;  // found only while decoding (e.g. truncated data): no output for them
  ProgressBar bar(isatty(STDERR_FILENO) == 1);
  for (const auto& file : o.files) {
    auto pcm = audio::Decode(file, limits);
    if (!pcm) {
      std::fprintf(stderr, "steno transcribe: %s\n", pcm.error().message.c_str());
      ++(pcm.error().kind == ErrorKind::kBadInput ? bad_inputs : failures);
      continue;
    }
    engine::StreamCallbacks callbacks;
    const std::string label = fs::path(file).filename().string();
    callbacks.on_progress = [&](int percent) { bar.Update(label, percent); };
    auto transcript = (*stream)->Run(*pcm, o.decode, callbacks);
    bar.Done();
    if (!transcript) {
      std::fprintf(stderr, "steno transcribe: %s: %s\n", file.c_str(),
                   transcript.error().message.c_str());
      ++failures;
      continue;
    }
    const std::string rendered = engine::Render(*transcript, *format);
    if (o.output_dir.empty()) {
      std::fwrite(rendered.data(), 1, rendered.size(), stdout);
      std::fflush(stdout);
      continue;
    }
    if (auto st = WriteFileAtomically(OutputPath(o, file, *format), rendered); !st) {
      std::fprintf(stderr, "steno transcribe: %s\n", st.error().message.c_str());
      ++failures;
    }
  }
  if (bad_inputs > 0) return kExitUsage;
  return failures == 0 ? kExitOk : kExitFailed;
}

}  // namespace

void AddTranscribe(CLI::App& app, const GlobalOptions& global, Action& action) {
  auto opts = std::make_shared<TranscribeOptions>();
  opts->decode.n_threads =
      static_cast<int>(std::min(4u, std::max(1u, std::thread::hardware_concurrency())));
  auto* cmd = app.add_subcommand("transcribe", "Transcribe audio or video files");
  // A flag given twice takes its last value, as in most CLIs (wrappers append overrides).
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("files", opts->files, "Input files (any audio or video FFmpeg reads)")
      ->required();
  cmd->add_option("-m,--model", opts->model, "Model name (e.g. base.en) or path to a ggml file")
      ->envname("STENO_MODEL")
      ->capture_default_str();
  cmd->add_option("-f,--format", opts->format, "txt|srt|vtt|json|verbose_json")
      ->capture_default_str();
  cmd->add_option("-o,--output-dir", opts->output_dir,
                  "Write FILE.<ext> per input here (default: print to stdout, one input only)");
  cmd->add_option("-l,--language", opts->decode.language, "Spoken language (ISO 639-1) or auto")
      ->capture_default_str();
  cmd->add_flag("--translate", opts->decode.translate, "Translate to English");
  cmd->add_option("--prompt", opts->decode.initial_prompt, "Initial prompt (vocabulary, style)");
  cmd->add_option("--device", opts->device, "auto|cpu|cuda:N")
      ->envname("STENO_DEVICE")
      ->capture_default_str();
  cmd->add_option("-t,--threads", opts->decode.n_threads, "CPU threads")->capture_default_str();
  cmd->add_option("--temperature", opts->decode.temperature, "Initial sampling temperature")
      ->capture_default_str();
  cmd->add_option("--temperature-inc", opts->decode.temperature_inc,
                  "Fallback temperature increment (0 = no fallback, deterministic)")
      ->capture_default_str();
  cmd->add_option("--beam-size", opts->decode.beam_size, "Beam size (1 = greedy)")
      ->capture_default_str();
  cmd->add_option("--best-of", opts->decode.best_of, "Candidates when sampling")
      ->capture_default_str();
  cmd->add_flag("--word-timestamps", opts->decode.word_timestamps,
                "Word-level timestamps (verbose_json)");
  cmd->add_option("--max-duration", opts->max_duration_s,
                  "Reject inputs longer than this many seconds (0 = no limit)")
      ->capture_default_str();
  cmd->callback(
      [opts, &global, &action] { action = [opts, &global] { return Run(*opts, global); }; });
}

}  // namespace steno::cli
