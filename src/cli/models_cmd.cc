// Placeholder until `steno models` lands.
#include "cli/commands.h"

namespace steno::cli {
void AddModels(CLI::App& app, const GlobalOptions&, Action& action) {
  auto* cmd = app.add_subcommand("models", "List and download models");
  cmd->callback([&action] { action = [] { return int(kExitUsage); }; });
}
}  // namespace steno::cli
