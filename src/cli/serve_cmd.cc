// `steno serve`: the job service (store, scheduler, runners) behind the HTTP API.
//
// On start it prints one parseable line to stdout, `steno: listening on http://HOST:PORT`
// (with `--port 0` the port the system picked), so scripts and tests can find it.
//
// Signals (promises 2 and 3):
//   first SIGINT/SIGTERM  stop admitting (/readyz fails, new jobs get 503), let running jobs
//                         finish for up to --shutdown-grace, then stop every runner (their jobs
//                         return to pending in the store), verify the release per device, log
//                         a summary and exit 0;
//   second one            exit 130 at once (runners die with steno: PR_SET_PDEATHSIG);
//   SIGHUP                re-read --config (limits, keep-alive, reserves) and the managed model
//                         servers' [[models]] tables (in --config and --models-config: added,
//                         removed and changed models; JobService::Reconfigure); a bad file is
//                         rejected with a message and the running config stays.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <spdlog/spdlog.h>

#include "api/http_server.h"
#include "api/job_request.h"
#include "cli/commands.h"
#include "cli/config_file.h"
#include "cli/gpu_flags.h"
#include "cli/serve_alerts.h"
#include "cli/signal_watch.h"
#include "core/duration.h"
#include "core/paths.h"
#include "engine/vad.h"
#include "gpu/size.h"
#include "models/catalog.h"
#include "runners/server/server_config.h"
#include "sched/concurrency_limit.h"
#include "server/job_service.h"
#include "store/open_job_store.h"
#include "store/pg_connection.h"

