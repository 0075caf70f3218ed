// `steno runner --fd N`: internal. The supervisor (runner/runner_handle.h) starts it; people don't.
#include "cli/commands.h"
#include "runner/runner_main.h"

namespace steno::cli {

void AddRunner(CLI::App& app, const GlobalOptions&, Action& action) {
  auto fd = std::make_shared<int>(-1);
  auto* cmd = app.add_subcommand("runner", "Internal: a model runner process");
  cmd->group("");  // hidden from --help
  cmd->add_option("--fd", *fd, "Socket to the supervisor")
      ->required()
      ->check(CLI::NonNegativeNumber);
  cmd->callback([fd, &action] { action = [fd] { return runner::RunnerMain(*fd); }; });
}

}  // namespace steno::cli
