// steno's single binary: parses the command line and runs one subcommand.
#include <string>

#include "cli/commands.h"
#include "core/log.h"

int main(int argc, char** argv) {
  using namespace steno::cli;
  steno::log::Init();

  CLI::App app{"steno: speech transcription on whisper.cpp with GPU memory management", "steno"};
  app.set_version_flag("--version", std::string("steno ") + STENO_VERSION);
  app.require_subcommand(1);

  GlobalOptions global;
  AddGlobalOptions(app, global);

  Action action;
  AddTranscribe(app, global, action);
  AddModels(app, global, action);
  AddGpus(app, global, action);
  AddRunner(app, global, action);
  AddServe(app, global, action);
  AddPs(app, global, action);
  return ParseAndRun(app, global, action, argc, argv);
}
