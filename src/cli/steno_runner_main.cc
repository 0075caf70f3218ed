// steno-runner: the `steno runner` subcommand alone, in a program that links only what a runner
// uses (whisper.cpp, FFmpeg through dlopen, spdlog), not the server's libraries (libcurl, libpq,
// SQLite, cpp-httplib, OpenSSL and what they pull in: some forty shared objects that take ~15 ms
// to load and initialise on every start). The supervisor (runner/runner_handle.h) starts it as
// `steno-runner runner --fd 3`, the same arguments `steno runner` takes.
#include "cli/commands.h"
#include "core/log.h"

int main(int argc, char** argv) {
  using namespace steno::cli;
  steno::log::Init();
  CLI::App app{"steno-runner: a steno model runner process (internal)", "steno-runner"};
  app.require_subcommand(1);
  GlobalOptions global;
  AddGlobalOptions(app, global);
  Action action;
  AddRunner(app, global, action);
  return ParseAndRun(app, global, action, argc, argv);
}
