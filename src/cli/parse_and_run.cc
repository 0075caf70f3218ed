#include <cstdio>

#include "cli/commands.h"
#include "core/log.h"

namespace steno::cli {

int ParseAndRun(CLI::App& app, const GlobalOptions& global, const Action& action, int argc,
                char** argv) {
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
    std::fprintf(stderr, "%s: no command given (see %s --help)\n", app.get_name().c_str(),
                 app.get_name().c_str());
    return kExitUsage;
  }
  return action();
}

}  // namespace steno::cli
