#include "cli/commands.h"

namespace steno::cli {

void AddGlobalOptions(CLI::App& app, GlobalOptions& global) {
  app.add_option("--log-level", global.log_level, "trace|debug|info|warn|error|off")
      ->envname("STENO_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_option("--models-dir", global.models_dir,
                 "Directory of ggml models (default $STENO_MODELS or ~/.local/share/steno/models)");
}

}  // namespace steno::cli