namespace steno::cli {
namespace {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string data_dir;
  std::string store;  // postgres://...; empty: SQLite in the data dir
  std::string node;   // lease owner on a shared store; empty: <hostname>:<pid>
  std::string lease = "60s";
  std::string models_dir;
  GpuFlags gpu;
  std::vector<std::string> preload;
  std::string keep_alive = "600";
  int max_queue = 10'000;
  int max_running = 0;
  std::string max_concurrency = "auto";  // per device: auto, 0 (none) or N
  int max_streams = 4;
  bool allow_cpu = false;
  int threads = 0;      // the most one CPU job uses; 0: min(4, cores)
  int min_threads = 1;  // the fewest
  int cpu_cores = 0;
  int beam_size = 5;
  float temperature_inc = 0.2f;
  double max_duration_s = 0;
  std::string vad = "auto";
  std::string vad_min_duration = "30s";
  int chunk_streams = 4;
  bool no_warmup = false;
  bool dtw_words = false;
  std::vector<std::string> api_keys;
  std::string api_key_file;
  std::vector<std::string> allow_paths;
  std::string cors_origin;
  std::string dashboard_dir;
  int max_connections = 512;
  int max_connections_per_client = 128;
  std::string read_timeout = "20s";
  std::string max_upload = "1GiB";
  std::string min_free_disk = "1GiB";
  std::string default_model;
  std::string sync_timeout = "1h";
  std::string realtime_admit_timeout = "30s";
  std::string realtime_idle_timeout = "60s";
  std::string realtime_max_buffer = "30s";
  std::string shutdown_grace = "30s";
  std::string config;
  std::string models_config;  // [[models]] tables of managed model servers, beside --config's
  AlertFlags alerts;
};

int Fail(const Error& e) {
  std::fprintf(stderr, "steno serve: %s\n", e.message.c_str());
  return e.kind == ErrorKind::kBadInput || e.kind == ErrorKind::kNotFound ? kExitUsage
                                                                          : kExitFailed;
}

Error Usage(const std::string& message) {
  return Error(ErrorKind::kBadInput, "bad_flag", message);
}

// The managed model servers: the [[models]] tables of --config, then of --models-config (a
// name in both is refused). Each `preload = true` one joins `preload`.
Result<std::vector<runners::ServerModel>> ServerModelsFor(const ServeOptions& o,
                                                          std::vector<std::string>& preload) {
  std::vector<runners::ServerModel> models;
  if (!o.config.empty()) {
    auto in_config = runners::ReadServerModels(o.config, runners::ModelsFileScope::kBesideSettings);
    if (!in_config.ok()) return in_config.error();
    models = std::move(in_config).value();
  }
  if (!o.models_config.empty()) {
    auto own =
        runners::ReadServerModels(o.models_config, runners::ModelsFileScope::kModelsOnly, models);
    if (!own.ok()) return own.error();
    models.insert(models.end(), own->begin(), own->end());
  }
  for (const auto& m : models) {
    if (m.preload) preload.push_back(m.name);
  }
  return models;
}

// httplib writes to sockets without MSG_NOSIGNAL: a client that hangs up must give EPIPE, not
// kill the server. A handler rather than SIG_IGN so runners (exec'd children) keep the default.
void NoteSigpipe(int) {}

// --vad and --vad-min-duration, with the VAD model of the models dir. `--vad on` without the
// model is refused: the operator asked for VAD on every job.
Status ApplyVadFlags(const ServeOptions& o, server::ServiceOptions& s) {
  auto mode = server::ParseVadMode(o.vad);
  if (!mode) return Usage("--vad must be auto, on or off");
  auto min_duration = ParseDurationSeconds(o.vad_min_duration);
  if (!min_duration || *min_duration < 0) {
    return Usage("--vad-min-duration must be a duration (30s, 2m; 0: every file)");
  }
  s.vad.mode = *mode;
  s.vad.min_duration_s = *min_duration;
  s.vad.model_path =
      (std::filesystem::path(s.runtime.models_dir) / models::ModelFileName(models::kVadModelName))
          .string();
  s.runtime.decode_defaults.vad_model_path = s.vad.model_path;
  std::error_code ec;
  if (*mode == server::VadPolicy::Mode::kOn &&
      !std::filesystem::is_regular_file(s.vad.model_path, ec)) {
    return engine::VadModelMissing(s.vad.model_path);
  }
  return {};
}

Result<server::ServiceOptions> ServiceOptionsFor(const ServeOptions& o, const GlobalOptions& g) {
  server::ServiceOptions s;
  s.data_dir = o.data_dir.empty() ? DataDir() : o.data_dir;
  if (!o.store.empty() && !store::IsPostgresSpec(o.store)) {
    // Never echo the spec: it may hold a password.
    return Usage("--store must be postgres://user:password@host:port/dbname (or postgresql://...)");
  }
  s.store = o.store;
  if (o.node.size() > 255) return Usage("--node must be at most 255 bytes");
  s.node = o.node;
  auto lease = ParseDurationSeconds(o.lease);
  if (!lease || *lease < 1) return Usage("--lease must be a positive duration (30s, 1m)");
  s.lease_ms = int64_t{*lease} * 1000;
  auto& rt = s.runtime;
  rt.models_dir = !o.models_dir.empty()   ? o.models_dir
                  : !g.models_dir.empty() ? g.models_dir
                                          : ModelsDir();
  rt.data_dir = s.data_dir;
  auto gpu = ToRunnerGpuConfig(o.gpu, s.data_dir);
  if (!gpu.ok()) return gpu.error();
  rt.gpu = *gpu;
  for (const auto& list : o.preload) {
    size_t i = 0;
    while (i <= list.size()) {
      size_t j = list.find(',', i);
      if (j == std::string::npos) j = list.size();
      if (j > i) rt.preload.push_back(list.substr(i, j - i));
      i = j + 1;
    }
  }
  auto servers = ServerModelsFor(o, rt.preload);
  if (!servers.ok()) return servers.error();
  rt.server_models = std::move(servers).value();
  auto keep = api::ParseKeepAlive(o.keep_alive);
  if (!keep) return Usage("--keep-alive must be seconds (or 30s, 5m, 1h), 0, or -1 (forever)");
  rt.scheduler.default_keep_alive_s = *keep;
  if (o.max_queue < 1) return Usage("--max-queue must be at least 1");
  if (o.max_running < 0) return Usage("--max-running must be 0 (no limit) or more");
  s.max_queue = static_cast<size_t>(o.max_queue);
  rt.scheduler.queue.max_running = o.max_running;
  auto concurrency = sched::ParseConcurrencyLimit(o.max_concurrency);
  if (!concurrency) {
    return Usage(
        "--max-concurrency-per-device must be auto, 0 (no compute limit: memory alone) "
        "or a number of jobs from 1 to 1024");
  }
  rt.scheduler.concurrency = *concurrency;
  if (o.max_streams < 1 || o.max_streams > 64) return Usage("--max-streams must be from 1 to 64");
  rt.scheduler.placement.max_streams_per_runner = o.max_streams;
  rt.scheduler.allow_cpu = o.allow_cpu;
  if (o.threads < 0 || o.threads > 256) return Usage("--threads must be from 1 to 256");
  const int threads =
      o.threads > 0
          ? o.threads
          : static_cast<int>(std::min(4u, std::max(1u, std::thread::hardware_concurrency())));
  rt.decode_defaults.n_threads = threads;  // also the most the scheduler gives one CPU job
  if (o.min_threads < 1 || o.min_threads > threads) {
    return Usage("--min-threads must be from 1 to --threads (" + std::to_string(threads) + ")");
  }
  rt.scheduler.min_threads_per_job = o.min_threads;
  if (o.cpu_cores < 0) return Usage("--cpu-cores must be 0 (all) or more");
  rt.scheduler.cpu_cores = o.cpu_cores;
  if (o.beam_size < 1 || o.beam_size > 16) return Usage("--beam-size must be from 1 to 16");
  rt.decode_defaults.beam_size = o.beam_size;
  if (o.temperature_inc < 0 || o.temperature_inc > 1) {
    return Usage("--temperature-inc must be from 0 to 1");
  }
  rt.decode_defaults.temperature_inc = o.temperature_inc;
  rt.warmup = !o.no_warmup;
  rt.dtw_words = o.dtw_words;
  if (o.max_duration_s < 0) return Usage("--max-duration must be 0 (no limit) or more");
  s.limits.max_duration_s = o.max_duration_s;
  if (auto st = ApplyVadFlags(o, s); !st) return st.error();
  if (o.chunk_streams < 1 || o.chunk_streams > 64) {
    return Usage("--chunk-streams must be from 1 to 64");
  }
  s.chunk_streams = o.chunk_streams;
  return s;
}

Result<api::HttpOptions> HttpOptionsFor(const ServeOptions& o, const server::ServiceOptions& s) {
  api::HttpOptions h;
  h.host = o.host;
  if (o.port < 0 || o.port > 65535) return Usage("--port must be from 0 to 65535");
  h.port = o.port;
  if (o.max_connections < 1 || o.max_connections > 100'000) {
    return Usage("--max-connections must be from 1 to 100000");
  }
  h.max_connections = o.max_connections;
  if (o.max_connections_per_client < 0) {
    return Usage("--max-connections-per-client must be 0 (no bound) or more");
  }
  h.max_connections_per_client = o.max_connections_per_client;
  auto read_timeout = ParseDurationSeconds(o.read_timeout);
  if (!read_timeout || *read_timeout <= 0 || *read_timeout > 3600) {
    return Usage("--read-timeout must be a duration from 1s to 1h (20s, 1m)");
  }
  h.read_timeout_s = *read_timeout;
  auto upload = gpu::ParseSize(o.max_upload);
  if (!upload.ok()) return Usage("--max-upload-bytes: " + upload.error().message);
  if (*upload < 1) return Usage("--max-upload-bytes must be positive");
  h.max_upload_bytes = *upload;
  auto min_free = gpu::ParseSize(o.min_free_disk);
  if (!min_free.ok()) return Usage("--min-free-disk: " + min_free.error().message);
  h.min_free_disk_bytes = *min_free;
  auto sync = ParseDurationSeconds(o.sync_timeout);
  if (!sync || *sync <= 0) return Usage("--sync-timeout must be a positive duration (30s, 5m, 1h)");
  h.sync_timeout_ms = int64_t{*sync} * 1000;
  for (auto [flag, text, out] :
       {std::tuple{"--realtime-admit-timeout", &o.realtime_admit_timeout,
                   &h.realtime.admit_timeout_ms},
        std::tuple{"--realtime-idle-timeout", &o.realtime_idle_timeout,
                   &h.realtime.idle_timeout_ms},
        std::tuple{"--realtime-max-buffer", &o.realtime_max_buffer, &h.realtime.max_buffer_ms}}) {
    auto seconds = ParseDurationSeconds(*text);
    if (!seconds || *seconds <= 0 || *seconds > 86'400) {
      return Usage(std::string(flag) + " must be a duration from 1s to 24h (30s, 5m)");
    }
    *out = int64_t{*seconds} * 1000;
  }
  h.cors_origin = o.cors_origin;
  if (!o.dashboard_dir.empty() && !std::filesystem::is_directory(o.dashboard_dir)) {
    return Usage("--dashboard-dir: " + o.dashboard_dir + " is not a directory");
  }
  h.dashboard_dir = o.dashboard_dir;
  h.allow_paths = o.allow_paths;
  auto keys = api::ApiKeys::Load(o.api_keys, o.api_key_file);
  if (!keys.ok()) return keys.error();
  h.keys = std::move(keys.value());
  h.default_model = o.default_model;
  h.models_dir = s.runtime.models_dir;
  h.reserve = s.runtime.gpu.reserve;
  h.safety_factor = s.runtime.gpu.safety_factor;
  return h;
}

void RegisterServeOptions(CLI::App& cmd, ServeOptions& o);

// The options again from this process's command line with the config file's settings placed
// before the user's flags (config_file.h: flags > env > file > defaults).
Result<ServeOptions> ParseWithConfig(const std::string& path) {
  CLI::App app;
  GlobalOptions global;
  AddGlobalOptions(app, global);
  auto* cmd = app.add_subcommand("serve");
  ServeOptions o;
  RegisterServeOptions(*cmd, o);
  auto file_args = ConfigFileArgs(*cmd, path);
  if (!file_args.ok()) return file_args.error();
  std::vector<std::string> args = ProcessArgs();
  auto at = std::find(args.begin(), args.end(), "serve");
  if (at == args.end()) return Usage("cannot find the serve command in this process's arguments");
  args.insert(at + 1, file_args->begin(), file_args->end());
  std::reverse(args.begin(), args.end());  // CLI11 takes them last-first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return Error(ErrorKind::kBadInput, "bad_config", path + ": " + e.what());
  }
  return o;
}

