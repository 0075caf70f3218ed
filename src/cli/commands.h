// The CLI's subcommands. Each Add* function registers one subcommand (its flags and --help) on
// the root app and, when that subcommand is chosen, sets `action` to the function that runs it.
// main() parses, then calls the action and exits with what it returns (see ExitCode).
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace steno::cli {

enum ExitCode : int {
  kExitOk = 0,      // everything succeeded
  kExitFailed = 1,  // some work was attempted and failed (e.g. a transcription)
  kExitUsage = 2,   // bad usage or bad input; the message says what was wrong
};

struct GlobalOptions {
  std::string log_level = "warn";
  std::string models_dir;  // --models-dir; empty means ModelsDir()
};

using Action = std::function<int()>;

// The options every subcommand shares (--log-level, --models-dir), on the root app.
void AddGlobalOptions(CLI::App& app, GlobalOptions& global);

// main()'s last steps, the same for every program of steno's (steno, steno-runner): parses argv
// into `app`, whose subcommands set `action`; applies --log-level; runs the action and returns
// its exit code. --help and --version return 0; a parse error, or no command chosen, kExitUsage
// (with CLI11's message, or one naming the program).
int ParseAndRun(CLI::App& app, const GlobalOptions& global, const Action& action, int argc,
                char** argv);

void AddTranscribe(CLI::App& app, const GlobalOptions& global, Action& action);
void AddModels(CLI::App& app, const GlobalOptions& global, Action& action);
void AddGpus(CLI::App& app, const GlobalOptions& global, Action& action);
void AddRunner(CLI::App& app, const GlobalOptions& global, Action& action);
void AddServe(CLI::App& app, const GlobalOptions& global, Action& action);
void AddPs(CLI::App& app, const GlobalOptions& global, Action& action);

}  // namespace steno::cli
