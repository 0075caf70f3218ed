#include "runners/whisper/whisper_kind.h"

#include "runners/whisper/process_backend.h"

namespace steno::runners {

KindFactory WhisperKind(WhisperKindOptions options) {
  return [options = std::move(options)](
             const KindContext& context) -> Result<std::unique_ptr<sched::RunnerBackend>> {
    ProcessBackendOptions o;
    o.exe = options.exe;
    o.decode_defaults = options.decode_defaults;
    o.warmup = options.warmup;
    o.prefetch = options.prefetch;
    o.runners_lower_priority = options.runners_lower_priority;
    o.grace = context.grace;
    o.devices = context.devices;
    o.env_for_device = context.env_for_device;
    o.sim_data_dir = context.sim_data_dir;
    o.on_unreleased = context.on_unreleased;
    return std::unique_ptr<sched::RunnerBackend>(
        std::make_unique<ProcessBackend>(std::move(o), context.sink));
  };
}

}  // namespace steno::runners
