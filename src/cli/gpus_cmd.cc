// `steno gpus`: every device with its memory (total, used, ours, external, free, what steno may
// plan with) and telemetry; `--json` for scripts; `--watch` redraws in place on a terminal
// (`--count N` bounds it). `steno gpus simulate-external` and `simulate-telemetry` script the
// simulated GPUs other steno processes on the same data dir are using.

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/gpu_flags.h"
#include "core/paths.h"
#include "gpu/device_selection.h"
#include "gpu/open_devices.h"
#include "gpu/owner_process.h"
#include "gpu/sample_json.h"
#include "gpu/simulated_devices.h"
#include "gpu/size.h"

namespace steno::cli {
namespace {

using json = nlohmann::ordered_json;

struct GpusOptions {
  GpuFlags gpu;
  std::string data_dir;
  bool json = false;
  bool watch = false;
  int count = 0;  // 0: one sample, or forever with --watch
  // simulate-external / simulate-telemetry
  std::vector<std::string> args;
  int util = -1, memory_util = -1, temperature = -1;
  double power = -1, power_limit = -1;
};

int Fail(const Error& e) {
  std::fprintf(stderr, "steno gpus: %s\n", e.message.c_str());
  return e.kind == ErrorKind::kBadInput || e.kind == ErrorKind::kNotFound ? kExitUsage
                                                                          : kExitFailed;
}

std::string DataDirOf(const GpusOptions& o) {
  return o.data_dir.empty() ? steno::DataDir() : o.data_dir;
}

std::string Percent(int v) {
  return v < 0 ? "-" : std::to_string(v) + "%";
}

// One frame of the table (power and memory-controller load are in --json).
void PrintTable(const std::string& backend, const json& devices) {
  if (devices.empty()) {
    std::printf("No GPU in use (%s); steno runs on the CPU.\n",
                backend == "none" ? "none found" : "none selected");
    return;
  }
  const char* kRow = "%-7s %-22.22s %10s %10s %10s %10s %10s %11s %5s %5s\n";
  std::printf(kRow, "DEVICE", "NAME", "TOTAL", "USED", "OURS", "EXTERNAL", "FREE", "ALLOCATABLE",
              "UTIL", "TEMP");
  for (const auto& d : devices) {
    auto size = [&](const char* key) { return gpu::FormatSize(d[key].get<int64_t>()); };
    auto integer = [&](const char* key) { return d[key].is_null() ? -1 : d[key].get<int>(); };
    const int temperature = integer("temperature_c");
    std::string temp = temperature < 0 ? "-" : std::to_string(temperature) + "C";
    std::printf(kRow, d["device"].get<std::string>().c_str(), d["name"].get<std::string>().c_str(),
                size("total_bytes").c_str(), size("used_bytes").c_str(), size("ours_bytes").c_str(),
                size("external_bytes").c_str(), size("free_bytes").c_str(),
                size("allocatable_bytes").c_str(),
                Percent(integer("gpu_utilization_percent")).c_str(), temp.c_str());
    if (d["processes"].is_null()) {
      std::printf("        (the driver does not list this device's processes)\n");
      continue;
    }
    for (const auto& p : d["processes"]) {
      std::string bytes =
          p["used_bytes"].is_null() ? "?" : gpu::FormatSize(p["used_bytes"].get<int64_t>());
      std::printf("        pid %-8d %10s  %s\n", p["pid"].get<int>(), bytes.c_str(),
                  p["ours"].get<bool>() ? "steno" : "other tenant");
    }
  }
}

int RunList(const GpusOptions& o) {
  auto config = ToGpuConfig(o.gpu, DataDirOf(o));
  if (!config.ok()) return Fail(config.error());
  if (o.count < 0) {
    return Fail(Error(ErrorKind::kBadInput, "bad_count", "--count must be 0 or more"));
  }
  gpu::OpenOptions open;
  open.simulate_spec = config->simulate_spec;
  open.data_dir = config->data_dir;
  auto devices = gpu::OpenDevices(open);
  if (!devices.ok()) return Fail(devices.error());
  const std::string backend = (*devices)->Backend();

  const bool watch = o.watch || o.count > 1;
  const int frames = o.count > 0 ? o.count : (watch ? 0 : 1);
  const bool tty = isatty(STDOUT_FILENO) && !o.json;
  for (int frame = 0; frames == 0 || frame < frames; ++frame) {
    if (frame > 0) std::this_thread::sleep_for(config->sample_interval);
    auto samples = (*devices)->Sample();
    if (!samples.ok()) return Fail(samples.error());
    auto selected = gpu::ApplyDeviceSelection(config->device, *samples);
    if (!selected.ok()) return Fail(selected.error());

    json list = json::array();
    for (const auto& s : *selected) {
      list.push_back(
          gpu::SampleJson(s, gpu::IsStenoProcess, config->reserve, config->safety_factor));
    }
    if (o.json) {
      json out = {{"backend", backend},
                  {"device_selection", config->device.ToString()},
                  {"safety_factor", config->safety_factor},
                  {"devices", list}};
      // One document per line when watching (JSON Lines), pretty otherwise.
      std::printf("%s\n", watch ? out.dump().c_str() : out.dump(2).c_str());
    } else {
      // On a terminal each frame replaces the last (cursor home, clear below), as watch(1)
      // does; elsewhere frames follow each other so a log keeps them all.
      if (tty && watch) std::printf("\033[H\033[J");
      if (!tty && frame > 0) std::printf("\n");
      if (watch) {
        std::time_t now = std::time(nullptr);
        char stamp[32];
        std::strftime(stamp, sizeof stamp, "%H:%M:%S", std::localtime(&now));
        std::printf("steno gpus (%s) at %s, every %lld ms%s\n", backend.c_str(), stamp,
                    static_cast<long long>(config->sample_interval.count()),
                    tty ? "; Ctrl+C to stop" : "");
      }
      PrintTable(backend, list);
    }
    std::fflush(stdout);
  }
  return kExitOk;
}

// The simulation a simulate-* subcommand scripts: the spec given, or whatever the data dir
// already simulates.
Result<std::unique_ptr<gpu::SimulatedDevices>> OpenSimulation(const GpusOptions& o) {
  if (!o.gpu.simulate_gpus.empty()) {
    auto spec = gpu::ParseSimulatedGpuSpec(o.gpu.simulate_gpus);
    if (!spec.ok()) return spec.error();
  }
  return gpu::SimulatedDevices::Open(DataDirOf(o), o.gpu.simulate_gpus);
}

Result<int> PhysicalIndex(gpu::SimulatedDevices& sim, const std::string& name) {
  auto samples = sim.Sample();
  if (!samples.ok()) return samples.error();
  auto device = gpu::FindDevice(name, *samples);
  if (!device.ok()) return device.error();
  return device->physical_index;
}

int RunSimulateExternal(const GpusOptions& o) {
  const auto& a = o.args;
  const bool clear_all = a.size() == 1 && a[0] == "clear";
  if (!clear_all && a.size() != 2) {
    return Fail(Error(ErrorKind::kBadInput, "bad_usage",
                      "usage: steno gpus simulate-external cuda:N SIZE|clear, or "
                      "steno gpus simulate-external clear"));
  }
  auto sim = OpenSimulation(o);
  if (!sim.ok()) return Fail(sim.error());
  if (clear_all) {
    if (Status s = (*sim)->ClearExternal(); !s.ok()) return Fail(s.error());
    std::printf("external tenants cleared on every simulated GPU\n");
    return kExitOk;
  }
  int64_t bytes = 0;
  if (a[1] != "clear") {
    auto size = gpu::ParseSize(a[1]);
    if (!size.ok()) return Fail(size.error());
    bytes = *size;
  }
  auto device = PhysicalIndex(**sim, a[0]);
  if (!device.ok()) return Fail(device.error());
  if (Status s = (*sim)->SetExternal(*device, bytes); !s.ok()) return Fail(s.error());
  std::printf("%s: an external tenant now holds %s\n", a[0].c_str(),
              gpu::FormatSize(bytes).c_str());
  return kExitOk;
}

int RunSimulateTelemetry(const GpusOptions& o) {
  if (o.args.size() != 1) {
    return Fail(Error(ErrorKind::kBadInput, "bad_usage",
                      "usage: steno gpus simulate-telemetry cuda:N [--util P] [--memory-util P] "
                      "[--temperature C] [--power W] [--power-limit W]"));
  }
  gpu::SimulatedTelemetry t;
  if (o.util >= 0) t.gpu_utilization_percent = o.util;
  if (o.memory_util >= 0) t.memory_utilization_percent = o.memory_util;
  if (o.temperature >= 0) t.temperature_c = o.temperature;
  if (o.power >= 0) t.power_watts = o.power;
  if (o.power_limit >= 0) t.power_limit_watts = o.power_limit;
  auto sim = OpenSimulation(o);
  if (!sim.ok()) return Fail(sim.error());
  auto device = PhysicalIndex(**sim, o.args[0]);
  if (!device.ok()) return Fail(device.error());
  if (Status s = (*sim)->SetTelemetry(*device, t); !s.ok()) return Fail(s.error());
  return kExitOk;
}

}  // namespace

void AddGpus(CLI::App& app, const GlobalOptions&, Action& action) {
  auto opts = std::make_shared<GpusOptions>();
  auto* cmd = app.add_subcommand(
      "gpus", "GPU devices: memory (total, used, steno's, other tenants', free) and telemetry");
  AddGpuFlags(*cmd, opts->gpu);
  cmd->add_option("--data-dir", opts->data_dir,
                  "Data dir holding simulated GPUs' shared state (default $STENO_DATA_DIR or "
                  "~/.local/share/steno)");
  cmd->add_flag("--json", opts->json, "Print JSON instead of a table");
  cmd->add_flag("--watch", opts->watch,
                "Sample every --sample-interval and redraw in place (JSON Lines with --json)");
  cmd->add_option("--count", opts->count, "Stop after N samples (implies --watch when N > 1)");
  cmd->callback([&action, opts, cmd] {
    if (cmd->get_subcommands().empty()) action = [opts] { return RunList(*opts); };
  });

  auto* external = cmd->add_subcommand(
      "simulate-external",
      "Play another tenant on a simulated GPU: `cuda:N SIZE` holds SIZE there from now on, "
      "`cuda:N clear` or `clear` releases it");
  external->add_option("args", opts->args, "cuda:N SIZE|clear, or clear")->required();
  external->fallthrough();
  external->callback([&action, opts] { action = [opts] { return RunSimulateExternal(*opts); }; });

  auto* telemetry = cmd->add_subcommand(
      "simulate-telemetry", "Script a simulated GPU's utilization, temperature and power");
  telemetry->add_option("device", opts->args, "cuda:N")->required();
  telemetry->add_option("--util", opts->util, "GPU utilization, percent")
      ->check(CLI::Range(0, 100));
  telemetry
      ->add_option("--memory-util", opts->memory_util, "Memory controller utilization, percent")
      ->check(CLI::Range(0, 100));
  telemetry->add_option("--temperature", opts->temperature, "Temperature, degrees Celsius")
      ->check(CLI::Range(0, 150));
  telemetry->add_option("--power", opts->power, "Power draw, watts")
      ->check(CLI::Range(0.0, 10000.0));
  telemetry->add_option("--power-limit", opts->power_limit, "Power limit, watts")
      ->check(CLI::Range(1.0, 10000.0));
  telemetry->fallthrough();
  telemetry->callback([&action, opts] { action = [opts] { return RunSimulateTelemetry(*opts); }; });
}

}  // namespace steno::cli