// The alert monitor's answers for GET /v1/alerts and /metrics.
void ServeAlertsFrom(api::HttpOptions& h, ServeAlerts* alerts) {
  h.alerts_json = [alerts] { return alerts->ActiveJson(); };
  h.alerts_metrics = [alerts] { return alerts->Metrics(); };
}

// SIGHUP: the settings a reload may change, from the config file as it is now. Every part is
// built and checked before any is applied: a bad file changes nothing.
void Reload(const ServeOptions& running, const GlobalOptions& global, server::JobService& service,
            ServeAlerts& alerts, api::HttpServer& http) {
  if (running.config.empty() && running.models_config.empty()) {
    spdlog::warn("SIGHUP: no --config or --models-config file was given; nothing to reload");
    return;
  }
  auto fresh =
      running.config.empty() ? Result<ServeOptions>(running) : ParseWithConfig(running.config);
  if (!fresh.ok()) {
    spdlog::error("config reload rejected, keeping the running config: {}", fresh.error().message);
    return;
  }
  auto options = ServiceOptionsFor(*fresh, global);
  if (!options.ok()) {
    spdlog::error("config reload rejected, keeping the running config: {}",
                  options.error().message);
    return;
  }
  auto http_options = HttpOptionsFor(*fresh, *options);
  if (!http_options.ok()) {
    spdlog::error("config reload rejected, keeping the running config: {}",
                  http_options.error().message);
    return;
  }
  ServeAlertsFrom(*http_options, &alerts);
  auto rules = LoadAlertRules(fresh->alerts.rules_file);
  if (!rules.ok()) {
    spdlog::error("config reload rejected, keeping the running config: {}", rules.error().message);
    return;
  }
  if (auto st = alerts.monitor().SetRules(std::move(rules).value()); !st) {
    spdlog::error("config reload rejected, keeping the running config: {}", st.error().message);
    return;
  }
  // The server models first: the one part a running service may still refuse.
  auto servers = service.Reconfigure(*options);
  if (!servers.ok()) {
    spdlog::error("config reload rejected, keeping the running config: {}",
                  servers.error().message);
    return;
  }
  http.Reconfigure(std::move(http_options.value()));
  spdlog::info(
      "config reloaded from {} (max-queue {}, max-running {}, keep-alive {} s; server models: {})",
      running.config.empty() ? running.models_config : running.config, options->max_queue,
      options->runtime.scheduler.queue.max_running, options->runtime.scheduler.default_keep_alive_s,
      servers->Summary());
}

