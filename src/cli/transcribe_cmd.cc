// `steno transcribe FILE...`: every file becomes a job for the same scheduler and runner processes
// `steno serve` uses; one output is written per input, in input order. Flags, and that each input
// is a readable file, are checked before anything starts; every input is probed before any output
// is written, so a bad file (or flag) exits 2 having written nothing. What a one-shot run does
// not need is skipped: no store, no warm-up pass (the first job is the warm-up), no device
// sampling, no lower priority for the runner (a server keeps its API responsive that way), and
// with one input and no --max-duration no probe here either (its job's decode probes it first,
// with the same checks and messages, and nothing is written unless it succeeds): loading FFmpeg
// costs this process tens of milliseconds of CPU. What it needs overlaps: the jobs are submitted
// before the inputs are probed, so the runner starts and loads its model meanwhile, and the
// first inputs are decoded by the runner while its model loads (RuntimeOptions::prefetch_inputs),
// not after.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "audio/decoder.h"
#include "audio/probe.h"
#include "cli/commands.h"
#include "cli/gpu_flags.h"
#include "cli/output_names.h"
#include "cli/progress_bar.h"
#include "cli/signal_watch.h"
#include "core/paths.h"
#include "engine/formats.h"
#include "engine/transcript_json.h"
#include "engine/vad.h"
#include "models/catalog.h"
#include "models/resolve.h"
#include "sched/scheduler.h"
#include "server/runtime.h"

