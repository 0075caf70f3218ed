// steno's single binary: parses the command line and runs one subcommand.
#include <cstdio>

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

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  steno::log::SetLevel(global.log_level);
  if (!action) {
    std::fprintf(stderr, "steno: no command given (see steno --help)\n");
    return kExitUsage;
  }
  return action();
}
