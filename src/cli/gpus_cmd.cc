// Placeholder until `steno gpus` lands.
#include "cli/commands.h"

namespace steno::cli {
void AddGpus(CLI::App& app, const GlobalOptions&, Action& action) {
  auto* cmd = app.add_subcommand("gpus", "GPU devices and their memory");
  cmd->callback([&action] { action = [] { return int(kExitUsage); }; });
}
}  // namespace steno::cli