namespace steno::cli {

using namespace std::chrono_literals;
namespace {

namespace fs = std::filesystem;

struct TranscribeOptions {
  std::vector<std::string> files;
  std::string model = "base.en";
  std::string format = "txt";
  std::string output_dir;
  GpuFlags gpu;
  double max_duration_s = 0;
  bool vad = false;
  engine::DecodeParams decode;
};

constexpr int kExitInterrupted = 130;  // 128 + SIGINT, what shells expect after Ctrl+C
// Inputs the runner may decode while it loads its model: the first ones (it takes one per stream
// it starts with: runner_main.h).
constexpr size_t kPrefetchFiles = 4;

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

// What the scheduler's hooks report, gathered for the main thread.
struct Outcomes {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, sched::JobUpdate> final;  // by job id
};

int Run(const TranscribeOptions& o, const GlobalOptions& global) {
  // 1. Everything that can be wrong with the request is checked before any work starts.
  auto format = engine::ParseFormat(o.format);
  if (!format) return UsageError(format.error());
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
  auto output_names = OutputNames(o.files, engine::FormatExtension(*format));
  if (!output_names) return UsageError(output_names.error());
  for (const auto& file : o.files) {
    if (auto st = audio::CheckFile(file); !st) return UsageError(st.error());
  }
  const std::string models_dir = global.models_dir.empty() ? ModelsDir() : global.models_dir;
  auto model_path = models::ResolveModel(o.model, models_dir);
  if (!model_path) return UsageError(model_path.error());
  engine::DecodeParams decode = o.decode;
  if (o.vad) {  // the VAD model is looked for in the models dir, like the Whisper model
    decode.vad_model_path =
        (fs::path(models_dir) / models::ModelFileName(models::kVadModelName)).string();
    std::error_code ec;
    if (!fs::is_regular_file(decode.vad_model_path, ec)) {
      return UsageError(engine::VadModelMissing(decode.vad_model_path));
    }
  }
  const std::string data_dir = DataDir();
  auto gpu_config = ToRunnerGpuConfig(o.gpu, data_dir);
  if (!gpu_config) return UsageError(gpu_config.error());

  // 2. The same scheduler and runner processes as the server: one runner loads the model and
  // takes the files as concurrent jobs, as many at once as the device has room for.
  server::RuntimeOptions ro;
  ro.gpu = *gpu_config;
  ro.models_dir = models_dir;
  ro.data_dir = data_dir;
  ro.decode_defaults = decode;
  ro.warmup = false;                      // one-shot: the first job is the warm-up
  ro.dtw_words = decode.word_timestamps;  // every file of this run wants words
  for (size_t i = 0; i < o.files.size() && i < kPrefetchFiles; ++i) {
    ro.prefetch_inputs.emplace_back(o.files[i], "");  // as the job names it (r.input.path below)
  }
  ro.runners_lower_priority = false;  // nothing here to keep responsive: whisper-cli's priority
  // Runners are stopped when every file is done (idle: they exit at once) or on Ctrl+C, when a
  // runner still in a decode window is not worth waiting for: killed after a second.
  ro.runner_grace = std::chrono::milliseconds(1000);
  ro.allow_model_paths = true;
  ro.scheduler.default_keep_alive_s = 0;  // unload as soon as the last file is done
  ro.scheduler.default_timeout_s = 0;     // a CLI run takes as long as it takes
  ro.scheduler.sample_interval_ms = 0;

  auto outcomes = std::make_shared<Outcomes>();
  ProgressBar bar(isatty(STDERR_FILENO) == 1);
  std::map<std::string, std::string> label_of;  // job id -> input's file name
  for (size_t i = 0; i < o.files.size(); ++i) {
    label_of["file-" + std::to_string(i)] = fs::path(o.files[i]).filename().string();
  }
  sched::SchedulerHooks hooks;
  hooks.on_job = [outcomes, &bar, &label_of](const sched::JobUpdate& u) {
    if (u.kind == sched::JobUpdate::Kind::kProgress) {
      std::lock_guard<std::mutex> lock(outcomes->mu);  // the bar is shared with the main thread
      bar.Update(label_of.at(u.job.id), u.percent);
    } else if (u.kind == sched::JobUpdate::Kind::kState && IsFinal(u.job.state)) {
      std::lock_guard<std::mutex> lock(outcomes->mu);
      outcomes->final[u.job.id] = u;
      outcomes->cv.notify_all();
    }
  };
  SignalWatch& signals = SignalWatch::Install();
  auto runtime = server::Runtime::Start(ro, hooks);
  if (!runtime) return UsageError(runtime.error());

  // Ctrl+C: every job is cancelled (runners abort their runs) and nothing unfinished is written;
  // a second one exits at once (SignalWatch).
  std::atomic<bool> finished{false};
  std::atomic<bool> interrupted{false};
  std::thread watcher([&] {
    while (!finished) {
      if (signals.Wait(std::chrono::milliseconds(100)) != SignalKind::kStop) continue;
      interrupted = true;
      std::fprintf(stderr,
                   "\nsteno transcribe: interrupted; stopping (Ctrl+C again to quit now)\n");
      for (const auto& [id, label] : label_of) (void)(*runtime)->scheduler().Cancel(id);
      std::lock_guard<std::mutex> lock(outcomes->mu);
      outcomes->cv.notify_all();
      return;
    }
  });
  // Joined before the runtime goes (it uses the scheduler), on every path out of here; woken so
  // that the join does not wait out its poll.
  struct JoinOnExit {
    std::thread& t;
    std::atomic<bool>& finished;
    SignalWatch& signals;
    void Join() {
      finished = true;
      if (!t.joinable()) return;
      signals.Wake();
      t.join();
    }
    ~JoinOnExit() { Join(); }
  } join_watcher{watcher, finished, signals};

  for (size_t i = 0; i < o.files.size(); ++i) {
    sched::SubmitRequest r;
    r.job.id = "file-" + std::to_string(i);
    r.job.model = *model_path;
    r.job.params.task = o.decode.translate ? "translate" : "transcribe";
    r.job.params.language = o.decode.language;
    r.job.params.prompt = o.decode.initial_prompt;
    r.job.params.temperature = o.decode.temperature;
    r.job.params.word_timestamps = o.decode.word_timestamps;
    if (o.vad) r.job.params.vad = VadSettings{};
    r.input.path = o.files[i];
    if (auto st = (*runtime)->scheduler().Submit(std::move(r)); !st) {
      return Fail(kExitFailed, st.error().message);
    }
  }
  // Probed while the runner starts (several inputs, or a duration limit, which a job's decode
  // does not apply); a bad input cancels every job (the runtime's stop ends the runner) before
  // anything is written.
  const bool probe_here = o.files.size() > 1 || o.max_duration_s > 0;
  const audio::Limits limits{o.max_duration_s};
  for (size_t i = 0; probe_here && i < o.files.size(); ++i) {
    auto info = audio::Probe(o.files[i], limits);
    if (info) continue;
    for (const auto& [id, label] : label_of) (void)(*runtime)->scheduler().Cancel(id);
    return UsageError(info.error());
  }

  // 3. Outputs in input order, each as soon as it and every input before it are done.
  int failures = 0;
  int bad_inputs = 0;  // found only while decoding (e.g. truncated data): no output for them
  for (size_t i = 0; i < o.files.size(); ++i) {
    const std::string id = "file-" + std::to_string(i);
    sched::JobUpdate u;
    {
      // After Ctrl+C a runner in the middle of a decode window answers its cancel when the
      // window ends: not waited for beyond a second (the runtime's stop kills it).
      std::unique_lock<std::mutex> lock(outcomes->mu);
      std::optional<std::chrono::steady_clock::time_point> give_up;
      while (outcomes->final.count(id) == 0) {
        if (interrupted && !give_up) give_up = std::chrono::steady_clock::now() + 1s;
        if (give_up && std::chrono::steady_clock::now() >= *give_up) break;
        outcomes->cv.wait_for(lock, 100ms);
      }
      if (outcomes->final.count(id) == 0) continue;  // interrupted: nothing written
      u = outcomes->final[id];
    }
    const std::string& file = o.files[i];
    if (u.job.state == JobState::kCancelled) continue;  // interrupted: nothing written
    if (u.job.state != JobState::kCompleted) {
      const Error e = u.job.error.value_or(Error(ErrorKind::kInternal, "failed", "failed"));
      std::fprintf(stderr, "steno transcribe: %s: %s\n", file.c_str(), e.message.c_str());
      ++(e.kind == ErrorKind::kBadInput ? bad_inputs : failures);
      continue;
    }
    auto transcript = engine::TranscriptFromVerboseJson(u.payload);
    if (!transcript) {
      std::fprintf(stderr, "steno transcribe: %s: %s\n", file.c_str(),
                   transcript.error().message.c_str());
      ++failures;
      continue;
    }
    const std::string rendered = engine::Render(*transcript, *format);
    if (o.output_dir.empty()) {
      {
        std::lock_guard<std::mutex> lock(outcomes->mu);
        bar.Done();
      }
      std::fwrite(rendered.data(), 1, rendered.size(), stdout);
      std::fflush(stdout);
      continue;
    }
    if (auto st = WriteFileAtomically(fs::path(o.output_dir) / (*output_names)[i], rendered); !st) {
      std::fprintf(stderr, "steno transcribe: %s\n", st.error().message.c_str());
      ++failures;
    }
  }
  join_watcher.Join();
  runtime->reset();  // runners exit and their release is verified before steno does
  bar.Done();
  if (interrupted) return kExitInterrupted;
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
                "Word-level timestamps (verbose_json), timed by DTW over the model's alignment "
                "heads when its dimensions match an official model's");
  cmd->add_flag("--vad", opts->vad,
                "Voice activity detection: transcribe only the speech (times stay those of the "
                "input); needs `steno models pull silero-v6.2.0`");
  AddGpuFlags(*cmd, opts->gpu);
  cmd->add_option("--max-duration", opts->max_duration_s,
                  "Reject inputs longer than this many seconds (0 = no limit)")
      ->capture_default_str();
  cmd->callback(
      [opts, &global, &action] { action = [opts, &global] { return Run(*opts, global); }; });
}

}  // namespace steno::cli