int Run(const ServeOptions& flags, const GlobalOptions& global) {
  ServeOptions o = flags;
  if (!o.config.empty()) {
    auto with_config = ParseWithConfig(o.config);
    if (!with_config.ok()) return Fail(with_config.error());
    o = *with_config;
  }
  auto grace = ParseDurationSeconds(o.shutdown_grace);
  if (!grace) return Fail(Usage("--shutdown-grace must be a duration (30s, 2m) or 0"));
  auto service_options = ServiceOptionsFor(o, global);
  if (!service_options.ok()) return Fail(service_options.error());
  auto http_options = HttpOptionsFor(o, *service_options);
  if (!http_options.ok()) return Fail(http_options.error());

  struct sigaction sa = {};
  sa.sa_handler = NoteSigpipe;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, nullptr);
  SignalWatch& signals = SignalWatch::Install();

  auto service = server::JobService::Open(std::move(service_options.value()));
  if (!service.ok()) return Fail(service.error());
  o.alerts.min_free_disk_bytes = http_options->min_free_disk_bytes;
  auto alerts = ServeAlerts::Start(o.alerts, **service);
  if (!alerts.ok()) return Fail(alerts.error());
  ServeAlertsFrom(*http_options, alerts->get());
  auto http = api::HttpServer::Start(std::move(http_options.value()), **service);
  if (!http.ok()) return Fail(http.error());

  spdlog::info("steno {} serving on {} (data {}{}, models {})", STENO_VERSION, (*http)->url(),
               o.data_dir.empty() ? DataDir() : o.data_dir,
               o.store.empty() ? "" : ", jobs " + store::pg::RedactUrl(o.store),
               o.models_dir.empty() ? (global.models_dir.empty() ? ModelsDir() : global.models_dir)
                                    : o.models_dir);
  std::printf("steno: listening on %s\n", (*http)->url().c_str());
  std::fflush(stdout);

  for (;;) {
    const SignalKind s = signals.Wait(std::chrono::hours(1));
    if (s == SignalKind::kStop) break;
    if (s == SignalKind::kReload) Reload(o, global, **service, **alerts, **http);
  }
  // The listener stays up while running jobs drain: clients can still read their jobs and
  // results; new work gets 503 shutting_down and /readyz fails.
  const size_t running = (*service)->runners().Snapshot().running;
  spdlog::info(
      "stopping: no new jobs; waiting up to {} s for {} running (a second signal quits now)",
      *grace, running);
  const auto report = (*service)->Shutdown(std::chrono::seconds(*grace));
  (*http)->Stop();
  http->reset();
  alerts->reset();
  service->reset();
  spdlog::info("{}", report.Summary());
  std::printf("steno: %s\n", report.Summary().c_str());
  std::fflush(stdout);
  return kExitOk;
}

