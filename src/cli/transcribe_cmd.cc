// Placeholder until `steno transcribe` lands.
#include "cli/commands.h"

namespace steno::cli {
void AddTranscribe(CLI::App& app, const GlobalOptions&, Action& action) {
  auto* cmd = app.add_subcommand("transcribe", "Transcribe audio files");
  cmd->callback([&action] { action = [] { return int(kExitUsage); }; });
}
}  // namespace steno::cli
