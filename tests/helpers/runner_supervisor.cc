// A minimal supervisor for the runner tests: starts one runner on MODEL, prints "runner PID" as
// soon as it is started (before the model is loaded), then "ready" once it is, and waits to be
// killed. The test kill -9s this process and checks that the runner does not survive it.
//   runner_supervisor STENO_BIN MODEL
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "runner/runner_handle.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: runner_supervisor STENO_BIN MODEL\n");
    return 2;
  }
  steno::runner::RunnerOptions options;
  options.exe = argv[1];
  options.model_path = argv[2];
  auto handle = steno::runner::RunnerHandle::Start(options, [](const auto& ev) {
    if (ev.kind == steno::runner::RunnerEvent::Kind::kMessage && ev.message["type"] == "ready") {
      std::printf("ready\n");
      std::fflush(stdout);
    }
  });
  if (!handle) {
    std::fprintf(stderr, "%s\n", handle.error().message.c_str());
    return 1;
  }
  std::printf("runner %d\n", static_cast<int>((*handle)->pid()));
  std::fflush(stdout);
  for (;;) pause();
}