void RegisterServeOptions(CLI::App& app_cmd, ServeOptions& opts) {
  CLI::App* cmd = &app_cmd;
  ServeOptions* o = &opts;
  cmd->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  cmd->add_option("--config", o->config,
                  "TOML config file with a [serve] table of these flags' settings (flags and "
                  "STENO_* variables win over it); SIGHUP re-reads it")
      ->envname("STENO_CONFIG");
  cmd->add_option("--models-config", o->models_config,
                  "TOML file of [[models]] tables declaring managed model servers (as --config "
                  "may hold too; README: Managing other model servers); SIGHUP re-reads it")
      ->envname("STENO_MODELS_CONFIG");
  cmd->add_option("--alert-rules", o->alerts.rules_file,
                  "JSON array of alert rules (default: memory > 90 % for 5 min, queue > 10 for "
                  "10 min, error rate > 10 % over 5 min, ...); SIGHUP re-reads it")
      ->envname("STENO_ALERT_RULES");
  cmd->add_option("--alert-webhook", o->alerts.webhook_url,
                  "POST each alert here when it fires and when it resolves (with retries)")
      ->envname("STENO_ALERT_WEBHOOK");
  cmd->add_option("--alert-interval", o->alerts.interval, "How often alert rules are evaluated")
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", o->shutdown_grace,
                  "On SIGTERM/SIGINT, let running jobs finish this long before stopping them")
      ->envname("STENO_SHUTDOWN_GRACE")
      ->capture_default_str();
  cmd->add_option("--host", o->host, "Address to listen on")
      ->envname("STENO_HOST")
      ->capture_default_str();
  cmd->add_option("--port", o->port, "Port to listen on (0: any free port, printed at start)")
      ->envname("STENO_PORT")
      ->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir,
                  "Jobs database and uploads (default $STENO_DATA_DIR or ~/.local/share/steno)");
  cmd->add_option("--store", o->store,
                  "Shared job store for several nodes: postgres://user:password@host:port/db "
                  "(default: SQLite in the data dir)")
      ->envname("STENO_STORE");
  cmd->add_option("--node", o->node,
                  "This node's name in a shared store (default <hostname>:<pid>)")
      ->envname("STENO_NODE");
  cmd->add_option("--lease", o->lease,
                  "How long a running job stays this node's without a heartbeat (renewed every "
                  "third of it); on a shared store, other nodes take over jobs whose lease ran out")
      ->capture_default_str();
  cmd->add_option("--models-dir", o->models_dir,
                  "Directory of ggml models (default $STENO_MODELS or DATA_DIR/models)");
  AddGpuFlags(*cmd, o->gpu);
  cmd->add_option("--preload", o->preload, "Models to load at start and keep loaded (a,b)")
      ->envname("STENO_PRELOAD")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--keep-alive", o->keep_alive,
                  "Keep an idle model loaded this long (600, 10m; 0 unload at once; -1 forever)")
      ->envname("STENO_KEEP_ALIVE")
      ->capture_default_str();
  cmd->add_option("--max-queue", o->max_queue, "Jobs waiting at most; beyond, 503 queue_full")
      ->envname("STENO_MAX_QUEUE")
      ->capture_default_str();
  cmd->add_option("--max-running", o->max_running, "Jobs running at once (0: no limit)")
      ->envname("STENO_MAX_RUNNING")
      ->capture_default_str();
  cmd->add_option("--max-concurrency-per-device", o->max_concurrency,
                  "Jobs one device computes at once: auto (learned from the audio seconds per "
                  "second it delivers: grows while throughput grows, backs off when it stops or "
                  "latency climbs), N (at most N), or 0 (no compute limit: memory alone). A job "
                  "that fits in memory but finds its device at the limit waits in the queue")
      ->envname("STENO_MAX_CONCURRENCY_PER_DEVICE")
      ->capture_default_str();
  cmd->add_option("--max-streams", o->max_streams,
                  "Jobs one loaded model (runner) runs at once, each on its own stream; more "
                  "start another runner where memory allows")
      ->envname("STENO_MAX_STREAMS")
      ->capture_default_str();
  cmd->add_flag("--allow-cpu", o->allow_cpu, "Also run jobs on the CPU when GPUs exist");
  cmd->add_option("-t,--threads", o->threads,
                  "CPU threads a job uses alone; jobs waiting together share the cores "
                  "(default min(4, cores))");
  cmd->add_option("--min-threads", o->min_threads,
                  "CPU threads a job uses at least when jobs share the cores; --threads' value "
                  "gives every job the same count, and so the same transcript of a file whatever "
                  "the load (whisper.cpp's results can differ with its thread count)")
      ->capture_default_str();
  cmd->add_option("--cpu-cores", o->cpu_cores, "Cores CPU runners may use (0: all)");
  cmd->add_option("--beam-size", o->beam_size, "Beam size (1 = greedy)")->capture_default_str();
  cmd->add_option("--temperature-inc", o->temperature_inc,
                  "Fallback temperature increment (0 = no fallback, deterministic)")
      ->capture_default_str();
  cmd->add_option("--max-duration", o->max_duration_s,
                  "Refuse audio longer than this many seconds (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--vad", o->vad,
                  "Voice activity detection for requests without a chunking_strategy: auto (for "
                  "audio at least --vad-min-duration long), on or off; needs `steno models pull "
                  "silero-v6.2.0`")
      ->capture_default_str();
  cmd->add_option("--vad-min-duration", o->vad_min_duration,
                  "With --vad auto: the shortest audio that gets VAD (30s, 2m)")
      ->capture_default_str();
  cmd->add_option("--chunk-streams", o->chunk_streams,
                  "A job with VAD longer than 30 s runs as chunks of at most 30 s cut at "
                  "silences: at most this many of its chunks run at once, on as many streams, "
                  "runners and devices as the scheduler grants (1: one at a time)")
      ->envname("STENO_CHUNK_STREAMS")
      ->capture_default_str();
  cmd->add_flag("--no-warmup", o->no_warmup, "Skip the runners' warm-up pass (faster loads)");
  cmd->add_flag("--dtw-words", o->dtw_words,
                "Load every runner to time words by DTW over the model's alignment heads "
                "(whisper.cpp then decodes every request without flash attention: slower). "
                "Without it, requests for words run on runners of the model loaded this way "
                "(shown in /v1/runners as word_timing dtw) and the others keep flash attention");
  cmd->add_option("--api-key", o->api_keys, "Require this key (Authorization: Bearer KEY)")
      ->envname("STENO_API_KEY")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--api-key-file", o->api_key_file, "File of accepted keys, one per line")
      ->envname("STENO_API_KEY_FILE");
  cmd->add_option("--allow-path", o->allow_paths,
                  "Directory whose files POST /v1/jobs may name by path (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--cors-origin", o->cors_origin, "Allow browser requests from this origin (*)");
  cmd->add_option("--dashboard-dir", o->dashboard_dir,
                  "Serve the dashboard's files from this directory instead of the built-in ones "
                  "(for working on web/dashboard)");
  cmd->add_option("--max-connections", o->max_connections,
                  "Connections served at once (each holds a thread while open)")
      ->capture_default_str();
  cmd->add_option("--max-connections-per-client", o->max_connections_per_client,
                  "Requests from one client address that may be sending their body at once; "
                  "one more gets 429 too_many_uploads at once (0: no bound). Requests being "
                  "answered (synchronous transcriptions, event streams) do not count")
      ->capture_default_str();
  cmd->add_option("--read-timeout", o->read_timeout,
                  "Longest wait for the next bytes of a request's headers or body; a body that "
                  "stops arriving gets 408 request_timeout")
      ->capture_default_str();
  cmd->add_option("--max-upload-bytes", o->max_upload, "Largest upload (413 beyond)")
      ->capture_default_str();
  cmd->add_option("--min-free-disk", o->min_free_disk,
                  "Refuse uploads (507) while the data dir's disk has less free space than this, "
                  "or would once the upload is stored (0: only a full disk refuses); the "
                  "disk_space_low alert fires below it")
      ->envname("STENO_MIN_FREE_DISK")
      ->capture_default_str();
  cmd->add_option("--default-model", o->default_model,
                  "Model for requests that name none (or OpenAI's whisper-1)")
      ->envname("STENO_DEFAULT_MODEL");
  cmd->add_option("--sync-timeout", o->sync_timeout,
                  "Longest a synchronous /v1/audio request waits (504 beyond; the job goes on)")
      ->capture_default_str();
  cmd->add_option("--realtime-admit-timeout", o->realtime_admit_timeout,
                  "Longest a live session (WebSocket /v1/realtime) waits for a stream of its "
                  "model; then an admission_timeout error and a close")
      ->envname("STENO_REALTIME_ADMIT_TIMEOUT")
      ->capture_default_str();
  cmd->add_option("--realtime-idle-timeout", o->realtime_idle_timeout,
                  "A live session that sends no audio for this long is closed")
      ->envname("STENO_REALTIME_IDLE_TIMEOUT")
      ->capture_default_str();
  cmd->add_option("--realtime-max-buffer", o->realtime_max_buffer,
                  "Audio a live session may send while it waits for a stream (held in memory; "
                  "beyond it, buffer_full errors and the audio is dropped)")
      ->envname("STENO_REALTIME_MAX_BUFFER")
      ->capture_default_str();
}

}  // namespace

void AddServe(CLI::App& app, const GlobalOptions& global, Action& action) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Run the transcription server (HTTP API)");
  RegisterServeOptions(*cmd, *o);
  cmd->callback([o, &global, &action] { action = [o, &global] { return Run(*o, global); }; });
}

}  // namespace steno::cli
